"""The storage-replication method's pure parts: policy validation, monitor answers, group points."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from liferaft.protection.model import Invalid, Policy, check_policy
from liferaft.protection.replication_monitors import (
    NoReplicationMonitor,
    NotReplicated,
    ReplicaStatus,
    parse_simulator,
)
from liferaft.recovery.replica import POINT_KIND, group_point

SIM_ANSWER: dict[str, Any] = {
    "volume_id": "v1",
    "source_site": "east",
    "target_site": "west",
    "state": "replicating",
    "replica": {
        "site": "west",
        "host": "west-volume@lvm#lvm",
        "reference": {"source-name": "replica-v1"},
        "size_gb": 1,
        "managed_as": None,
    },
    "last_applied": {"at": 100.0, "disk_seq": 7, "write": {"time": 99.5, "log_seq": 3}},
    "lag_s": 1.5,
}


def test_policy_method_is_validated() -> None:
    p = Policy("p", 60, 60, 3, 1e6, method="storage-replication")
    assert check_policy(p) is p
    with pytest.raises(Invalid, match=r"method must be one of .*storage-replication"):
        check_policy(replace(p, method="replication"))


def test_simulator_answer_parsed() -> None:
    st = parse_simulator(SIM_ANSWER)
    assert st == ReplicaStatus(
        volume_id="v1",
        source_site="east",
        target_site="west",
        reference={"source-name": "replica-v1"},
        host="west-volume@lvm#lvm",
        state="replicating",
        lag_s=1.5,
        last_applied_at=100.0,
        last_applied_write={"time": 99.5, "log_seq": 3},
        size_gb=1,
    )
    never = parse_simulator({**SIM_ANSWER, "last_applied": None})
    assert never.last_applied_at is None and never.last_applied_write is None


def test_no_monitor_refuses_saying_why() -> None:
    with pytest.raises(NotReplicated, match="no replication monitor is configured"):
        asyncio.run(NoReplicationMonitor().status("east", "v1"))


def test_group_point_is_the_oldest_replica_point() -> None:
    def r(at: float | None) -> dict[str, Any]:
        return {"recovery_point": {"kind": POINT_KIND, "at": at, "write": {"time": at}}}

    assert group_point([{"restored": True}]) is None  # snapshot-backup volumes only
    assert group_point([r(10.0), r(8.0)]) == {"kind": POINT_KIND, "at": 8.0, "write": {"time": 8.0}}
    assert group_point([r(10.0), r(None)])["at"] is None  # type: ignore[index]


def test_catalog_rebuild_reads_a_replica_manifest_entry() -> None:
    from liferaft.protection.rebuild import _volume_record

    ref = {"source-name": "replica-v1"}
    assert _volume_record({"id": "v1", "replica": {"reference": ref}}) == {"replica": ref}
    backup = {"backup_id": "b", "incremental": False, "size_gb": 1, "object_count": 2, "record": {}}
    assert _volume_record({"id": "v1", "backup": backup}) == {
        "backup_id": "b",
        "incremental": False,
        "size_gb": 1,
        "object_count": 2,
    }
