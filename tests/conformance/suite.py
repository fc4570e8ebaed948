"""The conformance suite: the OpenStack behaviours Liferaft relies on.

Written once against an openstacksdk ``Connection`` and run against two kinds
of target: the simulator (``test_sim.py``) and Nova's and Cinder's own
in-process functional environments (``real_nova.py``, ``real_cinder.py``).
This module must import nothing but the standard library and openstacksdk: it
runs in the main venv and in the separate conformance venv.

Each behaviour gets a fresh :class:`Target` and a :class:`Recorder` and
returns nothing; the recorder's :meth:`Recorder.result` is the behaviour's
record, the unit that ``compare.py`` diffs between the two sides:

``histories``
    label -> the distinct statuses seen, polled after every action, framed by
    ``<new>`` and ``<gone>``;
``final``
    label -> a few fields read at the end of a phase (status, power state,
    whether the host changed, attachment counts ...);
``errors``
    name -> ``{"status", "keys", "code"}`` of an error answer: HTTP status,
    the body's top-level keys and its inner ``code``;
``microversion``
    the version the client negotiated for the behaviour's service;
``violations``
    steps of the histories that ``transitions.py`` forbids (must stay empty);
``outcome``
    ``ok`` or why the behaviour stopped.

IDs, names, times and messages are never recorded: they differ by nature.
"""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from openstack import exceptions as sdk_exc

from tests.conformance import transitions
from tests.conformance.transitions import GONE, NEW

UNKNOWN_ID = "7d1fa3b2-0000-4000-8000-00000000dead"


@dataclass
class Target:
    """One cloud under test, as the suite needs it.

    ``tick`` is called between polls: against real services a short wait,
    against the simulator a step of its clock.
    """

    name: str
    conn: Any  # openstack.connection.Connection (Any: the SDK is untyped here)
    tick: Callable[[], None]
    max_ticks: int = 400
    image_id: str | None = None
    flavor_id: str | None = None
    networks: Any = "none"
    #: returns a volume id that the compute API can attach to a server
    volume_for_server: Callable[[], str] | None = None
    #: restarts the nova-compute service of a host (its guests survive)
    restart_compute: Callable[[str], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Timeout(Exception):
    pass


class Recorder:
    def __init__(self, behaviour: Behaviour, target: Target) -> None:
        self.behaviour = behaviour
        self.target = target
        self.histories: dict[str, list[str]] = {}
        self.kinds: dict[str, str] = {}
        self.final: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, dict[str, Any]] = {}
        self.outcome = "ok"

    # -- statuses ------------------------------------------------------------
    def observe(self, label: str, kind: str, status: str) -> None:
        self.kinds[label] = kind
        history = self.histories.setdefault(label, [NEW])
        if history[-1] != status:
            history.append(status)

    def wait(
        self,
        label: str,
        kind: str,
        fetch: Callable[[], Any],
        until: Callable[[Any], bool] | set[str],
        *,
        status_of: Callable[[Any], str] = lambda r: str(r.status),
    ) -> Any:
        """Poll ``fetch`` (a 404 counts as ``<gone>``) until ``until`` holds.

        ``until`` is a set of statuses or a predicate on the fetched resource
        (``None`` when gone).  Every distinct status is recorded.
        """
        done = (lambda r: status_of(r) in until) if isinstance(until, set) else until
        for _ in range(self.target.max_ticks):
            try:
                res = fetch()
                status = status_of(res)
            except sdk_exc.NotFoundException:
                res, status = None, GONE
            self.observe(label, kind, status)
            if (res is None and isinstance(until, set) and GONE in until) or (
                res is not None and done(res)
            ):
                return res
            if res is None and not isinstance(until, set):
                if done(None):
                    return None
                raise Timeout(f"{label} disappeared while waiting")
            self.target.tick()
        raise Timeout(
            f"{label} still {self.histories[label][-1]} after {self.target.max_ticks} polls"
        )

    def set_final(self, label: str, **fields: Any) -> None:
        self.final.setdefault(label, {}).update(fields)

    # -- errors --------------------------------------------------------------
    def expect_error(self, name: str, call: Callable[[], Any]) -> None:
        """Record the error answer of ``call`` (or its success status)."""
        try:
            res = call()
        except sdk_exc.HttpException as exc:
            self.errors[name] = error_shape(exc.status_code, exc.response)
            return
        status = getattr(res, "status_code", None)
        self.errors[name] = {"status": status if isinstance(status, int) else "ok"}

    def result(self) -> dict[str, Any]:
        bad: list[str] = []
        for label, history in self.histories.items():
            bad += [f"{label}: {v}" for v in transitions.violations(self.kinds[label], history)]
        return {
            "service": self.behaviour.service,
            "microversion": microversion(self.target.conn, self.behaviour.service),
            "histories": self.histories,
            "final": self.final,
            "errors": self.errors,
            "violations": bad,
            "outcome": self.outcome,
        }


def error_shape(status: int | None, response: Any) -> dict[str, Any]:
    shape: dict[str, Any] = {"status": status, "keys": [], "code": None}
    try:
        body = response.json() if response is not None else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        shape["keys"] = sorted(body)
        inner = next(iter(body.values()), None) if len(body) == 1 else None
        if isinstance(inner, dict):
            shape["code"] = inner.get("code")
    return shape


def microversion(conn: Any, service: str) -> str | None:
    """The microversion the SDK sends for this service's main resource."""
    from openstack.block_storage.v3.volume import Volume
    from openstack.compute.v2.server import Server

    try:
        if service == "compute":
            return Server._get_microversion(conn.compute)  # type: ignore[no-any-return]
        return Volume._get_microversion(conn.block_storage)  # type: ignore[no-any-return]
    except Exception:
        return None


def raw(response: Any) -> Any:
    """Raise the SDK's exception for an error answer of a raw proxy call."""
    sdk_exc.raise_from_response(response)
    return response


# -- the behaviours ------------------------------------------------------------
@dataclass(frozen=True)
class Behaviour:
    name: str
    service: str  # "compute" | "block-storage"
    doc: str
    run: Callable[[Target, Recorder], None]


BEHAVIOURS: dict[str, Behaviour] = {}


def behaviour(service: str) -> Callable[[Callable[[Target, Recorder], None]], Any]:
    def register(fn: Callable[[Target, Recorder], None]) -> Any:
        name = fn.__name__
        BEHAVIOURS[name] = Behaviour(name, service, (fn.__doc__ or "").strip(), fn)
        return fn

    return register


def run_behaviour(name: str, target: Target) -> dict[str, Any]:
    b = BEHAVIOURS[name]
    rec = Recorder(b, target)
    try:
        b.run(target, rec)
    except Exception as exc:
        rec.outcome = f"failed: {type(exc).__name__}: {exc}"
        rec.final.setdefault("_traceback", {})["text"] = traceback.format_exc(limit=6)
    return rec.result()


# compute ---------------------------------------------------------------------
def _boot(t: Target, rec: Recorder, label: str = "server") -> Any:
    server = t.conn.compute.create_server(
        name=f"conf-{uuid.uuid4().hex[:8]}",
        image_id=t.image_id,
        flavor_id=t.flavor_id,
        networks=t.networks,
    )
    return rec.wait(
        label, "server", lambda: t.conn.compute.get_server(server.id), {"ACTIVE", "ERROR"}
    )


def _delete_server(t: Target, rec: Recorder, server: Any, label: str = "server") -> None:
    t.conn.compute.delete_server(server.id)
    rec.wait(label, "server", lambda: t.conn.compute.get_server(server.id), {GONE})


@behaviour("compute")
def boot_server(t: Target, rec: Recorder) -> None:
    """Boot a server from an image: BUILD -> ACTIVE, running, on a host; delete it."""
    s = _boot(t, rec)
    rec.set_final(
        "server",
        status=s.status,
        power_state=s.power_state,
        has_host=bool(s.compute_host),
        image_matches=(s.image or {}).get("id") == t.image_id,
    )
    _delete_server(t, rec, s)


@behaviour("compute")
def stop_start_server(t: Target, rec: Recorder) -> None:
    """Stop (ACTIVE -> SHUTOFF, power state 4) and start (-> ACTIVE, 1); 409 on a repeat."""
    s = _boot(t, rec)
    rec.expect_error("start_active_server", lambda: t.conn.compute.start_server(s))
    t.conn.compute.stop_server(s)
    s = rec.wait(
        "server",
        "server",
        lambda: t.conn.compute.get_server(s.id),
        lambda r: r.status == "SHUTOFF" and not r.task_state,
    )
    rec.set_final("after_stop", status=s.status, power_state=s.power_state)
    rec.expect_error("stop_stopped_server", lambda: t.conn.compute.stop_server(s))
    t.conn.compute.start_server(s)
    s = rec.wait(
        "server",
        "server",
        lambda: t.conn.compute.get_server(s.id),
        lambda r: r.status == "ACTIVE" and not r.task_state,
    )
    rec.set_final("after_start", status=s.status, power_state=s.power_state)
    _delete_server(t, rec, s)


def _compute_service(t: Target, host: str) -> Any:
    for svc in t.conn.compute.services():
        if svc.binary == "nova-compute" and svc.host == host:
            return svc
    raise LookupError(f"no nova-compute service on {host}")


@behaviour("compute")
def force_down_evacuate(t: Target, rec: Recorder) -> None:
    """Evacuation is refused while the host's service is up; force it down, evacuate
    to another host (REBUILD -> SHUTOFF from 2.95, ACTIVE before); lifting
    force-down before the source restarts is refused, after its restart allowed."""
    s = _boot(t, rec)
    source = s.compute_host
    rec.expect_error("evacuate_while_service_up", lambda: t.conn.compute.evacuate_server(s))
    svc = _compute_service(t, source)
    rec.observe("service", "service", svc.state)
    t.conn.compute.update_service_forced_down(svc, source, "nova-compute", True)
    svc = rec.wait(
        "service",
        "service",
        lambda: _compute_service(t, source),
        {"down"},
        status_of=lambda r: r.state,
    )
    rec.set_final(
        "service_forced", state=svc.state, forced_down=svc.is_forced_down, status=svc.status
    )
    t.conn.compute.evacuate_server(s)
    s = rec.wait(
        "server",
        "server",
        lambda: t.conn.compute.get_server(s.id),
        lambda r: (
            r.status in {"ACTIVE", "SHUTOFF", "ERROR"}
            and not r.task_state
            and r.compute_host != source
        ),
    )
    rec.set_final(
        "server",
        status=s.status,
        power_state=s.power_state,
        host_changed=s.compute_host != source,
    )
    # Nova 2.104 refuses to lift force-down while `done` evacuation records
    # remain, i.e. until the failed host's compute service has restarted.
    rec.expect_error(
        "unforce_before_source_restart",
        lambda: t.conn.compute.update_service_forced_down(svc, source, "nova-compute", False),
    )
    svc = _compute_service(t, source)
    rec.set_final("service_after_unforce", state=svc.state, forced_down=svc.is_forced_down)
    assert t.restart_compute is not None, "target has no restart_compute hook"
    # The restart moves the `done` evacuation records to `completed`.
    t.restart_compute(source)
    rec.expect_error(
        "unforce_after_source_restart",
        lambda: t.conn.compute.update_service_forced_down(svc, source, "nova-compute", False),
    )
    svc = rec.wait(
        "service",
        "service",
        lambda: _compute_service(t, source),
        {"up"},
        status_of=lambda r: r.state,
    )
    rec.set_final("service_after_restart", state=svc.state, forced_down=svc.is_forced_down)
    s = rec.wait("server", "server", lambda: t.conn.compute.get_server(s.id), lambda r: True)
    rec.set_final("server_after_restart", status=s.status, host_changed=s.compute_host != source)
    _delete_server(t, rec, s)


@behaviour("compute")
def server_volume_attach_detach(t: Target, rec: Recorder) -> None:
    """Attach a volume through the compute API, see it listed, detach it; 404 for
    an unknown server."""
    assert t.volume_for_server is not None, "target has no volume_for_server hook"
    s = _boot(t, rec)
    volume_id = t.volume_for_server()

    def attached_ids() -> list[str]:
        return [a.volume_id for a in t.conn.compute.volume_attachments(s)]

    t.conn.compute.create_volume_attachment(s, volume_id=volume_id)
    rec.wait(
        "attachment",
        "attachment",
        attached_ids,
        lambda ids: volume_id in ids,
        status_of=lambda ids: "attached" if volume_id in ids else "detached",
    )
    rec.set_final("attached", count=len(attached_ids()))
    t.conn.compute.delete_volume_attachment(s, volume_id)
    rec.wait(
        "attachment",
        "attachment",
        attached_ids,
        lambda ids: volume_id not in ids,
        status_of=lambda ids: "attached" if volume_id in ids else "detached",
    )
    rec.set_final("detached", count=len(attached_ids()))
    rec.expect_error(
        "attach_to_unknown_server",
        lambda: t.conn.compute.create_volume_attachment(UNKNOWN_ID, volume_id=volume_id),
    )
    _delete_server(t, rec, s)


@behaviour("compute")
def compute_errors(t: Target, rec: Recorder) -> None:
    """Error codes and body shapes for unknown servers, flavors, images, services."""
    c = t.conn.compute
    rec.expect_error("get_unknown_server", lambda: c.get_server(UNKNOWN_ID))
    rec.expect_error(
        "delete_unknown_server", lambda: c.delete_server(UNKNOWN_ID, ignore_missing=False)
    )
    rec.expect_error("stop_unknown_server", lambda: c.stop_server(UNKNOWN_ID))
    rec.expect_error("evacuate_unknown_server", lambda: c.evacuate_server(UNKNOWN_ID))
    rec.expect_error(
        "boot_unknown_flavor",
        lambda: c.create_server(
            name="x", image_id=t.image_id, flavor_id=UNKNOWN_ID, networks=t.networks
        ),
    )
    rec.expect_error(
        "boot_unknown_image",
        lambda: c.create_server(
            name="x", image_id=UNKNOWN_ID, flavor_id=t.flavor_id, networks=t.networks
        ),
    )
    rec.expect_error("get_unknown_flavor", lambda: c.get_flavor(UNKNOWN_ID))


# block storage ---------------------------------------------------------------
def _volume(t: Target, rec: Recorder, label: str = "volume", **kwargs: Any) -> Any:
    v = t.conn.block_storage.create_volume(
        size=kwargs.pop("size", 1), name=f"conf-{uuid.uuid4().hex[:8]}", **kwargs
    )
    rec.observe(label, "volume", v.status)
    return rec.wait(
        label, "volume", lambda: t.conn.block_storage.get_volume(v.id), {"available", "error"}
    )


def _delete_volume(t: Target, rec: Recorder, v: Any, label: str = "volume") -> None:
    t.conn.block_storage.delete_volume(v.id)
    rec.wait(
        label, "volume", lambda: t.conn.block_storage.get_volume(v.id), {GONE, "error_deleting"}
    )


@behaviour("block-storage")
def volume_lifecycle(t: Target, rec: Recorder) -> None:
    """Create a volume (creating -> available, detached, right size) and delete it."""
    v = _volume(t, rec, size=2)
    rec.set_final("volume", status=v.status, size=v.size, attachments=len(v.attachments or []))
    _delete_volume(t, rec, v)


CONNECTOR = {
    "initiator": "iqn.1993-08.org.debian:01:conformance",
    "ip": "192.0.2.10",
    "platform": "x86_64",
    "host": "conformance-host",
    "os_type": "linux",
    "multipath": False,
    "mountpoint": "/dev/vdb",
}


@behaviour("block-storage")
def volume_attach_detach(t: Target, rec: Recorder) -> None:
    """Attach and detach the way Nova does it (attachments API, 3.44):
    available -> reserved -> attaching -> in-use -> available; in-use refuses delete."""
    bs = t.conn.block_storage
    v = _volume(t, rec)
    instance = str(uuid.uuid4())
    mv = "3.44"

    def get() -> Any:
        return bs.get_volume(v.id)

    r = raw(
        bs.post(
            "/attachments",
            json={"attachment": {"volume_uuid": v.id, "instance_uuid": instance}},
            microversion=mv,
        )
    )
    att = r.json()["attachment"]
    rec.set_final("attachment_created", status=att.get("status"))
    rec.wait("volume", "volume", get, {"reserved", "in-use"})
    r = raw(
        bs.put(
            f"/attachments/{att['id']}",
            json={"attachment": {"connector": CONNECTOR}},
            microversion=mv,
        )
    )
    rec.set_final(
        "attachment_updated",
        has_connection_info=bool(r.json()["attachment"].get("connection_info")),
    )
    rec.wait("volume", "volume", get, {"attaching", "in-use"})
    raw(bs.post(f"/attachments/{att['id']}/action", json={"os-complete": {}}, microversion=mv))
    v = rec.wait("volume", "volume", get, {"in-use", "error"})
    rec.set_final(
        "attached",
        status=v.status,
        attachments=len(v.attachments or []),
        server_matches=[a.get("server_id") for a in v.attachments or []] == [instance],
    )
    rec.expect_error("delete_in_use_volume", lambda: bs.delete_volume(v.id))
    raw(bs.delete(f"/attachments/{att['id']}", microversion=mv))
    v = rec.wait("volume", "volume", get, {"available", "error"})
    rec.set_final("detached", status=v.status, attachments=len(v.attachments or []))
    _delete_volume(t, rec, v)


@behaviour("block-storage")
def volume_snapshot(t: Target, rec: Recorder) -> None:
    """Snapshot a volume (creating -> available), make a volume from it, refuse
    to delete a volume that has snapshots, delete the snapshot."""
    bs = t.conn.block_storage
    v = _volume(t, rec)
    snap = bs.create_snapshot(volume_id=v.id, name=f"conf-{uuid.uuid4().hex[:8]}")
    rec.observe("snapshot", "snapshot", snap.status)
    snap = rec.wait(
        "snapshot", "snapshot", lambda: bs.get_snapshot(snap.id), {"available", "error"}
    )
    rec.set_final(
        "snapshot", status=snap.status, size=snap.size, volume_matches=snap.volume_id == v.id
    )
    rec.expect_error("delete_volume_with_snapshot", lambda: bs.delete_volume(v.id))
    clone = _volume(t, rec, "volume_from_snapshot", snapshot_id=snap.id)
    rec.set_final(
        "volume_from_snapshot",
        status=clone.status,
        size=clone.size,
        snapshot_matches=clone.snapshot_id == snap.id,
    )
    _delete_volume(t, rec, clone, "volume_from_snapshot")
    bs.delete_snapshot(snap.id)
    rec.wait("snapshot", "snapshot", lambda: bs.get_snapshot(snap.id), {GONE, "error_deleting"})
    _delete_volume(t, rec, v)


@behaviour("block-storage")
def volume_backup_restore(t: Target, rec: Recorder) -> None:
    """Back up a volume (volume backing-up -> available; backup creating ->
    available), restore it into a new volume (restoring-backup), delete the backup."""
    bs = t.conn.block_storage
    v = _volume(t, rec)
    b = bs.create_backup(volume_id=v.id, name=f"conf-{uuid.uuid4().hex[:8]}")
    rec.observe("backup", "backup", b.status or "creating")

    def backup_and_volume() -> Any:
        # One poll reads both, so the volume's backing-up is seen too.
        rec.observe("volume", "volume", bs.get_volume(v.id).status)
        return bs.get_backup(b.id)

    b = rec.wait("backup", "backup", backup_and_volume, {"available", "error"})
    rec.wait(
        "volume", "volume", lambda: bs.get_volume(v.id), {"available", "error", "error_backing-up"}
    )
    rec.set_final(
        "backup",
        status=b.status,
        size=b.size,
        volume_matches=b.volume_id == v.id,
        is_incremental=b.is_incremental,
    )
    restore = bs.restore_backup(b, name=f"conf-{uuid.uuid4().hex[:8]}")
    new_id = restore.volume_id
    rv = rec.wait(
        "restored_volume",
        "volume",
        lambda: bs.get_volume(new_id),
        {"available", "error", "error_restoring"},
    )
    b = rec.wait("backup", "backup", lambda: bs.get_backup(b.id), {"available", "error"})
    rec.set_final("restored_volume", status=rv.status, size=rv.size)
    bs.delete_backup(b.id)
    rec.wait("backup", "backup", lambda: bs.get_backup(b.id), {GONE, "error_deleting"})
    _delete_volume(t, rec, rv, "restored_volume")
    _delete_volume(t, rec, v)


@behaviour("block-storage")
def volume_errors(t: Target, rec: Recorder) -> None:
    """Error codes and body shapes for unknown volumes, snapshots and backups."""
    bs = t.conn.block_storage
    rec.expect_error("get_unknown_volume", lambda: bs.get_volume(UNKNOWN_ID))
    rec.expect_error(
        "delete_unknown_volume", lambda: bs.delete_volume(UNKNOWN_ID, ignore_missing=False)
    )
    rec.expect_error("get_unknown_snapshot", lambda: bs.get_snapshot(UNKNOWN_ID))
    rec.expect_error("get_unknown_backup", lambda: bs.get_backup(UNKNOWN_ID))
    rec.expect_error(
        "volume_from_unknown_snapshot", lambda: bs.create_volume(size=1, snapshot_id=UNKNOWN_ID)
    )
    rec.expect_error(
        "backup_unknown_volume", lambda: bs.create_backup(volume_id=UNKNOWN_ID, name="x")
    )
    rec.expect_error(
        "snapshot_unknown_volume", lambda: bs.create_snapshot(volume_id=UNKNOWN_ID, name="x")
    )


def names(service: str | None = None) -> list[str]:
    return [n for n, b in BEHAVIOURS.items() if service is None or b.service == service]
