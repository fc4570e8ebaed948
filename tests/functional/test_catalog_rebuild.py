"""``liferaft catalog rebuild``: east's controller loses its database and rebuilds its catalog
from the signed manifests in west's object store alone, goes on protecting, and west recovers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.drcontroller import MANUAL, DrWorld, build_vm

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[DrWorld]:
    w = DrWorld(tmp_path)
    try:
        w.start("east")
        w.start("west")
        yield w
    finally:
        w.stop()


def rebuild(w: DrWorld) -> dict[str, Any]:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "liferaft",
            "catalog",
            "rebuild",
            "--json",
            "--url",
            w.ctls["east"].url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**w.sim.cli_env(), "LIFERAFT_TOKEN": w.token("east")},
    )
    assert r.returncode == 0, r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def view(g: dict[str, Any]) -> dict[str, Any]:
    keep = ("cloud_id", "kind", "name", "quiesce_rank", "tier")
    return {
        "id": g["id"],
        "name": g["name"],
        "policy": g["policy"],
        "recovery_site": g["recovery_site"],
        "servers": [{k: m[k] for k in keep} for m in g["servers"]],
        "volumes": sorted(m["cloud_id"] for m in g["volumes"]),
    }


def cp_view(c: dict[str, Any]) -> tuple[Any, ...]:
    return (
        c["id"],
        c["state"],
        c["chain_id"],
        c["parent_id"],
        c["captured_at"],
        c["consistency"],
        c["manifest"],
        c["volumes"],
    )


def test_a_lost_catalog_is_rebuilt_from_the_manifests_and_the_site_still_recovers(
    world: DrWorld,
) -> None:
    w = world
    db = build_vm(w, "rb-db", volumes=2, canary="database", rate=2.0)
    policy = {**MANUAL, "retention_count": 7, "chain_length": 5}
    w.api("east", "PUT", "/v1/policies/rb", policy)
    g = w.api("east", "POST", "/v1/protect/servers", {"server": db["id"], "policy": "rb"})
    w.wait_settled(g["id"])
    w.checkpoint(g["id"])
    before_group = view(w.api("east", "GET", f"/v1/groups/{g['id']}"))
    before_cps = [cp_view(c) for c in w.wait_settled(g["id"]) if c["state"] == "complete"]
    assert len(before_cps) == 2 and before_cps[1][3] == before_cps[0][0]  # incremental chain

    # east's controller loses its database (its whole state directory).
    w.ctls["east"].kill()
    shutil.rmtree(w.tmp / "ctl-east")
    w.start("east")
    assert w.api("east", "GET", "/v1/groups")["groups"] == []
    assert "rb" not in [p["name"] for p in w.api("east", "GET", "/v1/policies")["policies"]]

    out = rebuild(w)
    assert out["source"] == "west" and out["refused"] == [] and out["skipped"] == []
    assert out["checkpoints_restored"] == 2 and out["members_restored"] == 3
    assert out["policies_restored"] == ["rb"]
    assert view(w.api("east", "GET", f"/v1/groups/{g['id']}")) == before_group
    before_ids = {c[0] for c in before_cps}
    # (DR-Logic may start a checkpoint of the rebuilt group meanwhile: compare the rebuilt ones.)
    assert [cp_view(c) for c in w.checkpoints(g["id"]) if c["id"] in before_ids] == before_cps
    p = w.api("east", "GET", "/v1/policies/rb")
    assert (p["retention_count"], p["chain_length"]) == (7, 5)
    # Again: nothing new.
    again = rebuild(w)
    assert again["checkpoints_restored"] == 0 and again["members_restored"] == 0

    # Protection goes on from the rebuilt catalog: the next checkpoint extends the chain.
    cp = w.checkpoint(g["id"])
    assert cp["chain_id"] == before_cps[0][2] and cp["parent_id"] is not None, cp
    done = {c["id"] for c in w.checkpoints(g["id"]) if c["state"] == "complete"}
    assert cp["parent_id"] in done and before_ids <= done

    # east is lost; west recovers the group from that newest checkpoint.
    w.ctl("POST", "/control/faults", {"kind": "site-down", "target": "east"})
    w.ctls["east"].kill()
    run = w.api("west", "POST", "/v1/recovery", {"datacenter": "east", "declare_down": "east"})
    final = w.wait_run(run["id"])
    assert final["state"] == "done", (final["failed_steps"], final["error"])
    rep = final["report"]
    assert [x["checkpoint_id"] for x in rep["groups"]] == [cp["id"]]
    assert rep["servers_recovered"] == 1 and rep["volumes_recovered"] == 2
    vols = [v["volume_id"] for v in rep["volumes"]]
    check = w.ctl(
        "POST",
        "/control/check-consistency",
        {"site": "west", "volumes": vols, "writer": db["canary"]},
    )
    assert check["consistent"], check
