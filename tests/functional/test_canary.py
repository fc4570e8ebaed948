"""Canary workloads in the real simulator: writers, freshness, consistency, health."""

from __future__ import annotations

from typing import Any

from tests.support.sim import SimProcess


def _call(sim: SimProcess, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    r = sim.http.request(method, path, json=body)
    return r.status_code, r.json()


BAD_REQUESTS: list[tuple[str, str, Any, int, str]] = [
    (
        "POST",
        "/control/canaries",
        {"site": "mars", "server": "x", "volumes": ["v"]},
        400,
        "unknown site",
    ),
    (
        "POST",
        "/control/canaries",
        {"site": "east", "server": "x", "volumes": ["v"]},
        404,
        "server x not found",
    ),
    ("POST", "/control/canaries", [1, 2], 400, "JSON object"),
    ("GET", "/control/canaries/nope", None, 404, "canary nope not found"),
    ("DELETE", "/control/canaries/nope", None, 404, "canary nope not found"),
    ("GET", "/control/canaries/nope/history", None, 404, "canary nope not found"),
    ("GET", "/control/volumes/mars/v1/freshness", None, 404, "unknown site"),
    ("GET", "/control/volumes/east/v1/freshness", None, 404, "volume v1 not found"),
    ("GET", "/control/health/east/s1", None, 404, "server s1 not found"),
    (
        "POST",
        "/control/check-consistency",
        {"site": "east", "volumes": ["v"], "writer": "w"},
        404,
        "canary w not found",
    ),
    (
        "POST",
        "/control/check-consistency",
        {"site": "east", "volumes": [], "writer": "w"},
        400,
        "'volumes'",
    ),
    ("GET", "/control/double-running?gap=-1", None, 400, "'gap'"),
]


def test_bad_requests_get_clear_errors(sim: SimProcess) -> None:
    """One simulator for every case: each starts a process, which is slow."""
    for method, path, body, status, text in BAD_REQUESTS:
        code, answer = _call(sim, method, path, body)
        assert (code, answer["error"]["code"]) == (status, status), (method, path)
        assert text in answer["error"]["message"], (method, path)


def test_nothing_runs_twice_in_an_empty_world(sim: SimProcess) -> None:
    assert sim.control("GET", "/control/canaries") == {"canaries": []}
    assert sim.control("GET", "/control/double-running") == {"double_running": []}
