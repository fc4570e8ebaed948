"""Creating servers: validate the request as Nova does, schedule, and build.

The build follows Nova's sequence: the API validates (400 for a bad flavor,
image, network, key pair or group), the scheduler claims a host (no host:
the server goes to ``ERROR`` with a ``No valid host`` fault), ports are
made or bound on the host, volumes are created or reserved, and the compute
host builds it.  A host builds at most ``max_builds`` servers at once (Nova's
``max_concurrent_builds``); the others wait their turn.  Each build takes
``site.latency.boot`` simulated seconds after its volumes are attached.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..http import ApiError, Version
from .records import RUNNING, Server, ServerGroup
from .scheduler import NoValidHost, demand, select_host
from .state import ZONE

if TYPE_CHECKING:
    from ..identity import Ctx
    from .state import ComputeState

#: How long Nova waits for a volume it created to become available
#: (``block_device_allocate_retries`` x ``..._interval``).
VOLUME_WAIT_TRIES = 60
VOLUME_WAIT_INTERVAL = 3.0


@dataclass
class VolumeRequest:
    """One volume-destination entry of ``block_device_mapping_v2``."""

    source: str  # volume, image, snapshot, blank
    uuid: str | None
    size_gb: int | None
    boot_index: int | None
    delete_on_termination: bool
    device: str | None
    volume_id: str | None = None  # the volume, once created or checked


@dataclass
class BootRequest:
    name: str
    flavor_id: str
    image_id: str  # "" for a volume-backed server
    volumes: list[VolumeRequest] = field(default_factory=list)
    networks: str | list[dict[str, str]] = "auto"
    key_name: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    min_count: int = 1
    max_count: int = 1
    forced_host: str | None = None
    group_id: str | None = None
    description: str | None = None
    return_reservation_id: bool = False


def _invalid(field_name: str, value: Any, why: str) -> ApiError:
    return ApiError(400, f"Invalid input for field/attribute {field_name}. Value: {value}. {why}")


def _uuid_of(ref: Any) -> str:
    return str(ref).rstrip("/").rsplit("/", 1)[-1]


def _int_field(body: dict[str, Any], key: str, default: int) -> int:
    value = body.get(key, default)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _invalid(key, value, f"{value!r} is not valid under any of the given schemas")
    return value


def parse(body: Any, hints: Any, mv: Version, ctx: Ctx) -> BootRequest:
    """The ``server`` object of a create request, checked as Nova's schema does."""
    if not isinstance(body, dict):
        raise _invalid("server", body, "'server' must be an object")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise _invalid("name", name, "'name' must be a non-empty string of at most 255 characters")
    if "flavorRef" not in body:
        raise _invalid("server", "...", "'flavorRef' is a required property")
    req = BootRequest(name=name, flavor_id=_uuid_of(body["flavorRef"]), image_id="")
    req.min_count = _int_field(body, "min_count", 1)
    req.max_count = _int_field(body, "max_count", req.min_count)
    if req.min_count > req.max_count:
        raise ApiError(400, "min_count must be <= max_count")
    meta = body.get("metadata", {})
    if not isinstance(meta, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and 0 < len(k) <= 255 and len(v) <= 255
        for k, v in meta.items()
    ):
        raise _invalid("metadata", meta, "metadata keys and values must be strings of 255 or less")
    req.metadata = dict(meta)
    key_name = body.get("key_name")
    if key_name is not None and not isinstance(key_name, str):
        raise _invalid("key_name", key_name, "key_name must be a string")
    req.key_name = key_name
    desc = body.get("description")
    if desc is not None and (mv < (2, 19) or not isinstance(desc, str)):
        raise _invalid("description", desc, "Additional properties are not allowed")
    req.description = desc
    req.return_reservation_id = bool(body.get("return_reservation_id", False))
    _parse_zone(req, body.get("availability_zone"), ctx)
    _parse_networks(req, body, mv)
    _parse_block_devices(req, body)
    if req.image_id == "" and not any(v.boot_index == 0 for v in req.volumes):
        image_ref = body.get("imageRef")
        if not image_ref:
            raise ApiError(
                400,
                "Block Device Mapping is Invalid: Boot sequence for the instance and "
                "image/block device mapping combination is not valid.",
            )
        req.image_id = _uuid_of(image_ref)
    if isinstance(hints, dict) and hints.get("group") is not None:
        req.group_id = str(hints["group"])
    return req


def _parse_zone(req: BootRequest, zone: Any, ctx: Ctx) -> None:
    if zone is None or zone == "":
        return
    if not isinstance(zone, str):
        raise _invalid("availability_zone", zone, "availability_zone must be a string")
    az, _, rest = zone.partition(":")
    host = rest.partition(":")[0]
    if az not in ("", ZONE):
        raise ApiError(400, "The requested availability zone is not available")
    if host:
        if not ctx.is_admin:
            raise ApiError(
                403,
                "Policy doesn't allow os_compute_api:servers:create:forced_host to be performed.",
            )
        req.forced_host = host


def _parse_networks(req: BootRequest, body: dict[str, Any], mv: Version) -> None:
    if "networks" not in body:
        if mv >= (2, 37):
            raise _invalid("server", "...", "'networks' is a required property")
        req.networks = "auto"
        return
    nets = body["networks"]
    if isinstance(nets, str):
        if mv < (2, 37) or nets not in ("auto", "none"):
            raise _invalid("networks", nets, f"{nets!r} is not of type 'array'")
        req.networks = nets
        return
    if not isinstance(nets, list):
        raise _invalid("networks", nets, f"{nets!r} is not of type 'array'")
    out: list[dict[str, str]] = []
    for entry in nets:
        if not isinstance(entry, dict) or not (entry.get("uuid") or entry.get("port")):
            raise ApiError(400, "Bad networks format: network uuid is not in proper format")
        out.append({k: str(v) for k, v in entry.items() if k in ("uuid", "port", "fixed_ip")})
    req.networks = out


def _parse_block_devices(req: BootRequest, body: dict[str, Any]) -> None:
    bdms = body.get("block_device_mapping_v2", [])
    if not isinstance(bdms, list):
        raise _invalid("block_device_mapping_v2", bdms, "must be an array")
    for bdm in bdms:
        if not isinstance(bdm, dict):
            raise _invalid("block_device_mapping_v2", bdm, "must be an object")
        source = bdm.get("source_type", "volume")
        dest = bdm.get("destination_type", "volume" if source != "image" else "local")
        boot_index = bdm.get("boot_index")
        try:
            boot_index = None if boot_index in (None, "", "none") else int(boot_index)
        except (TypeError, ValueError) as exc:
            raise _invalid("boot_index", boot_index, "boot_index must be an integer") from exc
        if source not in ("volume", "image", "snapshot", "blank"):
            raise _invalid("source_type", source, "is not one of volume, image, snapshot, blank")
        if dest == "local":
            if source == "image" and boot_index == 0:
                req.image_id = str(bdm.get("uuid") or body.get("imageRef") or "")
            continue  # ephemeral and swap disks live on the host's local disk
        size = bdm.get("volume_size")
        try:
            size_gb = None if size in (None, "") else int(size)
        except (TypeError, ValueError) as exc:
            raise _invalid("volume_size", size, "volume_size must be an integer") from exc
        if source in ("image", "blank") and not size_gb:
            raise ApiError(
                400,
                "Block Device Mapping is Invalid: Images with destination_type 'volume' "
                "need to have a non-zero size specified.",
            )
        if source != "blank" and not bdm.get("uuid"):
            raise ApiError(400, "Block Device Mapping is Invalid: a uuid is required.")
        req.volumes.append(
            VolumeRequest(
                source=source,
                uuid=str(bdm["uuid"]) if bdm.get("uuid") else None,
                size_gb=size_gb,
                boot_index=boot_index,
                delete_on_termination=bool(bdm.get("delete_on_termination", False)),
                device=bdm.get("device_name"),
            )
        )
    if any(v.boot_index == 0 for v in req.volumes):
        req.image_id = ""


# -- validation against the site's state -------------------------------------------
def _check_refs(state: ComputeState, req: BootRequest, ctx: Ctx) -> ServerGroup | None:
    site = state.site
    state.get_flavor(req.flavor_id, status=400)
    if req.image_id:
        get_image = getattr(site.image, "get", None)
        if get_image is not None:
            try:
                image = get_image(req.image_id)
            except ApiError as exc:
                raise ApiError(400, f"Image {req.image_id} could not be found.") from exc
            status = getattr(image, "status", "active")
            if status != "active":
                raise ApiError(400, f"Image {req.image_id} is not active.")
    if req.key_name is not None and (ctx.user_id, req.key_name) not in state.keypairs:
        raise ApiError(400, "Invalid key_name provided.")
    if len(req.metadata) > state.quota(ctx.project_id)["metadata_items"] >= 0:
        raise ApiError(403, "Quota exceeded for metadata_items: Requested too many metadata items")
    group = None
    if req.group_id is not None:
        try:
            group = state.get_group(req.group_id, ctx)
        except ApiError as exc:
            raise ApiError(400, exc.message) from exc
    if req.forced_host is not None and req.forced_host not in state.hosts:
        raise ApiError(400, f"Compute host {req.forced_host} could not be found.")
    for vol in req.volumes:
        if vol.source != "volume":
            continue
        try:
            v = site.volume.get(str(vol.uuid))
        except ApiError as exc:
            raise ApiError(400, f"Volume {vol.uuid} could not be found.") from exc
        except AttributeError:
            continue  # the volume service is not there yet
        if getattr(v, "status", "available") != "available":
            raise ApiError(
                400,
                f"Invalid volume: volume '{vol.uuid}' status must be 'available'. "
                f"Currently in '{v.status}'",
            )
    if isinstance(req.networks, list):
        for entry in req.networks:
            _check_network(state, entry)
    elif req.networks == "auto":
        _auto_networks(state, ctx.project_id)  # 409 when ambiguous, as Nova's API answers
    return group


def _check_network(state: ComputeState, entry: dict[str, str]) -> None:
    net = state.site.network
    if "port" in entry:
        ports = getattr(net, "ports", None)
        if isinstance(ports, dict):
            port = ports.get(entry["port"])
            if port is None:
                raise ApiError(400, f"Port id {entry['port']} could not be found.")
            if getattr(port, "device_id", ""):
                raise ApiError(409, f"Port {entry['port']} is still in use.")
        return
    networks = getattr(net, "networks", None)
    if isinstance(networks, dict) and entry["uuid"] not in networks:
        raise ApiError(400, f"Network {entry['uuid']} could not be found.")


def _quota_count(state: ComputeState, req: BootRequest, ctx: Ctx) -> int:
    """How many servers to make: max_count if the quota allows, at least min_count."""
    flavor = state.get_flavor(req.flavor_id, status=400)
    quota = state.quota(ctx.project_id)
    used = state.usage.get(ctx.project_id, [0, 0, 0])
    allowed = req.max_count
    for i, (key, per) in enumerate(
        (("instances", 1), ("cores", flavor.vcpus), ("ram", flavor.ram_mb))
    ):
        limit = quota[key]
        if limit < 0:
            continue
        room = (limit - used[i]) // per if per else req.max_count
        if room < req.min_count:
            raise ApiError(
                403,
                f"Quota exceeded for {key}: Requested {req.min_count * per}, but already "
                f"used {used[i]} of {limit} {key}",
            )
        allowed = min(allowed, room)
    return allowed


# -- creation ---------------------------------------------------------------------------
def create_servers(state: ComputeState, req: BootRequest, ctx: Ctx) -> list[Server]:
    group = _check_refs(state, req, ctx)
    count = _quota_count(state, req, ctx)
    flavor = state.get_flavor(req.flavor_id, status=400)
    now = state.now()
    reservation = "r-" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(8))
    made: list[Server] = []
    try:
        for i in range(count):
            server = Server(
                id=state.site.new_id(),
                name=f"{req.name}-{i + 1}" if count > 1 else req.name,
                project_id=ctx.project_id,
                user_id=ctx.user_id,
                flavor=flavor,
                image_id=req.image_id,
                created=now,
                updated=now,
                availability_zone=ZONE,
                key_name=req.key_name,
                metadata=dict(req.metadata),
                description=req.description,
                launch_index=i,
                reservation_id=reservation,
            )
            state.servers[server.id] = server
            state.count_usage(server, +1)
            made.append(server)
            act = state.record_action(server, "create", ctx)
            if group is not None:
                server.group_id = group.id
            _schedule(state, server, req, group, act)
    except ApiError:
        for server in made:
            _undo(state, server)
        raise
    return made


def _schedule(
    state: ComputeState, server: Server, req: BootRequest, group: ServerGroup | None, act: Any
) -> None:
    need = demand(server.flavor, volume_backed=server.booted_from_volume)
    try:
        host = select_host(
            state.hosts.values(),
            state.now(),
            need,
            group=group,
            group_hosts=state.group_hosts(group) if group is not None else None,
            requested=req.forced_host,
            force=req.forced_host is not None,
        )
    except NoValidHost as exc:
        set_error(state, server, str(exc), code=500)
        state.finish_action(act, error=str(exc))
        if group is not None:
            group.members.append(server.id)
        return
    state.claim(server, host, need)
    if group is not None:
        group.members.append(server.id)
    server.task_state = "networking"
    try:
        _allocate_network(state, server, req.networks)
    except ApiError as exc:
        # Nova allocates ports on the compute host: a failure there (such as
        # an exhausted subnet) leaves the server in ERROR, not the request.
        unbind = getattr(state.site.network, "unbind_ports", None)
        if unbind is not None:
            unbind(server.id)
        server.ports = []
        state.release(server, need)
        msg = f"Build of instance {server.id} aborted: {exc.message}"
        set_error(state, server, msg)
        state.finish_action(act, error=msg)
        return
    server.volumes = _prepare_volumes(state, server, req.volumes)
    server.task_state = "block_device_mapping"
    if host.building < host.max_builds:
        host.building += 1
        _attach_then_spawn(state, server.id, host.name, 0, act)
    else:
        host.build_queue.append((server.id, act))


def _allocate_network(state: ComputeState, server: Server, networks: Any) -> None:
    """Make or bind the server's ports (nothing when the network service lacks ports)."""
    net = state.site.network
    create_port = getattr(net, "create_port", None)
    if create_port is None or networks == "none":
        return
    if networks == "auto":
        nets = _auto_networks(state, server.project_id)
        if not nets:
            return
        networks = [{"uuid": nets[0]}]
    for entry in networks:
        if "port" in entry:
            net.bind_port(entry["port"], device_id=server.id, host=server.host)
            server.ports.append(entry["port"])
        else:
            port = create_port(
                project_id=server.project_id,
                network_id=entry["uuid"],
                device_id=server.id,
                host=server.host,
                fixed_ip=entry.get("fixed_ip"),
            )
            server.ports.append(port.id)


def _auto_networks(state: ComputeState, project_id: str) -> list[str]:
    """Nova's 'auto': the one network the project may use (its own or a shared one)."""
    networks = getattr(state.site.network, "networks", None)
    if not isinstance(networks, dict):
        return []
    usable = [
        n.id
        for n in networks.values()
        if not getattr(n, "external", getattr(n, "router_external", False))
        and (getattr(n, "project_id", None) == project_id or getattr(n, "shared", False))
    ]
    if len(usable) > 1:
        raise ApiError(
            409,
            "Multiple possible networks found, use a Network ID to be more specific.",
        )
    return usable


def _prepare_volumes(
    state: ComputeState, server: Server, volumes: list[VolumeRequest]
) -> list[tuple[str, str, bool]]:
    """Create the volumes the mapping asks for; returns (id, device, delete_on_termination)."""
    out: list[tuple[str, str, bool]] = []
    vol_api = state.site.volume
    letters = iter(string.ascii_lowercase[1:])
    for v in sorted(volumes, key=lambda v: (v.boot_index is None, v.boot_index or 0)):
        if v.source == "volume":
            vid = str(v.uuid)
            reserve = getattr(vol_api, "reserve", None)
            if reserve is not None:  # as Nova's API does, so no other server takes it
                reserve(vol_api.get(vid), server.id)
        else:
            try:
                vol = vol_api.create_volume(
                    project_id=server.project_id,
                    size_gb=int(v.size_gb or 1),
                    name="",
                    image_id=v.uuid if v.source == "image" else None,
                    snapshot_id=v.uuid if v.source == "snapshot" else None,
                )
            except AttributeError as exc:
                raise ApiError(400, "Block storage is not available on this site.") from exc
            except ApiError as exc:
                raise ApiError(400, f"Block Device Mapping is Invalid: {exc.message}") from exc
            vid = vol.id
        device = v.device or ("/dev/vda" if v.boot_index == 0 else f"/dev/vd{next(letters)}")
        out.append((vid, device, v.delete_on_termination))
    return out


def _attach_then_spawn(
    state: ComputeState, server_id: str, host_name: str, index: int, act: Any, tries: int = 0
) -> None:
    """Attach the server's volumes one by one (waiting while they are created), then spawn."""
    server = state.servers.get(server_id)
    if server is None or server.host != host_name:
        _free_build_slot(state, host_name)
        return
    if index >= len(server.volumes):
        server.task_state = "spawning"
        state.site.clock.call_later(
            state.site.latency.boot,
            lambda: state.on_host(host_name, lambda: _finish(state, server_id, host_name, act)),
        )
        return
    vid, device, _dot = server.volumes[index]
    vol_api = state.site.volume
    try:
        status = getattr(vol_api.get(vid), "status", "available")
    except ApiError:
        status = "missing"
    if status in ("creating", "downloading") and tries < VOLUME_WAIT_TRIES:
        # Nova polls Cinder until a volume it asked for is ready.  The first
        # look is at once (after events already due, such as a zero-latency
        # volume becoming available), then every interval.
        state.site.clock.call_later(
            VOLUME_WAIT_INTERVAL if tries else 0.0,
            lambda: _attach_then_spawn(state, server_id, host_name, index, act, tries + 1),
        )
        return
    try:
        if status not in ("available", "reserved"):
            raise ApiError(
                400,
                f"Volume {vid} did not finish being created even after we waited "
                f"{int(tries * VOLUME_WAIT_INTERVAL)} seconds or {tries} attempts. "
                f"And its status is {status}.",
            )
        vol_api.attach(vid, server_id, host_name, device)
    except ApiError as exc:
        msg = f"Build of instance {server_id} aborted: {exc.message}"
        set_error(state, server, msg, code=500)
        state.finish_action(act, error=msg)
        _free_build_slot(state, host_name)
        return
    _attach_then_spawn(state, server_id, host_name, index + 1, act)


def _finish(state: ComputeState, server_id: str, host_name: str, act: Any) -> None:
    server = state.servers.get(server_id)
    if server is not None and server.host == host_name and server.vm_state == "building":
        server.vm_state = "active"
        server.task_state = None
        server.power_state = RUNNING
        server.launched_at = state.now()
        state.touch(server)
        state.finish_action(act)
    _free_build_slot(state, host_name)


def _free_build_slot(state: ComputeState, host_name: str) -> None:
    host = state.hosts.get(host_name)
    if host is None:
        return
    host.building = max(0, host.building - 1)
    while host.build_queue and host.building < host.max_builds:
        server_id, act = host.build_queue.pop(0)
        server = state.servers.get(server_id)
        if server is None or server.host != host_name:
            continue
        host.building += 1
        _attach_then_spawn(state, server_id, host_name, 0, act)


def set_error(state: ComputeState, server: Server, message: str, *, code: int = 500) -> None:
    server.vm_state = "error"
    server.task_state = None
    server.fault = {"code": code, "message": message, "created": state.now()}
    state.touch(server)


def _undo(state: ComputeState, server: Server) -> None:
    """Forget a server whose creation failed part way (ports, claims, usage)."""
    from .lifecycle import destroy

    destroy(state, server)
