"""Every BMC of the world: addresses, credentials, power reads and power actions.

Runs on the simulator's event loop only (the IPMI server's thread hands its
calls over, see :mod:`.ipmi`).  A BMC is powered by its host's standby power:
it answers while its host is off, but not while its site is down, and it
answers nonsense under the ``bmc-garbage`` host fault.
"""

from __future__ import annotations

import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .. import hostfaults

if TYPE_CHECKING:
    from ..compute.records import Host
    from ..world import Site, World

#: Redfish ``ResetType`` values a simulated BMC accepts.
RESET_TYPES = (
    "On",
    "ForceOn",
    "ForceOff",
    "GracefulShutdown",
    "GracefulRestart",
    "ForceRestart",
    "PowerCycle",
    "PushPowerButton",
    "Nmi",
)

_NS = uuid.UUID("6a0f3e64-8d2b-4c1b-9c39-1f3b0d6b2a57")


class PowerRefused(Exception):
    """A power action the BMC cannot carry out (the message says why)."""


@dataclass
class BmcInfo:
    """One host's BMC: where it listens and how to log in."""

    site: str
    host: str
    username: str
    password: str
    uuid: str
    redfish_url: str = ""  # set when the site's Redfish listener is bound
    ipmi_port: int = 0  # set when the IPMI server binds the host's UDP port

    @property
    def system_id(self) -> str:
        return self.host

    @property
    def system_path(self) -> str:
        return f"/redfish/v1/Systems/{self.host}"

    def describe(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "host": self.host,
            "username": self.username,
            "password": self.password,
            "redfish": {
                "url": self.redfish_url,
                "system_id": self.system_id,
                "system_path": self.system_path,
            },
            "ipmi": {"address": "127.0.0.1", "port": self.ipmi_port, "interface": "lanplus"},
        }


class BmcRegistry:
    """The world's BMCs, keyed ``(site, host)``."""

    def __init__(self, world: World) -> None:
        self.world = world
        topo = world.topology
        self.bmcs: dict[tuple[str, str], BmcInfo] = {}
        # (site, host) -> the power state a pending action will leave
        self.pending: dict[tuple[str, str], bool] = {}
        for site_name, spec in topo.sites.items():
            for hs in spec.host_specs(site_name):
                password = hs.bmc_password or topo.bmc_password or secrets.token_hex(8)
                self.bmcs[(site_name, hs.name)] = BmcInfo(
                    site=site_name,
                    host=hs.name,
                    username=hs.bmc_username or topo.bmc_username,
                    password=password,
                    uuid=str(uuid.uuid5(_NS, f"{site_name}/{hs.name}")),
                )

    # -- lookups -----------------------------------------------------------------------
    def of_site(self, site: str) -> list[BmcInfo]:
        return [b for (s, _h), b in sorted(self.bmcs.items()) if s == site]

    def get(self, site: str, host: str) -> BmcInfo | None:
        return self.bmcs.get((site, host))

    def _site_host(self, bmc: BmcInfo) -> tuple[Site, Host]:
        site = self.world.sites[bmc.site]
        return site, site.compute.hosts[bmc.host]

    def site_uuid(self, site: str) -> str:
        return str(uuid.uuid5(_NS, site))

    def answers(self, bmc: BmcInfo) -> bool:
        """Whether the BMC answers at all: not while its site is down."""
        return not self.world.sites[bmc.site].faults.down

    def garbage(self, bmc: BmcInfo) -> bool:
        """Under the ``bmc-garbage`` host fault."""
        return hostfaults.registry(self.world).state(bmc.site, bmc.host).bmc_garbage

    # -- power -------------------------------------------------------------------------
    def read_power(self, bmc: BmcInfo, via: str) -> str:
        """The power state the BMC reports (``On``, ``Off``, ``PoweringOn``, ``PoweringOff``).

        Recorded in the write log as ``power_read`` (``state``, ``on``, ``via``):
        the benchmarks check that a fence was confirmed by reading it back.
        """
        site, host = self._site_host(bmc)
        site.clock.run_due()
        on = host.powered_on
        pending = self.pending.get((bmc.site, bmc.host))
        if pending is not None and pending != on:
            state = "PoweringOn" if pending else "PoweringOff"
        else:
            state = "On" if on else "Off"
        self.world.writelog.record(
            site.clock.now(), "power_read", site.name, host=host.name, state=state, on=on, via=via
        )
        return state

    def reset(self, bmc: BmcInfo, reset_type: str, via: str) -> None:
        """Carry out a power action after the ``power`` latency of the simulated clock.

        Raises :class:`PowerRefused` for an unknown type, or for ``On`` while
        the host has no power (the ``host-power-loss`` fault).
        """
        if reset_type not in RESET_TYPES:
            raise PowerRefused(
                f"unknown ResetType {reset_type!r}; allowed: {', '.join(RESET_TYPES)}"
            )
        site, host = self._site_host(bmc)
        site.clock.run_due()
        key = (bmc.site, bmc.host)
        current = self.pending.get(key, host.powered_on)
        if reset_type == "PushPowerButton":
            steps = [not current]
        elif reset_type in ("On", "ForceOn"):
            steps = [True]
        elif reset_type in ("ForceOff", "GracefulShutdown"):
            steps = [False]
        elif reset_type in ("GracefulRestart", "ForceRestart", "PowerCycle"):
            steps = [False, True] if current else [True]
        else:  # Nmi: the guest OS's business, not the power's
            steps = []
        power_loss = hostfaults.registry(self.world).state(bmc.site, bmc.host).power_loss
        if power_loss and True in steps:
            raise PowerRefused(f"host {bmc.host} has no power (power supply lost); cannot power on")
        now = site.clock.now()
        self.world.writelog.record(
            now, "bmc_action", site.name, host=host.name, action=reset_type, via=via
        )
        delay = site.latency.power
        for i, on in enumerate(steps):
            self._power_at(site, host, on, now + delay * (i + 1), action=reset_type, via=via)

    def _power_at(self, site: Site, host: Host, on: bool, due: float, **cause: Any) -> None:
        key = (site.name, host.name)

        def apply() -> None:
            if self.pending.get(key) == on:
                del self.pending[key]
            site.compute.set_host_power(host.name, on, **cause)

        if due <= site.clock.now():
            apply()
        else:
            self.pending[key] = on
            site.clock.call_at(due, apply)

    # -- files -------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {"bmcs": {f"{s}/{h}": b.describe() for (s, h), b in sorted(self.bmcs.items())}}

    def write_file(self, path: Path) -> None:
        """``STATE_DIR/bmcs.yaml``: every BMC's addresses and credentials (mode 0600)."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(self.describe(), sort_keys=False))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
