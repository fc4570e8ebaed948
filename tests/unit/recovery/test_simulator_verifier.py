"""The simulator verifier asks once for every check begun at the same moment."""

from __future__ import annotations

import asyncio
import json

import httpx

from liferaft.clouds.model import Server
from liferaft.recovery.verifiers import SimulatorVerifier, Verdict


def server(sid: str) -> Server:
    return Server(id=sid, name=sid, status="ACTIVE")


def verifier(
    answer: httpx.Response | None, asked: list[tuple[str, list[str]]]
) -> SimulatorVerifier:
    def handle(request: httpx.Request) -> httpx.Response:
        ids = json.loads(request.content)["servers"]
        asked.append((request.url.path, ids))
        if answer is not None:
            return answer
        health = {
            sid: {
                "booted": True,
                "application_answering": sid != "sick",
                "reason": "canary stopped",
            }
            for sid in ids
            if sid != "gone"
        }
        health["gone"] = {"error": {"code": 404, "message": "server gone not found"}}
        return httpx.Response(200, json={"servers": health})

    v = SimulatorVerifier(url="http://sim")
    v._client = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return v


async def checks(v: SimulatorVerifier, ids: list[str]) -> list[Verdict]:
    v._loop = asyncio.get_running_loop()
    v._gate = asyncio.Semaphore(v.MAX_IN_FLIGHT)
    return list(await asyncio.gather(*(v.check("west", server(i)) for i in ids)))


def test_checks_begun_together_share_one_ask_and_get_their_own_verdicts() -> None:
    asked: list[tuple[str, list[str]]] = []
    v = verifier(None, asked)
    got = asyncio.run(checks(v, ["a", "b", "sick", "gone", "a"]))
    assert asked == [("/control/health/west", ["a", "b", "sick", "gone"])]
    assert [g.ok for g in got] == [True, True, False, False, True]
    assert got[2].detail == "canary stopped"
    assert "server gone not found" in got[3].detail


def test_a_failed_ask_fails_every_check_in_it() -> None:
    asked: list[tuple[str, list[str]]] = []
    v = verifier(httpx.Response(500, text="boom"), asked)
    got = asyncio.run(checks(v, ["a", "b"]))
    assert len(asked) == 1
    assert all(not g.ok and "answered 500" in g.detail for g in got)


def test_checks_at_different_moments_are_asked_apart() -> None:
    asked: list[tuple[str, list[str]]] = []
    v = verifier(None, asked)

    async def main() -> None:
        assert (await checks(v, ["a"]))[0].ok
        assert (await checks(v, ["b"]))[0].ok

    asyncio.run(main())
    assert asked == [("/control/health/west", ["a"]), ("/control/health/west", ["b"])]
