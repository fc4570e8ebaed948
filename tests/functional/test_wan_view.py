"""Remote views: a site's APIs as a client at another site reaches them, across the WAN link.

On a stepped simulator with an 80 Mbit/s east-west link (10 MB/s) and 20 ms
of delay: a 1,000,000-byte object PUT to west's object store through
``west@east`` is stored exactly 0.1 s + 20 ms after it was sent, its reply
reaches the client 20 ms later, and the link counts the bytes under the
``client`` tag; the same PUT to west's own URL crosses nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.sim import SimProcess

TOPOLOGY: dict[str, Any] = {
    "sites": {"east": {"hosts": 1}, "west": {"hosts": 1}},
    "links": [{"a": "east", "b": "west", "bandwidth_mbps": 80, "delay_ms": 20}],
}
SIZE = 1_000_000
BANDWIDTH = 80e6 / 8  # bytes per second
DELAY = 0.020


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimProcess]:
    s = SimProcess(tmp_path / "sim", stepped=True, topology=TOPOLOGY)
    try:
        yield s
    finally:
        s.stop()


class Stepper:
    """Moves a stepped clock on in small steps while a client waits on the link (auth, listing)."""

    def __init__(self, sim: SimProcess) -> None:
        self.sim = sim
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.sim.control_url, timeout=30) as c:
            while not self.stop.wait(0.005):
                c.post("/control/clock/advance", json={"seconds": 0.01})

    def __enter__(self) -> Stepper:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def token(url: str, password: str) -> tuple[str, list[dict[str, Any]], str]:
    """A project-scoped admin token through ``url``, the catalog it came with, the project id."""
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "admin", "domain": {"name": "Default"}, "password": password}
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
        }
    }
    r = httpx.post(f"{url}/identity/v3/auth/tokens", json=body, timeout=60)
    assert r.status_code == 201, r.text
    tok = r.json()["token"]
    return r.headers["X-Subject-Token"], tok["catalog"], tok["project"]["id"]


def link(sim: SimProcess) -> dict[str, Any]:
    out: dict[str, Any] = sim.control("GET", "/control/links")["links"][0]
    return out


def test_a_put_through_a_remote_view_crosses_the_link_and_a_local_one_does_not(
    sim: SimProcess,
) -> None:
    clouds = yaml.safe_load(Path(sim.clouds_yaml).read_text())["clouds"]
    assert {"west@east", "east@west", "west@east-demo"} <= set(clouds)
    password = clouds["west"]["auth"]["password"]
    views = json.loads((sim.state_dir / "sim.json").read_text())["views"]
    view, local = views["west@east"], sim.sites["west"]
    assert clouds["west@east"]["auth"]["auth_url"] == f"{view}/identity"
    assert clouds["west@east"]["region_name"] == "west"

    with Stepper(sim):
        tok, catalog, project = token(view, password)
    # The catalog served through the view names the view: a client stays on it.
    urls = {e["url"] for s in catalog for e in s["endpoints"]}
    assert urls and all(u.startswith(view) for u in urls), urls
    swift = f"/object-store/v1/AUTH_{project}"
    h = {"X-Auth-Token": tok}
    with Stepper(sim):
        assert httpx.put(f"{view}{swift}/c", headers=h, timeout=60).status_code in (201, 202)
    before = link(sim)["bytes_by_tag"].get("client", 0)

    # A local PUT (west's own URL) crosses nothing: no clock step needed, nothing counted.
    r = httpx.put(f"{local}{swift}/c/local", headers=h, content=b"x" * SIZE, timeout=60)
    assert r.status_code == 201
    assert link(sim)["bytes_by_tag"].get("client", 0) == before

    # Through the view: stored once the body crossed (size / bandwidth + delay), answered
    # once the reply crossed back (delay), on the simulator's clock.
    t0 = sim.now()
    got: dict[str, Any] = {}

    def put() -> None:
        got["r"] = httpx.put(f"{view}{swift}/c/remote", headers=h, content=b"y" * SIZE, timeout=60)

    client = threading.Thread(target=put)
    client.start()
    for _ in range(500):
        flows = link(sim)["flows"]
        if any(f["tag"] == "client" and f["bytes"] == SIZE for f in flows):
            break
        threading.Event().wait(0.01)
    else:
        raise AssertionError("the PUT's body never went on the link")
    (flow,) = [f for f in link(sim)["flows"] if f["tag"] == "client"]
    assert (flow["src"], flow["dst"]) == ("east", "west")

    def stored() -> int:
        return httpx.head(f"{local}{swift}/c/remote", headers=h, timeout=30).status_code

    arrive = SIZE / BANDWIDTH + DELAY
    sim.advance(arrive - 0.001)
    assert stored() == 404 and client.is_alive()
    sim.advance(0.001)
    for _ in range(500):
        if stored() == 200:
            break
        threading.Event().wait(0.01)
    stamp = float(
        httpx.head(f"{local}{swift}/c/remote", headers=h, timeout=30).headers["X-Timestamp"]
    )
    assert stamp == pytest.approx(t0 + arrive, abs=1e-4)
    threading.Event().wait(0.2)
    assert client.is_alive(), "answered before the reply crossed the link"
    sim.advance(DELAY)
    client.join(30)
    assert not client.is_alive() and got["r"].status_code == 201
    counted = link(sim)
    assert counted["bytes_by_tag"]["client"] - before >= SIZE
    assert counted["bytes_by_direction"]["east->west"] >= SIZE
