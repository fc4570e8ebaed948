"""IPMI fencer, on pyghmi: chassis power off, confirmed by chassis status."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from liferaft.errors import GiveUp, RetryLater

from .base import CONFIRMS_POWER_OFF, POWER_OFF, POWER_ON, FenceTarget, PowerState

T = TypeVar("T")


def _split(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return host.strip("[]"), int(port)
    return address.strip("[]"), 623


class IpmiFencer:
    capabilities = frozenset({POWER_OFF, POWER_ON, CONFIRMS_POWER_OFF})

    def __init__(self, target: FenceTarget) -> None:
        if not target.address:
            raise GiveUp(f"ipmi fencer of {target.host}: no BMC address")
        self.target = target
        self.bmc, self.port = _split(target.address)

    def __repr__(self) -> str:
        return f"IpmiFencer({self.target.host} via {self.bmc}:{self.port})"

    def _call(self, what: str, fn: Callable[[Any], T]) -> T:
        from pyghmi import exceptions as px
        from pyghmi.ipmi import command

        where = f"IPMI BMC of {self.target.host} ({self.bmc}:{self.port}): {what}"
        try:
            cmd = command.Command(
                bmc=self.bmc,
                userid=self.target.username,
                password=self.target.password,
                port=self.port,
                keepalive=False,
            )
        except px.IpmiException as exc:
            text = str(exc)
            if "timeout" in text.lower() or "unreachable" in text.lower():
                raise RetryLater(f"{where}: {text}") from None
            raise GiveUp(f"{where}: login failed: {text}") from None
        except OSError as exc:
            raise RetryLater(f"{where}: {exc.strerror or exc}") from None
        try:
            return fn(cmd)
        except px.IpmiException as exc:
            raise RetryLater(f"{where}: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise GiveUp(f"{where}: unusable answer: {exc}") from None
        finally:
            with contextlib.suppress(Exception):  # a session that is gone already
                cmd.ipmi_session.logout()

    async def power_off(self) -> None:
        await asyncio.to_thread(self._call, "power off", lambda c: c.set_power("off", wait=False))

    async def power_on(self) -> None:
        await asyncio.to_thread(self._call, "power on", lambda c: c.set_power("on", wait=False))

    async def power_state(self) -> PowerState:
        def read(c: Any) -> PowerState:
            state = c.get_power().get("powerstate")
            return "off" if state == "off" else "on" if state == "on" else "unknown"

        return await asyncio.to_thread(self._call, "read power state", read)
