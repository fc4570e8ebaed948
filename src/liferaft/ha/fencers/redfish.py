"""Redfish fencer, on sushy: ``ComputerSystem.Reset`` with ``ForceOff``, confirmed by ``PowerState``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import sushy
from sushy import exceptions as sx

from liferaft.errors import GiveUp, RetryLater

from .base import CONFIRMS_POWER_OFF, POWER_OFF, POWER_ON, FenceTarget, PowerState

T = TypeVar("T")


class RedfishFencer:
    capabilities = frozenset({POWER_OFF, POWER_ON, CONFIRMS_POWER_OFF})

    def __init__(self, target: FenceTarget) -> None:
        if not target.address:
            raise GiveUp(f"redfish fencer of {target.host}: no BMC address")
        self.target = target
        self._conn: Any = None

    def __repr__(self) -> str:
        return f"RedfishFencer({self.target.host} via {self.target.address})"

    def _system(self) -> Any:
        t = self.target
        if self._conn is None:
            self._conn = sushy.Sushy(
                t.address.rstrip("/") if t.address else "",
                username=t.username,
                password=t.password,
                verify=t.verify_tls,
                server_side_retries=0,
                read_timeout=min(t.timeout, 10.0),
                connect_timeout=min(t.timeout, 5.0),
            )
        if t.system_id:
            return self._conn.get_system(f"/redfish/v1/Systems/{t.system_id}")
        members = list(self._conn.get_system_collection().members_identities)
        if len(members) != 1:
            raise GiveUp(
                f"redfish BMC of {t.host} has {len(members)} systems; set system_id to pick one"
            )
        return self._conn.get_system(members[0])

    def _call(self, what: str, fn: Callable[[Any], T]) -> T:
        where = f"redfish BMC of {self.target.host} ({self.target.address}): {what}"
        try:
            return fn(self._system())
        except (GiveUp, RetryLater):
            raise
        except sx.AccessError as exc:
            raise GiveUp(
                f"{where}: access refused (check the credentials): HTTP {exc.status_code}"
            ) from None
        except sx.ConnectionError as exc:
            self._conn = None
            raise RetryLater(f"{where}: unreachable: {type(exc).__name__}") from None
        except sx.ServerSideError as exc:
            raise RetryLater(f"{where}: server error HTTP {exc.status_code}") from None
        except sx.HTTPError as exc:
            raise GiveUp(f"{where}: HTTP {exc.status_code}") from None
        except (sx.SushyError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise GiveUp(
                f"{where}: the BMC's answer is not usable Redfish: {type(exc).__name__}: {exc}"
            ) from None

    async def power_off(self) -> None:
        await asyncio.to_thread(
            self._call, "power off", lambda s: s.reset_system(sushy.ResetType.FORCE_OFF)
        )

    async def power_on(self) -> None:
        await asyncio.to_thread(
            self._call, "power on", lambda s: s.reset_system(sushy.ResetType.ON)
        )

    async def power_state(self) -> PowerState:
        def read(s: Any) -> PowerState:
            s.refresh()
            state = s.power_state
            if state == sushy.PowerState.OFF:
                return "off"
            if state in (
                sushy.PowerState.ON,
                sushy.PowerState.POWERING_OFF,
                sushy.PowerState.POWERING_ON,
            ):
                return "on"
            return "unknown"

        return await asyncio.to_thread(self._call, "read power state", read)
