"""Server actions after boot: stop, start, reboot, evacuate, snapshot, quiesce, delete.

Each action checks the server's state the way Nova's
``check_instance_state`` does (409 ``Cannot 'stop' instance X while it is in
vm_state stopped``), sets the transitional ``task_state``, and finishes after
its latency from ``site.latency`` on the simulated clock.  Work for a host
that is down waits until it is back (see :meth:`ComputeState.on_host`).

Evacuation rebuilds the server on another host.  Without shared storage the
root disk is rebuilt from the image, so data written to a local disk is
lost (as in Nova); volumes stay attached and the ports move with it.  If
the source host is still powered on when the evacuation starts (the
service was forced down without fencing), the old guest keeps running
there until that host loses power: :meth:`ComputeState.ghost_running`
reports it, so the simulator can count double-running instances.  An
evacuation that is to end stopped (2.95+, or a stopped server) reads ACTIVE
(task ``powering-off``) between REBUILD and SHUTOFF, and leaves a ``done``
migration record on the source until that host's compute service restarts.

Deletion is asynchronous as in Nova: ``deleting`` while the host shuts the
guest down, ``DELETED`` for a moment, then 404.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..http import ApiError, Version
from .boot import set_error
from .records import NOSTATE, RUNNING, SHUTDOWN, Server
from .scheduler import NoValidHost, demand, select_host

if TYPE_CHECKING:
    from ..identity import Ctx
    from .state import ComputeState


def invalid_state(server: Server, action: str, attr: str = "vm_state") -> ApiError:
    value = server.vm_state if attr == "vm_state" else server.task_state
    return ApiError(409, f"Cannot '{action}' instance {server.id} while it is in {attr} {value}")


def check_state(
    server: Server,
    action: str,
    vm_states: tuple[str, ...],
    task_states: tuple[str | None, ...] = (None,),
) -> None:
    if server.vm_state not in vm_states:
        raise invalid_state(server, action)
    if server.task_state not in task_states:
        raise invalid_state(server, action, "task_state")


def check_lock(server: Server, ctx: Ctx) -> None:
    if server.locked and not ctx.is_admin:
        raise ApiError(409, f"Instance {server.id} is locked")


def _later(
    state: ComputeState, server: Server, seconds: float, fn: Callable[[Server], None]
) -> None:
    """After ``seconds``, on the server's host (waiting while it is down), run ``fn``."""
    sid, host = server.id, server.host

    def fire() -> None:
        s = state.servers.get(sid)
        if s is not None and s.host == host:
            fn(s)

    state.site.clock.call_later(seconds, lambda: state.on_host(host, fire))


def stop(state: ComputeState, server: Server, ctx: Ctx) -> None:
    check_lock(server, ctx)
    check_state(server, "stop", ("active", "error"))
    act = state.record_action(server, "stop", ctx)
    server.task_state = "powering-off"
    state.touch(server)

    def done(s: Server) -> None:
        s.vm_state, s.task_state, s.power_state, s.quiesced = "stopped", None, SHUTDOWN, False
        state.touch(s)
        state.finish_action(act)

    _later(state, server, state.site.latency.stop, done)


def start(state: ComputeState, server: Server, ctx: Ctx) -> None:
    check_lock(server, ctx)
    check_state(server, "start", ("stopped",))
    act = state.record_action(server, "start", ctx)
    server.task_state = "powering-on"
    state.touch(server)

    def done(s: Server) -> None:
        s.vm_state, s.task_state, s.power_state = "active", None, RUNNING
        state.touch(s)
        state.finish_action(act)

    _later(state, server, state.site.latency.start, done)


def reboot(state: ComputeState, server: Server, ctx: Ctx, kind: Any) -> None:
    if kind not in ("SOFT", "HARD"):
        raise ApiError(
            400,
            f"Invalid input for field/attribute type. Value: {kind}. "
            f"{kind!r} is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']",
        )
    check_lock(server, ctx)
    if kind == "SOFT":
        check_state(server, "reboot", ("active",))
    else:
        check_state(server, "reboot", ("active", "stopped", "error"), (None, "rebooting"))
    act = state.record_action(server, "reboot", ctx)
    server.task_state = "rebooting" if kind == "SOFT" else "rebooting_hard"
    state.touch(server)

    def done(s: Server) -> None:
        s.vm_state, s.task_state, s.power_state, s.quiesced = "active", None, RUNNING, False
        state.touch(s)
        state.finish_action(act)

    lat = state.site.latency
    _later(state, server, lat.stop + lat.start, done)


def evacuate(
    state: ComputeState,
    server: Server,
    ctx: Ctx,
    mv: Version,
    *,
    target: str | None,
    force: bool,
) -> None:
    """Rebuild a server of a dead host elsewhere (see the module docstring)."""
    check_state(server, "evacuate", ("active", "stopped", "error"))
    now = state.now()
    source = state.hosts.get(server.host or "")
    if source is None:
        raise ApiError(409, f"Instance {server.id} is not ready")
    if source.service_up(now):
        # Nova answers ComputeServiceInUse with 400, not 409.
        raise ApiError(400, f"Compute service of {source.name} is still in use.")
    if target is not None:
        state.get_host(target)
        if target == source.name:
            raise ApiError(400, "The target host can't be the same one.")
    act = state.record_action(server, "evacuate", ctx)
    need = demand(server.flavor, volume_backed=server.booted_from_volume)
    group = state.server_groups.get(server.group_id or "")
    counts = state.group_hosts(group) if group is not None else None
    if counts is not None and server.host is not None:
        counts[server.host] -= 1  # the server itself leaves its host
    try:
        dest = select_host(
            state.hosts.values(),
            now,
            need,
            group=group,
            group_hosts=counts,
            exclude=frozenset({source.name}),
            requested=target,
            force=force,
        )
    except NoValidHost as exc:
        set_error(state, server, str(exc))
        state.finish_action(act, error=str(exc))
        return
    prior, origin = server.vm_state, source
    state.site.world.writelog.record(
        now,
        "evacuate",
        state.site.name,
        host=source.name,
        instance=server.id,
        source=source.name,
        target=dest.name,
    )
    if source.alive() and server.power_state == RUNNING:
        state.ghosts.setdefault(source.name, set()).add(server.id)
    state.release(server, need)
    state.claim(server, dest, need)
    source.evacuations[server.id] = "accepted"
    server.task_state = "rebuilding"
    server.power_state = NOSTATE
    server.quiesced = False
    server.fault = None
    if not server.booted_from_volume:
        state.drop_disk(server)  # no shared storage: the root disk is rebuilt from the image
    move_ports = getattr(state.site.network, "move_ports", None)
    if move_ports is not None:
        move_ports(server.id, dest.name)
    state.touch(server)

    def stopped(s: Server) -> None:
        s.vm_state, s.task_state, s.power_state = "stopped", None, SHUTDOWN
        state.touch(s)
        state.finish_action(act)

    def done(s: Server) -> None:
        # Nova spawns the guest on the destination (ACTIVE, running), marks the
        # migration done and, when the server is to end stopped (2.95+ unless it
        # was in ERROR, or it was stopped before), powers it off: the status
        # reads ACTIVE (task powering-off) for the length of a stop.
        s.vm_state, s.task_state, s.power_state = "active", None, RUNNING
        s.launched_at = state.now()
        if s.id in origin.evacuations:
            origin.evacuations[s.id] = "done"
        if prior == "stopped" or (mv >= (2, 95) and prior != "error"):
            s.task_state = "powering-off"
            state.touch(s)
            _later(state, s, state.site.latency.stop, stopped)
            return
        state.touch(s)
        state.finish_action(act)

    lat = state.site.latency
    _later(state, server, lat.evacuate + lat.boot, done)


def new_admin_pass() -> str:
    return secrets.token_urlsafe(9)


def quiesce(state: ComputeState, server: Server, ctx: Ctx) -> None:
    """Freeze the guest's file systems (the OPNFV quiesce proposal; canaries pause)."""
    check_lock(server, ctx)
    check_state(server, "quiesce", ("active",))
    if server.quiesced:
        raise ApiError(409, f"Instance {server.id} is already quiesced.")
    act = state.record_action(server, "quiesce", ctx)
    server.task_state = "quiescing"
    state.touch(server)

    def done(s: Server) -> None:
        s.quiesced, s.task_state = True, None
        state.touch(s)
        state.finish_action(act)
        state.site.world.writelog.record(
            state.now(), "quiesce", state.site.name, host=s.host, instance=s.id
        )

    _later(state, server, state.site.latency.quiesce, done)


def unquiesce(state: ComputeState, server: Server, ctx: Ctx) -> None:
    check_lock(server, ctx)
    # A snapshot taken while frozen is uploading (``createImage``'s point in time is taken at
    # once): the guest may be thawed meanwhile, and the upload's task state stays.
    check_state(server, "unquiesce", ("active",), (None, "image_uploading"))
    if not server.quiesced:
        raise ApiError(409, f"Instance {server.id} is not quiesced.")
    act = state.record_action(server, "unquiesce", ctx)
    if server.task_state is None:
        server.task_state = "unquiescing"
    state.touch(server)

    def done(s: Server) -> None:
        s.quiesced = False
        if s.task_state == "unquiescing":
            s.task_state = None
        state.touch(s)
        state.finish_action(act)
        state.site.world.writelog.record(
            state.now(), "unquiesce", state.site.name, host=s.host, instance=s.id
        )

    _later(state, server, state.site.latency.quiesce, done)


def create_image(state: ComputeState, server: Server, ctx: Ctx, name: Any, metadata: Any) -> str:
    """Snapshot the server's root disk into a new image; returns the image id."""
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise ApiError(400, f"Invalid input for field/attribute name. Value: {name}.")
    if metadata is not None and not isinstance(metadata, dict):
        raise ApiError(400, f"Invalid input for field/attribute metadata. Value: {metadata}.")
    check_lock(server, ctx)
    check_state(server, "createImage", ("active", "stopped", "paused", "suspended"))
    create_from_disk = getattr(state.site.image, "create_from_disk", None)
    if create_from_disk is None:
        raise ApiError(503, "The image service is not available.")
    if server.booted_from_volume:
        # Nova would snapshot the volumes and make an image pointing at
        # them; Liferaft snapshots volumes itself, so the simulator does not.
        raise ApiError(
            409, f"Cannot 'createImage' instance {server.id}: it is booted from a volume"
        )
    act = state.record_action(server, "createImage", ctx)
    props = {str(k): str(v) for k, v in (metadata or {}).items()}
    props.update(
        {"instance_uuid": server.id, "image_type": "snapshot", "base_image_ref": server.image_id}
    )
    image = create_from_disk(
        name=name, disk=state.server_disk(server), project_id=server.project_id, properties=props
    )
    server.task_state = "image_uploading"
    state.touch(server)

    def done(s: Server) -> None:
        s.task_state = None
        state.touch(s)
        state.finish_action(act)

    _later(state, server, state.site.latency.image_create, done)
    return str(image.id)


def lock(state: ComputeState, server: Server, ctx: Ctx, reason: str | None) -> None:
    state.record_action(server, "lock", ctx)
    server.locked, server.locked_reason = True, reason
    state.touch(server)


def unlock(state: ComputeState, server: Server, ctx: Ctx) -> None:
    state.record_action(server, "unlock", ctx)
    server.locked, server.locked_reason = False, None
    state.touch(server)


# -- deletion ---------------------------------------------------------------------------
def delete(state: ComputeState, server: Server, ctx: Ctx) -> None:
    """Nova's delete: the compute host shuts the guest down (task ``deleting``),
    the server reads ``DELETED`` while its allocations are removed, then 404.

    Without a host, while building, or when the host's compute service is
    down, Nova's API deletes the server at once (its "local delete").
    """
    check_lock(server, ctx)
    if server.task_state == "deleting" or server.vm_state == "deleted":
        return
    host = state.hosts.get(server.host or "")
    if host is None or server.vm_state == "building" or not host.service_up(state.now()):
        destroy(state, server)
        return
    server.task_state = "deleting"
    state.touch(server)

    def deleted(s: Server) -> None:
        s.vm_state, s.task_state, s.power_state = "deleted", None, NOSTATE
        state.touch(s)
        # the claims go from Placement before the record is destroyed
        state.site.clock.call_later(state.site.latency.api_call, lambda: destroy(state, s))

    _later(state, server, state.site.latency.stop, deleted)


def destroy(state: ComputeState, server: Server) -> None:
    """Remove a server and everything Nova made for it (claims, ports, volumes, disk)."""
    if state.servers.pop(server.id, None) is None:
        return
    state.count_usage(server, -1)
    state.release(server, demand(server.flavor, volume_backed=server.booted_from_volume))
    for ghosts in state.ghosts.values():
        ghosts.discard(server.id)
    for host in state.hosts.values():  # its migration records go with it
        host.evacuations.pop(server.id, None)
    group = state.server_groups.get(server.group_id or "")
    if group is not None and server.id in group.members:
        group.members.remove(server.id)
    unbind = getattr(state.site.network, "unbind_ports", None)
    if unbind is not None:
        unbind(server.id)  # deletes the ports Nova made, detaches the user's
    for vid, _dev, delete_on_termination in server.volumes:
        _detach_and_maybe_delete(state, vid, server.id, delete_on_termination)
    server.volumes = []
    state.drop_disk(server)
    state.actions.pop(server.id, None)
    server.vm_state, server.task_state = "deleted", None


def _detach_and_maybe_delete(
    state: ComputeState, volume_id: str, server_id: str, delete_it: bool, tries: int = 0
) -> None:
    vol_api = state.site.volume
    if tries == 0:
        with contextlib.suppress(ApiError, AttributeError):  # detached, or no volume service
            vol_api.detach(volume_id, server_id)
    if not delete_it:
        return
    delete_volume = getattr(vol_api, "delete_volume", None)
    if delete_volume is None:
        return
    try:
        status = getattr(vol_api.get(volume_id), "status", "available")
    except ApiError:
        return  # gone already
    if status in ("detaching", "in-use") and tries < 60:
        # The detach takes simulated time; delete once it is available.
        state.site.clock.call_later(
            1.0, lambda: _detach_and_maybe_delete(state, volume_id, server_id, True, tries + 1)
        )
        return
    with contextlib.suppress(ApiError):  # someone else removed or is using it
        delete_volume(vol_api.get(volume_id))
