"""Allowed status transitions per resource, from the real services' state machines.

Sources (the documented state machines, not the simulator):

- Nova servers: the api-ref "Server Status" table and ``nova/compute/vm_states.py``
  with ``task_states.py``; the API status is derived from (vm_state, task_state)
  by ``nova/api/openstack/common.py``'s ``_STATE_MAP``.  A stop keeps the status
  ACTIVE while the task state is ``powering-off``, so ACTIVE -> SHUTOFF is one step.
  Evacuation is a rebuild on another host: ACTIVE/SHUTOFF/ERROR -> REBUILD ->
  ACTIVE, or SHUTOFF from compute microversion 2.95 on.
- Cinder volumes, snapshots and backups: the api-ref "Volume statuses",
  "Snapshot statuses" and "Backup statuses" tables and the status checks in
  ``cinder/volume/api.py`` and ``cinder/backup/api.py`` (for instance
  ``attachment_create`` needs ``available``/``in-use`` -> ``reserved``,
  ``attachment_update`` -> ``attaching``, ``attachment_complete`` -> ``in-use``).
- Nova compute services: ``state`` is ``up``/``down``; ``forced_down`` makes it
  ``down`` at once and clearing it makes it ``up`` again while the service
  keeps reporting.

Two pseudo states frame every history: ``<new>`` before the first observation
and ``<gone>`` once the resource answers 404.  Polling can miss a state that
lasts less than one poll, so a step ``a -> b`` is accepted when ``b`` is reached
from ``a`` through the table passing only through *transient* states (ones a
resource only passes through while an action runs); a stable state is never
skipped silently.
"""

from __future__ import annotations

import itertools

NEW = "<new>"
GONE = "<gone>"

Table = dict[str, set[str]]

SERVER: Table = {
    NEW: {"BUILD"},
    "BUILD": {"ACTIVE", "ERROR", GONE},
    "ACTIVE": {
        "SHUTOFF",
        "REBUILD",
        "REBOOT",
        "HARD_REBOOT",
        "RESIZE",
        "MIGRATING",
        "PAUSED",
        "SUSPENDED",
        "SHELVED",
        "SHELVED_OFFLOADED",
        "RESCUE",
        "PASSWORD",
        "ERROR",
        GONE,
    },
    "SHUTOFF": {
        "ACTIVE",
        "REBUILD",
        "RESIZE",
        "SHELVED",
        "SHELVED_OFFLOADED",
        "RESCUE",
        "ERROR",
        GONE,
    },
    "REBUILD": {"ACTIVE", "SHUTOFF", "ERROR", GONE},
    "REBOOT": {"ACTIVE", "ERROR", GONE},
    "HARD_REBOOT": {"ACTIVE", "ERROR", GONE},
    "RESIZE": {"VERIFY_RESIZE", "ACTIVE", "SHUTOFF", "ERROR", GONE},
    "VERIFY_RESIZE": {"ACTIVE", "SHUTOFF", "REVERT_RESIZE", "ERROR", GONE},
    "REVERT_RESIZE": {"ACTIVE", "SHUTOFF", "ERROR", GONE},
    "MIGRATING": {"ACTIVE", "ERROR", GONE},
    "PAUSED": {"ACTIVE", "ERROR", GONE},
    "SUSPENDED": {"ACTIVE", "ERROR", GONE},
    "SHELVED": {"SHELVED_OFFLOADED", "ACTIVE", GONE},
    "SHELVED_OFFLOADED": {"ACTIVE", "BUILD", GONE},
    "RESCUE": {"ACTIVE", "ERROR", GONE},
    "PASSWORD": {"ACTIVE", GONE},
    "ERROR": {"ACTIVE", "REBUILD", GONE},
}
# A deleted server reads DELETED until it is purged from the API's view.
for _src in list(SERVER):
    if _src != NEW:
        SERVER[_src].add("DELETED")
SERVER["DELETED"] = {GONE}
SERVER_TRANSIENT = {
    "DELETED",
    "BUILD",
    "REBUILD",
    "REBOOT",
    "HARD_REBOOT",
    "RESIZE",
    "REVERT_RESIZE",
    "MIGRATING",
    "PASSWORD",
}

VOLUME: Table = {
    NEW: {"creating"},
    "creating": {"available", "downloading", "restoring-backup", "error"},
    "downloading": {"available", "error"},
    "available": {
        "reserved",
        "attaching",
        "deleting",
        "backing-up",
        "restoring-backup",
        "uploading",
        "extending",
        "retyping",
        "maintenance",
        "awaiting-transfer",
        "error",
    },
    "reserved": {"attaching", "in-use", "available"},
    "attaching": {"in-use", "available", "error_attaching"},
    "in-use": {
        "detaching",
        "available",
        "reserved",
        "backing-up",
        "uploading",
        "extending",
        "retyping",
    },
    "detaching": {"available", "in-use", "error_detaching"},
    "backing-up": {"available", "in-use", "error_backing-up"},
    "restoring-backup": {"available", "error_restoring"},
    "uploading": {"available", "in-use", "error"},
    "extending": {"available", "in-use", "error_extending"},
    "retyping": {"available", "in-use", "error"},
    "maintenance": {"available", "error"},
    "awaiting-transfer": {"available"},
    "deleting": {GONE, "error_deleting"},
    "error": {"deleting", "available", GONE},
    "error_deleting": {"deleting", "available"},
    "error_attaching": {"available", "deleting"},
    "error_detaching": {"in-use", "available"},
    "error_backing-up": {"available", "deleting"},
    "error_restoring": {"deleting", "available"},
    "error_extending": {"available", "in-use"},
}
VOLUME_TRANSIENT = {
    "creating",
    "downloading",
    "attaching",
    "detaching",
    "backing-up",
    "restoring-backup",
    "uploading",
    "extending",
    "retyping",
    "deleting",
}

SNAPSHOT: Table = {
    NEW: {"creating"},
    "creating": {"available", "error"},
    "available": {"deleting", "backing-up", "restoring", "unmanaging", "error"},
    "backing-up": {"available", "error"},
    "restoring": {"available", "error"},
    "deleting": {GONE, "error_deleting"},
    "unmanaging": {GONE},
    "error": {"deleting", "available"},
    "error_deleting": {"deleting", "available"},
}
SNAPSHOT_TRANSIENT = {"creating", "backing-up", "restoring", "deleting", "unmanaging"}

BACKUP: Table = {
    NEW: {"creating"},
    "creating": {"available", "error"},
    "available": {"restoring", "deleting"},
    "restoring": {"available", "error"},
    "deleting": {GONE, "error_deleting"},
    "error": {"deleting", "available"},
    "error_deleting": {"deleting", "available"},
}
BACKUP_TRANSIENT = {"creating", "restoring", "deleting"}

SERVICE: Table = {
    NEW: {"up", "down"},
    "up": {"down"},
    "down": {"up"},
}

#: a volume as the compute API lists it on a server (os-volume_attachments)
ATTACHMENT: Table = {
    NEW: {"attached", "detached"},
    "attached": {"detached"},
    "detached": {"attached"},
}

TABLES: dict[str, tuple[Table, set[str]]] = {
    "server": (SERVER, SERVER_TRANSIENT),
    "volume": (VOLUME, VOLUME_TRANSIENT),
    "snapshot": (SNAPSHOT, SNAPSHOT_TRANSIENT),
    "backup": (BACKUP, BACKUP_TRANSIENT),
    "service": (SERVICE, set()),
    "attachment": (ATTACHMENT, set()),
}


def step_allowed(kind: str, a: str, b: str) -> bool:
    """True when ``a -> b`` is an edge, or a path through transient states only."""
    table, transient = TABLES[kind]
    seen = {a}
    frontier = [a]
    while frontier:
        state = frontier.pop()
        for nxt in table.get(state, set()):
            if nxt == b:
                return True
            if nxt in transient and nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return False


def violations(kind: str, history: list[str]) -> list[str]:
    """Every step of ``history`` (which starts with ``<new>``) the table forbids."""
    return [
        f"{kind}: {a} -> {b}"
        for a, b in itertools.pairwise(history)
        if not step_allowed(kind, a, b)
    ]
