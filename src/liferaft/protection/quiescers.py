"""The Quiescer port: freeze a guest's file systems for a consistent snapshot, then thaw it.

Drivers register in the ``liferaft.quiescers`` entry-point group:

* ``cloud`` -- the cloud's own quiesce server action, where the compute
  extension list advertises it (``os-server-quiesce``; the simulator does,
  modelled on the OPNFV proposal).  Where it is missing the checkpoint falls
  back to crash-consistent snapshots.
* ``hook`` -- an operator command run as ``CMD quiesce|unquiesce SITE SERVER``
  (say, an ssh into the guest that runs ``fsfreeze``); exit 0 means done.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from liferaft.clouds.port import Cloud
from liferaft.engine.clock import Clock
from liferaft.errors import GiveUp, RetryLater


class Quiescer(Protocol):
    capabilities: frozenset[str]

    async def available(self, cloud: Cloud) -> bool:
        """Whether this driver can quiesce guests of ``cloud`` (else: crash-consistent)."""
        ...

    async def quiesce(self, cloud: Cloud, server_id: str) -> None: ...
    async def unquiesce(self, cloud: Cloud, server_id: str) -> None: ...


class CloudQuiescer:
    """The site's quiesce / unquiesce server actions, waited for on the injected clock."""

    capabilities = frozenset({"quiesce"})

    def __init__(self, *, clock: Clock, poll: float = 0.5, timeout: float = 120.0, **_: object):
        self.clock = clock
        self.poll = poll
        self.timeout = timeout

    async def available(self, cloud: Cloud) -> bool:
        return await cloud.supports("quiesce")

    async def quiesce(self, cloud: Cloud, server_id: str) -> None:
        await cloud.quiesce_server(server_id)
        await self._settle(cloud, server_id, "quiesce")

    async def unquiesce(self, cloud: Cloud, server_id: str) -> None:
        await cloud.unquiesce_server(server_id)
        await self._settle(cloud, server_id, "unquiesce")

    async def _settle(self, cloud: Cloud, server_id: str, what: str) -> None:
        start = self.clock.now()
        # Only the quiesce's own task state is waited out: a root-disk snapshot taken in the
        # window may still be uploading (task ``image_uploading``) after the thaw.
        while (await cloud.get_server(server_id)).task_state in ("quiescing", "unquiescing"):
            if self.clock.now() - start > self.timeout:
                raise RetryLater(f"{cloud.site}: {what} of server {server_id} is still running")
            await self.clock.sleep(self.poll)


class HookQuiescer:
    """Runs an operator's command; a non-zero exit is an error the checkpoint retries."""

    capabilities = frozenset({"quiesce"})

    def __init__(self, *, command: list[str] | None = None, **_: object) -> None:
        if not command:
            raise GiveUp("the hook quiescer needs protection.quiesce_hook (a command)")
        self.command = list(command)

    async def available(self, cloud: Cloud) -> bool:
        return True

    async def quiesce(self, cloud: Cloud, server_id: str) -> None:
        await self._run("quiesce", cloud.site, server_id)

    async def unquiesce(self, cloud: Cloud, server_id: str) -> None:
        await self._run("unquiesce", cloud.site, server_id)

    async def _run(self, action: str, site: str, server_id: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self.command,
            action,
            site,
            server_id,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            tail = out.decode(errors="replace").strip()[-300:]
            raise RetryLater(
                f"quiesce hook {' '.join(self.command)} {action} {site} {server_id} "
                f"exited {proc.returncode}: {tail}"
            )
