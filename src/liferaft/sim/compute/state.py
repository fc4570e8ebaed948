"""State of the simulated compute service of one site.

:class:`ComputeState` owns the hosts (each with its nova-compute service and
hypervisor record), flavors, key pairs, server groups, quotas and servers.
Creating servers lives in :mod:`.boot`, server actions in :mod:`.lifecycle`;
this module holds the records, host power, lookups and usage accounting.

Host power follows Nova with its default ``resume_guests_state_on_host_boot
= False``: while a host is off its servers keep the status the API last
knew (Nova cannot reach the host), and when it comes back the guests that
were running are found stopped (``SHUTOFF``), as Nova's power-state sync
leaves them.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..http import ApiError
from .records import (
    RUNNING,
    SHUTDOWN,
    Flavor,
    Host,
    InstanceAction,
    KeyPair,
    Server,
    ServerGroup,
)

if TYPE_CHECKING:
    from ..disks import Disk
    from ..identity import Ctx
    from ..topology import SiteSpec, Topology
    from ..world import Site

#: The one availability zone of a simulated site (Nova's default name).
ZONE = "nova"

#: Quota defaults.  Nova ships instances=10, cores=20, ram=51200; the
#: simulator is configured as an operator running many tests and
#: benchmarks would configure it: unlimited (-1) compute resources.
DEFAULT_QUOTAS: dict[str, int] = {
    "instances": -1,
    "cores": -1,
    "ram": -1,
    "metadata_items": 128,
    "key_pairs": 100,
    "server_groups": -1,
    "server_group_members": -1,
    "injected_files": 5,
    "injected_file_content_bytes": 10240,
    "injected_file_path_bytes": 255,
}

_SERVICE_NS = uuid.UUID("0b8a3c52-5e1f-4b8e-9d0e-6c7f2f0a9e31")


class ComputeState:
    def __init__(self, site: Site) -> None:
        #: Hosts powered on when the site lost power (None: no outage under way).
        self._on_before_outage: set[str] | None = None
        self.site = site
        self.hosts: dict[str, Host] = {}
        self.servers: dict[str, Server] = {}
        self.flavors: dict[str, Flavor] = {}
        self.keypairs: dict[tuple[str, str], KeyPair] = {}  # (user_id, name)
        self.server_groups: dict[str, ServerGroup] = {}
        self.quotas: dict[str, dict[str, int]] = {}  # project_id -> overrides
        self.usage: dict[str, list[int]] = {}  # project_id -> [instances, cores, ram]
        self.actions: dict[str, list[InstanceAction]] = {}
        # host -> servers evacuated away while that host still ran them
        self.ghosts: dict[str, set[str]] = {}
        self._keypair_ids = itertools.count(1)

    # -- seeding ---------------------------------------------------------------
    def seed(self, topology: Topology, site_spec: SiteSpec | None = None) -> None:
        """Create the hosts and flavors the topology file asks for."""
        for f in topology.flavors:
            fid = f.id or str(uuid.uuid5(_SERVICE_NS, f"flavor/{f.name}"))
            self.flavors[fid] = Flavor(fid, f.name, f.vcpus, f.ram_mb, f.disk_gb)
        if site_spec is None:
            return
        for i, spec in enumerate(site_spec.host_specs(self.site.name), start=1):
            host = Host(
                site=self.site,
                name=spec.name,
                vcpus=spec.vcpus,
                ram_mb=spec.ram_mb,
                disk_gb=spec.disk_gb,
                max_builds=spec.max_builds,
                reserved=spec.reserved,
                index=i,
                service_id=str(uuid.uuid5(_SERVICE_NS, f"{self.site.name}/service/{spec.name}")),
                hypervisor_id=str(uuid.uuid5(_SERVICE_NS, f"{self.site.name}/hyp/{spec.name}")),
            )
            if spec.reserved:
                # Masakari's reserved hosts: the compute service stays
                # disabled until a recovery enables it.
                host.disabled = True
                host.disabled_reason = "reserved for host-HA recovery"
            self.hosts[host.name] = host

    # -- time and ids ------------------------------------------------------------
    def now(self) -> float:
        return self.site.clock.now()

    def touch(self, server: Server) -> None:
        server.updated = self.now()

    # -- host power ------------------------------------------------------------------
    def power_site(self, on: bool) -> None:
        """Cut or restore the whole site's power (the site-down fault).

        Restoring power brings back only the hosts that were on when it was
        cut ("restore last power state"): a host fenced off through its BMC
        before the outage stays off, as a real one would.
        """
        if not on:
            self._on_before_outage = {n for n, h in self.hosts.items() if h.powered_on}
            for name in self.hosts:
                self.set_host_power(name, False, cause="site-down")
            return
        was_on = self._on_before_outage if self._on_before_outage is not None else set(self.hosts)
        for name in sorted(was_on):
            if name in self.hosts:
                self.set_host_power(name, True, cause="site-up")
        self._on_before_outage = None

    def set_host_power(self, name: str, on: bool, **cause: Any) -> None:
        """Switch one host's power; records a ``power`` event (with ``cause``) in the write log."""
        host = self.hosts[name]
        if host.powered_on == on:
            return
        now = self.now()
        host.powered_on = on
        self.site.world.writelog.record(now, "power", self.site.name, host=name, on=on, **cause)
        if not on:
            host.died_at = now
            self.ghosts.pop(name, None)  # the old guests die with the power
            return
        host.died_at = None
        self._host_restarted(host)

    def _host_restarted(self, host: Host) -> None:
        if not host.alive():
            return
        # nova-compute's start (_destroy_evacuated_instances) completes the
        # evacuation records of the instances that left this host.
        host.evacuations.clear()
        for sid in sorted(host.servers):
            s = self.servers.get(sid)
            if s is not None and s.power_state == RUNNING:
                s.power_state = SHUTDOWN
                s.quiesced = False
                if s.vm_state == "active" and s.task_state is None:
                    s.vm_state = "stopped"
                self.touch(s)
        stalled, host.stalled = host.stalled, []
        for fn in stalled:
            fn()

    def on_host(self, host_name: str | None, fn: Callable[[], None]) -> None:
        """Run ``fn`` now if the host is alive, else when it comes back.

        Work a dead compute host was asked to do (finish a boot, power a
        guest off) waits for it, as an RPC cast to a stopped nova-compute does.
        """
        host = self.hosts.get(host_name or "")
        if host is None or host.alive():
            fn()
        else:
            host.stalled.append(fn)

    def server_is_running(self, server_id: str) -> bool:
        """Running on a live host and not quiesced: only then do canaries write."""
        s = self.servers.get(server_id)
        if s is None or s.host is None or s.quiesced or s.power_state != RUNNING:
            return False
        host = self.hosts.get(s.host)
        return host is not None and host.alive()

    def ghost_running(self, server_id: str) -> str | None:
        """The host still running an evacuated server's old guest, if any."""
        for host_name, ids in self.ghosts.items():
            if server_id in ids and self.hosts[host_name].alive():
                return host_name
        return None

    # -- lookups -------------------------------------------------------------------------
    def get_server(self, server_id: str, ctx: Ctx | None = None) -> Server:
        s = self.servers.get(server_id)
        if s is None or (ctx is not None and not ctx.is_admin and s.project_id != ctx.project_id):
            raise ApiError(404, f"Instance {server_id} could not be found.")
        return s

    def get_flavor(self, ref: Any, *, status: int = 404) -> Flavor:
        """A flavor by id (or a URL ending in it)."""
        fid = str(ref).rstrip("/").rsplit("/", 1)[-1]
        f = self.flavors.get(fid)
        if f is None:
            raise ApiError(status, f"Flavor {fid} could not be found.")
        return f

    def get_host(self, name: str) -> Host:
        h = self.hosts.get(name)
        if h is None:
            raise ApiError(404, f"Compute host {name} could not be found.")
        return h

    def host_by_service_id(self, service_id: str) -> Host:
        for h in self.hosts.values():
            if h.service_id == service_id or str(h.index) == service_id:
                return h
        raise ApiError(404, f"Service {service_id} could not be found.")

    def get_group(self, group_id: str, ctx: Ctx | None = None) -> ServerGroup:
        g = self.server_groups.get(group_id)
        if g is None or (ctx is not None and not ctx.is_admin and g.project_id != ctx.project_id):
            raise ApiError(404, f"Instance group {group_id} could not be found.")
        return g

    def group_hosts(self, group: ServerGroup) -> dict[str, int]:
        counts: dict[str, int] = {}
        for sid in group.members:
            s = self.servers.get(sid)
            if s is not None and s.host is not None:
                counts[s.host] = counts.get(s.host, 0) + 1
        return counts

    # -- claims and usage --------------------------------------------------------------
    def claim(self, server: Server, host: Host, need: tuple[int, int, int]) -> None:
        host.vcpus_used += need[0]
        host.ram_used += need[1]
        host.disk_used += need[2]
        host.servers.add(server.id)
        host.generation += 1
        server.host = host.name

    def release(self, server: Server, need: tuple[int, int, int]) -> None:
        host = self.hosts.get(server.host or "")
        if host is None or server.id not in host.servers:
            return
        host.vcpus_used -= need[0]
        host.ram_used -= need[1]
        host.disk_used -= need[2]
        host.servers.discard(server.id)
        host.generation += 1

    def count_usage(self, server: Server, sign: int) -> None:
        u = self.usage.setdefault(server.project_id, [0, 0, 0])
        u[0] += sign
        u[1] += sign * server.flavor.vcpus
        u[2] += sign * server.flavor.ram_mb

    def quota(self, project_id: str) -> dict[str, int]:
        return {**DEFAULT_QUOTAS, **self.quotas.get(project_id, {})}

    def quota_in_use(self, project_id: str, user_id: str | None = None) -> dict[str, int]:
        inst, cores, ram = self.usage.get(project_id, [0, 0, 0])
        return {
            "instances": inst,
            "cores": cores,
            "ram": ram,
            "key_pairs": sum(1 for (u, _n) in self.keypairs if u == user_id),
            "server_groups": sum(
                1 for g in self.server_groups.values() if g.project_id == project_id
            ),
        }

    # -- instance actions ------------------------------------------------------------
    def record_action(
        self, server: Server, action: str, ctx: Ctx | None, *, request_id: str | None = None
    ) -> InstanceAction:
        act = InstanceAction(
            action=action,
            request_id=request_id or "req-" + str(uuid.uuid4()),
            user_id=ctx.user_id if ctx else server.user_id,
            project_id=ctx.project_id if ctx else server.project_id,
            start_time=self.now(),
        )
        self.actions.setdefault(server.id, []).append(act)
        return act

    def finish_action(self, act: InstanceAction, *, error: str | None = None) -> None:
        act.finish_time = self.now()
        act.result = "Error" if error else "Success"
        act.message = error

    # -- local disks -------------------------------------------------------------------------
    def server_disk(self, server: Server) -> Disk:
        """The server's local root disk, made on first use from its image."""
        if server.disk is not None:
            return server.disk
        from ..disks import Disk

        block = self.site.world.topology.block_size
        path = self.site.state_dir / "compute" / "disks" / f"{server.id}.img"
        size = max(server.flavor.disk_gb, 1) << 30
        image = None
        get_image = getattr(self.site.image, "get", None)
        if server.image_id and get_image is not None:
            try:
                image = get_image(server.image_id)
            except ApiError:
                image = None  # the image was deleted since; the disk starts blank
        src: Disk | None = getattr(image, "disk", None)
        if src is not None:
            disk = src.copy_to(path)
            if disk.size < size:
                disk.resize(size)
        else:
            disk = Disk(path, size, block)
        server.disk = disk
        return disk

    def drop_disk(self, server: Server) -> None:
        if server.disk is not None:
            server.disk.delete()
            server.disk = None
