"""Evacuators (``liferaft.evacuators``): how one instance of a fenced host is moved.

The default, ``nova``, is the compute API's evacuate action (rebuild on
another host, keeping volumes and ports).  The recovery workflow calls it
only after the host's power-off was confirmed and its compute service
forced down, and then tracks the instance itself.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from liferaft.clouds import Cloud

#: The evacuator rebuilds on the named target host when given one.
TARGETED = "targeted"


@runtime_checkable
class Evacuator(Protocol):
    capabilities: frozenset[str]

    async def evacuate(self, cloud: Cloud, server_id: str, target: str | None) -> None: ...


class NovaEvacuator:
    capabilities = frozenset({TARGETED})

    async def evacuate(self, cloud: Cloud, server_id: str, target: str | None) -> None:
        await cloud.evacuate_server(server_id, host=target)
