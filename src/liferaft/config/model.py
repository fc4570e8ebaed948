"""The controller's settings, as typed pydantic models.

Every field carries a help text (``Field(description=...)``): it is what
``docs/configuration.md`` shows, and ``tests/unit/test_config_doc.py`` fails
when the two drift apart.  Models forbid unknown keys so a typo is an error
that names the key, not a silently ignored setting.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class Section(BaseModel):
    """Base of every settings section: unknown keys are refused, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/liferaft`` (``~/.local/state/liferaft`` when unset)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "liferaft"


class SiteSettings(Section):
    """One site: a cloud of a ``clouds.yaml`` file."""

    name: str = Field(
        min_length=1,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="The site's name inside Liferaft (letters, digits, `_`, `.`, `-`).",
    )
    cloud: str | None = Field(
        default=None,
        min_length=1,
        description="The cloud's name in clouds.yaml; defaults to the site's name.",
    )
    clouds_yaml: Path | None = Field(
        default=None,
        description=(
            "Path of the clouds.yaml file holding the cloud (relative to the config file); "
            "unset: openstacksdk's usual search ($OS_CLIENT_CONFIG_FILE, ./clouds.yaml, "
            "~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml)."
        ),
    )

    @property
    def cloud_name(self) -> str:
        """The clouds.yaml entry to use."""
        return self.cloud or self.name


class StoreSettings(Section):
    """Where durable state (workflows, steps, events, leases) lives."""

    url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the state store (`sqlite:///...` or `postgresql+psycopg://...`); "
            "unset: a SQLite file `liferaft.db` in `state_dir`."
        ),
    )


class ApiSettings(Section):
    """The REST API."""

    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address the API listens on; loopback by default (put a TLS proxy in front to expose it).",
    )
    port: int = Field(
        default=8787, ge=0, le=65535, description="TCP port of the API (0: any free port)."
    )
    token_cache_seconds: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="How long a token validated by the site's Keystone is trusted without asking again (0: ask every time).",
    )


class LoggingSettings(Section):
    """Structured logging to standard error."""

    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest level that is logged."
    )
    format: Literal["json", "kv"] = Field(
        default="kv",
        description="`json`: one JSON object per line; `kv`: `key=value` pairs per line.",
    )


class MetricsSettings(Section):
    """Prometheus metrics."""

    enabled: bool = Field(default=True, description="Serve Prometheus metrics at `GET /metrics`.")


class ClockSettings(Section):
    """Where the controller reads time from."""

    source: Literal["real", "simulator"] = Field(
        default="real",
        description="`real`: wall time; `simulator`: follow the simulator's clock (demo and tests).",
    )
    control_url: str | None = Field(
        default=None,
        description="The simulator's control API URL (`http://host:port`); required when `source` is `simulator`.",
    )
    poll_interval: float = Field(
        default=0.05,
        gt=0,
        le=10,
        description="Real seconds between readings of the simulator's clock while sleeping.",
    )

    @model_validator(mode="after")
    def _needs_url(self) -> ClockSettings:
        if self.source == "simulator" and not self.control_url:
            raise ValueError("clock source 'simulator' needs control_url")
        return self


#: tooz drivers whose locks expire when their holder stops renewing them (Redis: a key with a
#: TTL; etcd: a lease): only these elect a leader that a frozen one gives way to.  (A `file`,
#: `ipc`, `mysql` or `postgresql` lock lives as long as its holder's process or connection.)
TOOZ_EXPIRING_DRIVERS = frozenset({"redis", "etcd3+http", "etcd3+https"})


class LeadershipSettings(Section):
    """Leadership: only the controller holding the lease acts."""

    role: str = Field(
        default="controller",
        min_length=1,
        description="Name of the leadership role this controller contends for (one leader per role).",
    )
    lease_seconds: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="How long a leader's lease lasts without renewal; a new leader may take over after it expires.",
    )
    backend: Literal["store", "tooz"] = Field(
        default="store",
        description=(
            "Who decides which contender campaigns: `store`: the lease in the state store alone; "
            "`tooz`: a tooz coordinator (`coordination_url`) whose lock expires with the lease. "
            "Either way the store's lease epoch is the fencing token every write carries."
        ),
    )
    coordination_url: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "tooz coordination URL for backend `tooz`: `redis://host:port` or "
            "`etcd3+http(s)://host:port`; drivers whose locks cannot expire (`file`, `ipc`, `mysql`, "
            "`postgresql`, `zake`, ...) are refused. May hold a password, so give it by reference."
        ),
    )

    @model_validator(mode="after")
    def _check_coordination(self) -> LeadershipSettings:
        # A model check, not a field check: the error must not echo the URL (it may hold a password).
        url = self.coordination_url
        if url is not None:
            scheme = url.split("://", 1)[0].lower() if "://" in url else ""
            if scheme not in TOOZ_EXPIRING_DRIVERS:
                raise ValueError(
                    f"coordination_url: tooz driver {scheme or '(no scheme)'!r} cannot expire a lease "
                    f"(a frozen leader would hold it forever); use one of "
                    f"{', '.join(sorted(TOOZ_EXPIRING_DRIVERS))}"
                )
        if self.backend == "tooz" and url is None:
            raise ValueError("backend 'tooz' needs coordination_url")
        return self


class DrLogicSettings(Section):
    """DR-Logic: when each group is checkpointed and how the WAN is shared (names from ORBIT)."""

    drlogic_interval: float = Field(
        default=30.0, gt=0, description="Seconds between two runs of the DR-Logic control loop."
    )
    drlogic_clean_up_interval: float = Field(
        default=3600.0, gt=0, description="Seconds between two clean-ups of expired checkpoints."
    )
    max_protection_interval: float = Field(
        default=1800.0,
        gt=0,
        description="Longest time in seconds a protected group may go without a checkpoint, whatever the logic decides.",
    )
    logic_driver: str = Field(
        default="per-group-interval",
        min_length=1,
        description=(
            "Name of the DR-Logic plugin (entry point in `liferaft.logics`): `fixed-interval`, "
            "`per-group-interval`, `rpo-optimal` or an installed third-party logic."
        ),
    )
    app_take_share: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="Share of the application traffic replication may displace on the WAN link.",
    )
    link_monitor: str = Field(
        default="static",
        min_length=1,
        description=(
            "LinkMonitor driver (entry point in `liferaft.link_monitors`): `static` (the "
            "configured capacity, no traffic measured), `simulator` or `prometheus`."
        ),
    )
    link_shaper: str = Field(
        default="none",
        min_length=1,
        description=(
            "LinkShaper driver (entry point in `liferaft.link_shapers`): `none`, `simulator` or "
            "`tc` (Linux traffic control on the WAN interface)."
        ),
    )
    link_capacity_mbps: float = Field(
        default=1000.0,
        gt=0,
        description="Capacity of the WAN link to the recovery site in Mbit/s (`static` monitor, `tc`).",
    )
    link_url: str | None = Field(
        default=None,
        description=(
            "`simulator` monitor/shaper: the simulator's control API URL; `prometheus` monitor: "
            "the Prometheus server's URL."
        ),
    )
    prometheus_queries: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "`prometheus` monitor: PromQL for `capacity_bps`, `app_traffic_bps` and (optional) "
            "`replication_bps`, each a single value in bytes/s; `{site}` and `{peer}` are replaced."
        ),
    )
    tc_device: str | None = Field(
        default=None, description="`tc` shaper: the network interface facing the WAN link."
    )
    tc_match: list[str] = Field(
        default_factory=list,
        description=(
            "`tc` shaper: destination networks (CIDR) of the replication traffic (the recovery "
            "site's object store); everything else is application traffic."
        ),
    )
    tc_command: list[str] = Field(
        default_factory=lambda: ["tc"],
        min_length=1,
        description="`tc` shaper: the command that runs tc (e.g. `[sudo, -n, tc]`).",
    )
    backup_object_bytes: int = Field(
        default=52428800,
        gt=0,
        description=(
            "Size of one backup object (Cinder's `backup_swift_object_size`): a checkpoint's "
            "size is estimated as its backups' data objects times this."
        ),
    )


class HaFencerSettings(Section):
    """One fencing level of a host: a BMC (or other power switch) and how to reach it."""

    driver: str = Field(
        min_length=1,
        description="Fencer driver (entry point in `liferaft.fencers`): `redfish`, `ipmi` or `noop` (never accepted for evacuation).",
    )
    address: str | None = Field(
        default=None,
        min_length=1,
        description="The BMC: a Redfish base URL (`https://bmc:443`) or an IPMI `host[:port]`.",
    )
    username: str | None = Field(
        default=None,
        min_length=1,
        description='BMC user; give it by reference (`{"$env": ...}` or `{"$file": ...}`).',
    )
    password: SecretStr | None = Field(
        default=None,
        description='BMC password, by reference (`{"$env": ...}` or `{"$file": ...}`); never logged or shown.',
    )
    system_id: str | None = Field(
        default=None,
        description="Redfish: the ComputerSystem to fence (`/redfish/v1/Systems/<id>`); unset: the only one.",
    )
    verify_tls: bool = Field(default=True, description="Redfish: check the BMC's TLS certificate.")
    timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a power-off has to be confirmed by reading it back.",
    )

    @model_validator(mode="after")
    def _needs_credentials(self) -> HaFencerSettings:
        if self.driver in ("redfish", "ipmi"):
            missing = [k for k in ("address", "username", "password") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"fencer {self.driver!r} needs {', '.join(missing)}")
        return self


class HaHostSettings(Section):
    """How to fence one compute host: its fencing levels, tried in order."""

    name: str = Field(
        min_length=1, description="The compute host (its nova-compute service host name)."
    )
    fencers: list[HaFencerSettings] = Field(
        min_length=1,
        description="Fencing levels, tried in order until one confirms the power is off.",
    )


class HaSelectionSettings(Section):
    """Which instances of a failed host are evacuated (all when every list is empty)."""

    images: list[str] = Field(
        default_factory=list, description="Only instances of these image ids."
    )
    flavors: list[str] = Field(
        default_factory=list, description="Only instances of these flavors (names or ids)."
    )
    metadata: dict[str, str] = Field(
        default_factory=dict,
        description="Only instances whose metadata has all these key/value pairs (Masakari: `HA_Enabled: 'True'`).",
    )


class HaSegmentSettings(Section):
    """A failover segment: compute hosts that fail over among themselves (Masakari's segment)."""

    name: str = Field(
        min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Segment name."
    )
    site: str | None = Field(
        default=None, description="The site of the hosts; defaults to this controller's site."
    )
    hosts: list[str] = Field(
        min_length=1, description="The compute hosts of the segment (reserved hosts included)."
    )
    recovery_method: Literal["auto", "reserved_host", "auto_priority", "rh_priority"] = Field(
        default="auto",
        description=(
            "`auto`: any segment host with room; `reserved_host`: the segment's reserved hosts only; "
            "`auto_priority`: `auto`, then reserved hosts if that fails; `rh_priority`: reserved hosts, then `auto`."
        ),
    )
    reserved_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts held (disabled) for recovery; one used for a recovery leaves the pool.",
    )
    max_failed_hosts: int = Field(
        default=1, ge=1, description="Hosts of this segment recovered at once; more failures wait."
    )
    shared_storage: bool = Field(
        default=False,
        description="Instances' root disks are on shared storage (evacuation keeps their data).",
    )
    local_disk: Literal["skip", "evacuate"] = Field(
        default="skip",
        description="Instances on local disk (lost by an evacuation): `skip` them and notify, or `evacuate` (rebuilt from the image).",
    )
    selection: HaSelectionSettings = Field(
        default_factory=HaSelectionSettings, description="Which instances are evacuated."
    )

    @model_validator(mode="after")
    def _check(self) -> HaSegmentSettings:
        dup = sorted({h for h in self.hosts if self.hosts.count(h) > 1})
        if dup:
            raise ValueError(f"segment {self.name!r} lists hosts twice: {', '.join(dup)}")
        unknown = sorted(set(self.reserved_hosts) - set(self.hosts))
        if unknown:
            raise ValueError(
                f"segment {self.name!r}: reserved hosts {', '.join(unknown)} are not among its hosts"
            )
        if self.recovery_method != "auto" and not self.reserved_hosts:
            raise ValueError(
                f"segment {self.name!r}: recovery_method {self.recovery_method!r} needs reserved_hosts"
            )
        return self


class HaSettings(Section):
    """Compute-host HA: monitors, fencing, evacuation, notifications."""

    enabled: bool = Field(
        default=False, description="Monitor the segments' hosts and recover failed ones."
    )
    segments: list[HaSegmentSettings] = Field(
        default_factory=list, description="Failover segments."
    )
    hosts: list[HaHostSettings] = Field(
        default_factory=list,
        description="Fencing of each host (every segment host needs an entry).",
    )
    monitors: list[str] = Field(
        default_factory=lambda: ["compute_service"],
        min_length=1,
        description="Monitor drivers (entry points in `liferaft.monitors`): `compute_service`, `hypervisor`, `network_agent`, `heartbeat`.",
    )
    agreement: Literal["all", "majority", "any"] = Field(
        default="all",
        description="How many monitors must call a host failed: `all`, a `majority`, or `any` one.",
    )
    poll_interval: float = Field(
        default=10.0, gt=0, description="Seconds between two looks at the hosts."
    )
    recheck_delay: float = Field(
        default=10.0,
        ge=0,
        description="Seconds a host must stay failed before the re-check confirms it.",
    )
    service_down_seconds: float = Field(
        default=60.0,
        gt=0,
        description="The compute service's `updated_at` older than this counts as silent (Nova's `service_down_time`).",
    )
    heartbeat_listen: str | None = Field(
        default=None,
        description="`host:port` where the signed UDP host heartbeats arrive (the `heartbeat` monitor).",
    )
    heartbeat_key: SecretStr | None = Field(
        default=None,
        description="Key that signs host heartbeats, by reference; never logged or shown.",
    )
    heartbeat_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds without a valid heartbeat before a host counts as silent.",
    )
    breaker_max_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Mass-failure breaker: more than this share of a segment silent at once stops recovery and alerts.",
    )
    breaker_max_hosts: int = Field(
        default=3,
        ge=1,
        description="Mass-failure breaker: more than this many hosts silent at once stops recovery and alerts.",
    )
    evacuator: str = Field(
        default="nova",
        min_length=1,
        description="Evacuator driver (entry point in `liferaft.evacuators`).",
    )
    max_concurrent_evacuations: int = Field(
        default=20,
        ge=1,
        description="Evacuations in flight at once (the concurrency the cloud allows).",
    )
    evacuation_timeout: float = Field(
        default=900.0,
        gt=0,
        description="Seconds an evacuated instance has to run again before it is reported failed.",
    )
    notifier: str = Field(
        default="apprise",
        min_length=1,
        description="Notifier driver (entry point in `liferaft.notifiers`).",
    )
    admin_urls: list[SecretStr] = Field(
        default_factory=list,
        description="Apprise URLs of the admins (`mailto://...`, `json://...`, chat); may hold secrets, so by reference.",
    )
    tenant_urls: dict[str, list[SecretStr]] = Field(
        default_factory=dict,
        description="Apprise URLs per project id, for the tenants whose instances were affected.",
    )

    @model_validator(mode="after")
    def _check(self) -> HaSettings:
        names = [s.name for s in self.segments]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"segment names used twice: {', '.join(dup)}")
        seen: dict[str, str] = {}
        for seg in self.segments:
            for h in seg.hosts:
                if h in seen:
                    raise ValueError(f"host {h!r} is in segments {seen[h]!r} and {seg.name!r}")
                seen[h] = seg.name
        fenced = [h.name for h in self.hosts]
        unknown = sorted(set(fenced) - set(seen))
        if unknown:
            raise ValueError(f"ha.hosts names hosts of no segment: {', '.join(unknown)}")
        if self.enabled:
            unfenced = sorted(set(seen) - set(fenced))
            if unfenced:
                raise ValueError(f"segment hosts without fencing (ha.hosts): {', '.join(unfenced)}")
        if "heartbeat" in self.monitors and (
            self.heartbeat_listen is None or self.heartbeat_key is None
        ):
            raise ValueError("the heartbeat monitor needs heartbeat_listen and heartbeat_key")
        return self


class RecoveryMappings(Section):
    """What a protected site's names become at this (recovery) site, for one site pair.

    Keys are names or ids at the protected site (as its manifests record
    them), values names or ids at this site.  Anything not mapped keeps its
    name; ``liferaft plan check`` lists what this site lacks.
    """

    projects: dict[str, str] = Field(
        default_factory=dict,
        description="Project name or id -> project here (must be the project this site's connection is scoped to).",
    )
    flavors: dict[str, str] = Field(
        default_factory=dict, description="Flavor name or id -> flavor name or id here."
    )
    images: dict[str, str] = Field(
        default_factory=dict, description="Image name or id -> image name or id here."
    )
    volume_types: dict[str, str] = Field(
        default_factory=dict, description="Volume type -> volume type name here."
    )
    networks: dict[str, str] = Field(
        default_factory=dict, description="Network name or id -> network name or id here."
    )


class ProtectionSettings(Section):
    """Protection (checkpoints, replication, retention) and geo-recovery."""

    manifest_key: str | None = Field(
        default=None,
        min_length=16,
        description=(
            "Secret key (at least 16 characters) that signs checkpoint manifests with HMAC-SHA256; "
            'give it by reference (`{"$file": ...}` or `{"$env": ...}`) and the same at every '
            "site. Unset: protection and recovery are off."
        ),
    )
    recovery_site: str | None = Field(
        default=None,
        description="The peer that receives this site's checkpoints; unset: the first peer.",
    )
    container: str = Field(
        default="liferaft-checkpoints",
        min_length=1,
        description="Object-store container (at the recovery site) for backups and manifests.",
    )
    schedule_tick: float = Field(
        default=5.0,
        gt=0,
        description="Seconds between two looks for groups whose checkpoint is due.",
    )
    image_copy_rate: float | None = Field(
        default=None,
        gt=0,
        description=(
            "For the `image-copy` method: the most bytes per second the copier sends to the "
            "recovery site's object store while no DR-Logic decision is in force (before the "
            "first one after a start; the DR-Logic's rates replace it); a checkpoint's own "
            "`rate_limit` wins; unset: no limit."
        ),
    )
    quiescer: str = Field(
        default="cloud",
        min_length=1,
        description="Quiescer driver (entry point in `liferaft.quiescers`): `cloud` or `hook`.",
    )
    quiesce_hook: list[str] = Field(
        default_factory=list,
        description="For the `hook` quiescer: the command run as `CMD quiesce|unquiesce SITE SERVER`.",
    )
    verifier: str = Field(
        default="tcp",
        min_length=1,
        description="Verifier driver (entry point in `liferaft.verifiers`): `tcp` or `simulator`.",
    )
    verifier_url: str | None = Field(
        default=None,
        description="For the `simulator` verifier: the simulator's control API URL.",
    )
    verify_port: int = Field(
        default=22, ge=1, le=65535, description="For the `tcp` verifier: the port probed."
    )
    verify_timeout: float = Field(
        default=600.0,
        gt=0,
        description="Seconds a recovered server has to pass its check before the run fails.",
    )
    mappings: dict[str, RecoveryMappings] = Field(
        default_factory=dict,
        description=(
            "Recovery mappings per protected site recovered here (the key names the site): "
            "project, flavor, image, volume type and network names or ids there -> here."
        ),
    )
    replication_monitor: str = Field(
        default="none",
        min_length=1,
        description=(
            "ReplicationMonitor driver (entry point in `liferaft.replication_monitors`) that "
            "reads storage replicas' lag and last applied write: `none` (storage-replication "
            "policies are refused) or `simulator`."
        ),
    )
    replication_monitor_url: str | None = Field(
        default=None,
        description="For the `simulator` replication monitor: the simulator's control API URL.",
    )


class Settings(Section):
    """The controller's configuration file."""

    site: SiteSettings = Field(description="The site this controller serves.")
    peers: list[SiteSettings] = Field(
        default_factory=list,
        description="The other sites (recovery sites, or sites this one protects).",
    )
    state_dir: Path = Field(
        default_factory=default_state_dir,
        description="Directory for local state (the default SQLite store); `$XDG_STATE_HOME/liferaft` by default.",
    )
    store: StoreSettings = Field(default_factory=StoreSettings, description="The state store.")
    api: ApiSettings = Field(default_factory=ApiSettings, description="The REST API.")
    logging: LoggingSettings = Field(default_factory=LoggingSettings, description="Logging.")
    metrics: MetricsSettings = Field(default_factory=MetricsSettings, description="Metrics.")
    clock: ClockSettings = Field(default_factory=ClockSettings, description="The clock.")
    leadership: LeadershipSettings = Field(
        default_factory=LeadershipSettings, description="Leadership."
    )
    drlogic: DrLogicSettings = Field(default_factory=DrLogicSettings, description="DR-Logic.")
    ha: HaSettings = Field(default_factory=HaSettings, description="Compute-host HA.")
    protection: ProtectionSettings = Field(
        default_factory=ProtectionSettings, description="Protection."
    )

    @model_validator(mode="after")
    def _unique_sites(self) -> Settings:
        seen = {self.site.name}
        for peer in self.peers:
            if peer.name in seen:
                raise ValueError(f"site name {peer.name!r} is used twice")
            seen.add(peer.name)
        return self

    @property
    def store_url(self) -> str:
        """The store URL, defaulting to SQLite in ``state_dir``."""
        return self.store.url or f"sqlite:///{self.state_dir / 'liferaft.db'}"

    def all_sites(self) -> list[SiteSettings]:
        """This site first, then its peers."""
        return [self.site, *self.peers]

    def find_site(self, name: str) -> SiteSettings:
        for s in self.all_sites():
            if s.name == name:
                return s
        raise KeyError(name)
