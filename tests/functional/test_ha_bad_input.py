"""Bad HA input gets a clear error; BMC credentials appear in no log, record or answer.

* ``liferaft serve`` with a segment naming a host the cloud does not know,
  or a Redfish fencer without a password: exit 2, one line naming the setting;
* a BMC answering garbage: the fence fails with the reason, an alert, nothing
  evacuated -- and the BMC password is in none of the logs (every logger at
  DEBUG), the workflow's error, the events, or the HA views.
"""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest

from liferaft.ha.service import fencer_summary
from liferaft.ha.simdrive import SimDrive
from tests.functional.test_ha import H1, Recorder, boot, drive, evacuations
from tests.functional.test_ha_api import ha_config
from tests.functional.test_serve import liferaft_cmd, write_config
from tests.support.sim import SimProcess


def serve_fails(sim: SimProcess, tmp_path: Path, ha: dict[str, Any]) -> str:
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = write_config(tmp_path, sim, ha=ha)
    r = subprocess.run(
        liferaft_cmd("serve", "--config", str(cfg)), capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    return r.stderr


@pytest.mark.timeout(300)
def test_serve_refuses_a_segment_naming_unknown_hosts_and_a_fencer_without_credentials(
    sim: SimProcess, tmp_path: Path
) -> None:
    ha, secrets = ha_config(sim, tmp_path)
    bad = json.loads(json.dumps(ha))
    ghost = dict(bad["hosts"][0], name="east-compute-99")
    bad["hosts"].append(ghost)
    bad["segments"][0]["hosts"].append("east-compute-99")
    err = serve_fails(sim, tmp_path / "a", bad)
    assert "ha.segments[east-all].hosts: no compute host named 'east-compute-99'" in err
    assert "east-compute-1" in err  # the hosts it does have
    assert all(s not in err for s in secrets)

    bad = json.loads(json.dumps(ha))
    del bad["hosts"][0]["fencers"][0]["password"]
    err = serve_fails(sim, tmp_path / "b", bad)
    assert "fencer 'redfish' needs password" in err and "ha" in err
    assert all(s not in err for s in secrets)


@pytest.mark.timeout(300)
def test_a_bmc_answering_garbage_fails_the_fence_clearly_and_no_credential_leaks(
    sim: SimProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    boot(sim, 2, H1)
    bmcs = sim.control("GET", "/control/bmcs")["bmcs"]
    secrets = [b["password"] for b in bmcs.values() if b["site"] == "east"]
    rec = Recorder()
    caplog.set_level(logging.DEBUG)  # every logger, sushy and urllib3 included

    async def scenario(d: SimDrive) -> Any:
        sim.control("POST", "/control/faults", {"kind": "bmc-garbage", "target": f"east/{H1}"})
        await d.fault("host-power-loss", H1)
        await d.run_until(lambda: d.settled(H1, "fence_failed"), max_seconds=900)
        wf = d.workflow(H1)
        assert wf is not None
        events = [e.__dict__ if hasattr(e, "__dict__") else repr(e) for e in d.store.events()]
        assert events, "no event was recorded"
        views = [d.service.hosts(), d.service.segments(), d.service.status()]
        views.append(fencer_summary(d.service.settings))
        return wf, events, views

    wf, events, views = drive(sim, tmp_path, scenario, notifier=rec)
    assert wf.state == "paused"
    assert "not usable Redfish" in (wf.error or ""), wf.error
    assert "fence_failed" in rec.kinds() and evacuations(sim, H1) == []
    told = [n for n in rec.notices if n.kind == "fence_failed"]
    assert "not usable Redfish" in told[0].values["error"]
    texts = [wf.error or "", json.dumps(views, default=str), json.dumps(events, default=str)]
    texts += [json.dumps(n.values, default=str) for n in rec.notices]
    texts += [r.getMessage() for r in caplog.records]
    texts += [str(r.args) for r in caplog.records]
    for secret in secrets:
        assert all(secret not in t for t in texts), "a BMC password leaked"
