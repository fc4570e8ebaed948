"""The simulator's Cinder quota update (``PUT /os-quota-sets/{project}``), as an admin raises it."""

from __future__ import annotations

from tests.support.sim import SimProcess


def test_admin_raises_the_volume_quota_and_bad_input_is_refused(sim: SimProcess) -> None:
    c = sim.connect("west")
    try:
        pid = c.current_project_id
        r = c.block_storage.put(
            f"/os-quota-sets/{pid}", json={"quota_set": {"volumes": 5000, "backups": 4000}}
        )
        assert r.status_code == 200, r.text
        got = c.block_storage.get(f"/os-quota-sets/{pid}?usage=true").json()["quota_set"]
        assert got["volumes"]["limit"] == 5000 and got["backups"]["limit"] == 4000
        bad = c.block_storage.put(
            f"/os-quota-sets/{pid}", json={"quota_set": {"volumes": "lots"}}, raise_exc=False
        )
        assert bad.status_code == 400 and "volumes" in bad.text
        again = c.block_storage.get(f"/os-quota-sets/{pid}").json()["quota_set"]
        assert again["volumes"] == 5000  # unchanged by the refused update
    finally:
        c.close()
