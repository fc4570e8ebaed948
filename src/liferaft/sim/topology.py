"""The simulator's topology file: sites, hosts, WAN links, latency profile.

Validated with pydantic so a bad file gets an error naming the key and the
problem.  Everything has a default: an empty file gives the default world
(sites ``east`` and ``west``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class TopologyError(ValueError):
    """A topology file that cannot be used; the message names the file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HostSpec(_Strict):
    name: str = Field(description="Host name, unique within its site.")
    vcpus: int = Field(64, ge=1, description="vCPUs the host offers.")
    ram_mb: int = Field(262144, ge=1, description="RAM in MiB.")
    disk_gb: int = Field(4000, ge=1, description="Local disk in GiB.")
    max_builds: int = Field(20, ge=1, description="Concurrent server builds the host accepts.")
    reserved: bool = Field(False, description="A reserved host held for host-HA recovery.")
    bmc_username: str | None = Field(
        None, description="This host's BMC user (default: bmc_username)."
    )
    bmc_password: str | None = Field(
        None, description="This host's BMC password (default: bmc_password, else a random one)."
    )


class FlavorSpec(_Strict):
    name: str
    vcpus: int = Field(1, ge=1)
    ram_mb: int = Field(512, ge=1)
    disk_gb: int = Field(1, ge=0)
    id: str | None = None


class ImageSpec(_Strict):
    name: str
    size_mb: int = Field(1, ge=0, description="Size of the image's real bytes.")
    id: str | None = None


class NetworkSpec(_Strict):
    name: str
    cidr: str = "10.0.0.0/24"
    shared: bool = True
    external: bool = False


class SiteSpec(_Strict):
    hosts: int | list[HostSpec] = Field(
        3, description="Number of default hosts, or a list of host specs."
    )
    backup_site: str | None = Field(
        None,
        description="Site whose object store this site's backup service writes to "
        "(the OPNFV geo-recovery layout). Defaults to the other site in a pair.",
    )
    vtep_subnet: str | None = Field(None, description="Subnet of the hosts' VTEP addresses.")
    max_concurrent_restores: int = Field(50, ge=1)

    @model_validator(mode="after")
    def _check_hosts(self) -> SiteSpec:
        if isinstance(self.hosts, int) and self.hosts < 0:
            raise ValueError(f"hosts must be >= 0, got {self.hosts}")
        if isinstance(self.hosts, list):
            names = [h.name for h in self.hosts]
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                raise ValueError(f"duplicate host names: {', '.join(dup)}")
        return self

    def host_specs(self, site: str) -> list[HostSpec]:
        if isinstance(self.hosts, int):
            return [HostSpec(name=f"{site}-compute-{i}") for i in range(1, self.hosts + 1)]
        return list(self.hosts)


class LinkSpec(_Strict):
    a: str
    b: str
    bandwidth_mbps: float = Field(1000.0, gt=0, description="Capacity, megabits per second.")
    delay_ms: float = Field(20.0, ge=0, description="One-way delay.")
    background_mbps: float = Field(0.0, ge=0, description="Application traffic on the link.")


class LatencyProfile(_Strict):
    """Simulated seconds charged per operation (see the ``realistic`` profile)."""

    api_call: float = 0.0
    port_create: float = 0.0
    volume_create: float = 0.0
    volume_restore_base: float = 0.0
    volume_restore_mb_s: float = 0.0  # 0 = infinitely fast
    snapshot: float = 0.0
    backup_base: float = 0.0
    boot: float = 0.0
    stop: float = 0.0
    start: float = 0.0
    attach: float = 0.0
    detach: float = 0.0
    image_create: float = 0.0
    quiesce: float = 0.0
    evacuate: float = 0.0
    power: float = 0.0


PROFILES: dict[str, LatencyProfile] = {
    "zero": LatencyProfile(),
    "realistic": LatencyProfile(
        api_call=0.05,
        port_create=0.5,
        volume_create=5.0,
        volume_restore_base=20.0,
        volume_restore_mb_s=200.0,
        snapshot=2.0,
        backup_base=5.0,
        boot=30.0,
        stop=5.0,
        start=10.0,
        attach=3.0,
        detach=2.0,
        image_create=10.0,
        quiesce=1.0,
        evacuate=5.0,
        power=5.0,
    ),
}


class Topology(_Strict):
    sites: dict[str, SiteSpec] = Field(
        default_factory=lambda: {"east": SiteSpec(), "west": SiteSpec()}
    )
    links: list[LinkSpec] | None = None
    latency: Literal["zero", "realistic"] | LatencyProfile = "zero"
    flavors: list[FlavorSpec] = Field(
        default_factory=lambda: [
            FlavorSpec(name="m1.tiny", vcpus=1, ram_mb=512, disk_gb=1, id="1"),
            FlavorSpec(name="m1.small", vcpus=1, ram_mb=2048, disk_gb=20, id="2"),
            FlavorSpec(name="m1.medium", vcpus=2, ram_mb=4096, disk_gb=40, id="3"),
            FlavorSpec(name="m1.large", vcpus=4, ram_mb=8192, disk_gb=80, id="4"),
        ]
    )
    images: list[ImageSpec] = Field(default_factory=lambda: [ImageSpec(name="cirros", size_mb=1)])
    networks: list[NetworkSpec] = Field(
        default_factory=lambda: [NetworkSpec(name="private", cidr="10.0.0.0/24")]
    )
    admin_password: str = "admin-secret"
    demo_password: str = "demo-secret"
    block_size: int = Field(65536, ge=4096, description="Changed-block tracking granularity.")
    bmc_username: str = Field("admin", min_length=1, description="Every BMC's user by default.")
    bmc_password: str | None = Field(
        None,
        min_length=1,
        description="Every BMC's password by default; unset: each BMC gets its own random one "
        "(all are written to STATE_DIR/bmcs.yaml).",
    )
    heartbeat_interval: float = Field(
        5.0, gt=0, description="Simulated seconds between two UDP heartbeats of a host."
    )
    heartbeat_target: str | None = Field(
        None,
        description="HOST:PORT the hosts' UDP heartbeats go to (also settable at runtime "
        "with PUT /control/heartbeat); unset: none are sent.",
    )

    @model_validator(mode="after")
    def _check(self) -> Topology:
        if not self.sites:
            raise ValueError("at least one site is required")
        for name, spec in self.sites.items():
            if spec.backup_site is not None and spec.backup_site not in self.sites:
                raise ValueError(
                    f"sites.{name}.backup_site names unknown site {spec.backup_site!r}"
                )
        for i, link in enumerate(self.links or []):
            for end in (link.a, link.b):
                if end not in self.sites:
                    raise ValueError(f"links[{i}] names unknown site {end!r}")
        return self

    def latency_profile(self) -> LatencyProfile:
        if isinstance(self.latency, LatencyProfile):
            return self.latency
        return PROFILES[self.latency]

    def link_specs(self) -> list[LinkSpec]:
        if self.links is not None:
            return self.links
        names = sorted(self.sites)
        return [LinkSpec(a=a, b=b) for i, a in enumerate(names) for b in names[i + 1 :]]

    def backup_site_of(self, site: str) -> str:
        spec = self.sites[site]
        if spec.backup_site:
            return spec.backup_site
        others = sorted(n for n in self.sites if n != site)
        return others[0] if others else site


def load_topology(path: str | Path | None) -> Topology:
    """Read and validate a topology file; ``None`` gives the default world."""
    if path is None:
        return Topology()
    p = Path(path)
    try:
        raw: Any = yaml.safe_load(p.read_text()) or {}
    except FileNotFoundError as exc:
        raise TopologyError(f"{p}: no such topology file") from exc
    except yaml.YAMLError as exc:
        raise TopologyError(f"{p}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise TopologyError(f"{p}: the top level must be a mapping")
    try:
        return Topology.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise TopologyError(f"{p}: {problems}") from exc
