"""Manifests refuse tampering and truncation; retention never breaks a chain nor drops the newest."""

from __future__ import annotations

import pytest

from liferaft.protection import manifest as mf
from liferaft.protection.model import Checkpoint, Invalid, Policy, check_policy
from liferaft.protection.retention import to_prune

KEY = b"k" * 32
DOC = {"checkpoint_id": "c1", "servers": [{"name": "db"}], "captured_at": 100.0}


def test_signed_manifest_verifies() -> None:
    assert mf.verify(mf.sign(DOC, KEY), KEY) == DOC


def test_tampered_truncated_or_foreign_manifests_are_refused() -> None:
    data = mf.sign(DOC, KEY)
    with pytest.raises(mf.ManifestRefused, match="tampered"):
        mf.verify(data.replace(b'"db"', b'"xx"'), KEY)
    with pytest.raises(mf.ManifestRefused, match="truncated"):
        mf.verify(data[: len(data) // 2], KEY)
    with pytest.raises(mf.ManifestRefused, match="another key"):
        mf.verify(data, b"o" * 32)


def test_object_names_sort_by_capture_time() -> None:
    names = [mf.object_name("g", t, f"c{t}") for t in (9.5, 100.0, 10.0)]
    assert sorted(names)[-1] == mf.object_name("g", 100.0, "c100.0")
    assert mf.group_of(names[0]) == "g"


def test_malformed_policy_names_every_problem() -> None:
    bad = Policy(
        "p",
        rpo_seconds=10,
        interval_seconds=60,
        retention_count=0,
        retention_age_seconds=1,
        consistency="weird",
    )
    with pytest.raises(Invalid) as err:
        check_policy(bad)
    msg = str(err.value)
    assert "must not exceed rpo_seconds" in msg and "retention_count" in msg
    assert "consistency" in msg


def cp(i: int, chain: str, t: float) -> Checkpoint:
    return Checkpoint(
        id=f"c{i}",
        group_id="g",
        state="complete",
        requested_at=t,
        workflow_id=f"c{i}",
        chain_id=chain,
        captured_at=t,
    )


def test_retention_keeps_chains_whole_and_the_newest() -> None:
    pol = Policy(
        "p", rpo_seconds=100, interval_seconds=10, retention_count=2, retention_age_seconds=1000
    )
    # chain a: c1 (full) c2 c3; chain b: c4 (full) c5
    cps = [cp(1, "c1", 10), cp(2, "c1", 20), cp(3, "c1", 30), cp(4, "c4", 40), cp(5, "c4", 50)]
    assert [c.id for c in to_prune(cps, pol, now=60)] == ["c3", "c2", "c1"]
    # keeping 3 reaches into chain a: all of it stays (c3 needs c2 and c1)
    pol3 = Policy(
        "p", rpo_seconds=100, interval_seconds=10, retention_count=3, retention_age_seconds=1000
    )
    assert to_prune(cps, pol3, now=60) == []
    # everything too old: the newest complete one still stays, with its chain
    assert [c.id for c in to_prune(cps, pol, now=10_000)] == ["c3", "c2", "c1"]
