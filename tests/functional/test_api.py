"""The REST API in process, with the real adapter against the simulator's Keystone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from liferaft.api import Services, create_app
from liferaft.clouds import OpenStackCloud
from liferaft.config import Settings
from liferaft.engine.leadership import Leadership
from liferaft.engine.simclock import SimulatorClock
from liferaft.store import Store, sqlite_url
from tests.support.sim import SimProcess

Check = Callable[[httpx.AsyncClient, Services], Awaitable[None]]


class Api:
    def __init__(self, sim: SimProcess, tmp_path: Path) -> None:
        self.sim = sim
        self.settings = Settings.model_validate(
            {
                "site": {"name": "east", "clouds_yaml": sim.clouds_yaml},
                "peers": [{"name": "west", "clouds_yaml": sim.clouds_yaml}],
                "state_dir": str(tmp_path),
                "clock": {"source": "simulator", "control_url": sim.control_url},
                "api": {"token_cache_seconds": 60},
            }
        )
        self.clock = SimulatorClock(sim.control_url)
        self.store = Store(sqlite_url(tmp_path))
        self.services = Services(
            clock=self.clock,
            cloud=OpenStackCloud("east", clouds_yaml=sim.clouds_yaml),
            store=self.store,
            leadership=Leadership(self.store, "controller", clock=self.clock, ttl=30),
        )
        self.app = create_app(self.settings, self.services)

    def run(self, check: Check) -> None:
        async def go() -> None:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                await check(client, self.services)

        asyncio.run(go())

    def close(self) -> None:
        self.store.close()
        self.clock.close()


@pytest.fixture
def api(sim: SimProcess, tmp_path: Path) -> Iterator[Api]:
    a = Api(sim, tmp_path)
    yield a
    a.close()


def demo_token(sim: SimProcess, site: str = "east") -> str:
    return str(sim.connect(f"{site}-demo").auth_token)


def test_health_without_token(api: Api) -> None:
    async def check(c: httpx.AsyncClient, s: Services) -> None:
        r = await c.get("/health")
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "ok", body
        assert body["checks"]["store"]["ok"] and body["checks"]["identity"]["ok"]

    api.run(check)


def test_health_reports_identity_down(api: Api) -> None:
    api.sim.control("POST", "/control/faults", {"kind": "site-down", "target": "east"})

    async def check(c: httpx.AsyncClient, s: Services) -> None:
        body = (await c.get("/health")).json()
        assert body["status"] == "degraded"
        assert body["checks"]["store"]["ok"]
        assert not body["checks"]["identity"]["ok"]
        assert "RetryLater" in body["checks"]["identity"]["detail"]

    api.run(check)


def test_token_is_required(api: Api) -> None:
    async def check(c: httpx.AsyncClient, s: Services) -> None:
        for headers in ({}, {"X-Auth-Token": "bogus"}):
            r = await c.get("/v1/info", headers=headers)
            assert r.status_code == 401
            err = r.json()["error"]
            assert err["code"] == 401 and err["title"] == "Unauthorized"
            assert "token" in err["message"]
            assert r.headers["WWW-Authenticate"] == "Keystone"
        r = await c.get("/v1/events", headers={})
        assert r.status_code == 401

    api.run(check)


def test_info_with_a_real_token_and_leadership(api: Api) -> None:
    token = demo_token(api.sim)

    async def check(c: httpx.AsyncClient, s: Services) -> None:
        r = await c.get("/v1/info", headers={"X-Auth-Token": token})
        assert r.status_code == 200, r.text
        info = r.json()
        assert info["site"] == "east" and info["peers"] == ["west"]
        assert info["leader"] is False and info["epoch"] is None
        assert info["now"] == api.sim.now()
        assert s.leadership is not None and s.leadership.try_acquire()
        info = (await c.get("/v1/info", headers={"X-Auth-Token": token})).json()
        assert info["leader"] is True and info["epoch"] >= 1

    api.run(check)


def test_validations_are_cached_on_the_simulated_clock(api: Api) -> None:
    token = demo_token(api.sim)
    hdr = {"X-Auth-Token": token}

    async def check(c: httpx.AsyncClient, s: Services) -> None:
        tokens = api.app.state.tokens
        assert (await c.get("/v1/info", headers=hdr)).status_code == 200
        assert (await c.get("/v1/info", headers=hdr)).status_code == 200
        assert tokens.lookups == 1
        api.sim.advance(61)
        assert (await c.get("/v1/info", headers=hdr)).status_code == 200
        assert tokens.lookups == 2

    api.run(check)


def test_identity_unreachable_is_503_not_401(api: Api) -> None:
    token = demo_token(api.sim)
    api.sim.control(
        "POST", "/control/faults", {"kind": "api-errors", "target": "east", "rate": 1.0}
    )

    async def check(c: httpx.AsyncClient, s: Services) -> None:
        r = await c.get("/v1/info", headers={"X-Auth-Token": token})
        assert r.status_code == 503
        assert "cannot validate the token" in r.json()["error"]["message"]

    api.run(check)


def test_events_read_the_engine_store(api: Api) -> None:
    token = demo_token(api.sim)
    hdr = {"X-Auth-Token": token}

    async def check(c: httpx.AsyncClient, s: Services) -> None:
        assert s.leadership is not None and s.leadership.try_acquire()
        fence = s.leadership.fence()
        for i in range(3):
            api.store.add_note(fence, now=s.clock.now(), detail={"n": i})
        r = await c.get("/v1/events", headers=hdr)
        assert r.status_code == 200
        body = r.json()
        assert [e["detail"]["n"] for e in body["events"]] == [0, 1, 2]
        first = body["events"][0]["id"]
        r = await c.get("/v1/events", params={"after": first, "limit": 1}, headers=hdr)
        body = r.json()
        assert [e["detail"]["n"] for e in body["events"]] == [1]
        assert body["last"] == body["events"][0]["id"]
        r = await c.get("/v1/events", params={"after": -1}, headers=hdr)
        assert r.status_code == 400
        assert "after" in r.json()["error"]["message"]

    api.run(check)


def test_metrics_and_openapi(api: Api) -> None:
    async def check(c: httpx.AsyncClient, s: Services) -> None:
        await c.get("/health")
        r = await c.get("/metrics")
        assert r.status_code == 200
        assert 'liferaft_api_requests_total{code="200",method="GET",route="/health"} 1.0' in r.text
        assert "liferaft_leader 0.0" in r.text
        spec = (await c.get("/openapi.json")).json()
        assert {"/health", "/metrics", "/v1/info", "/v1/events"} <= set(spec["paths"])
        schemes = spec["components"]["securitySchemes"]
        assert any(v.get("name") == "X-Auth-Token" for v in schemes.values())
        assert "security" not in spec["paths"]["/health"]["get"]
        assert spec["paths"]["/v1/info"]["get"]["security"]

    api.run(check)
