"""The Prometheus link monitor against a small real HTTP server speaking the query API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from liferaft.config.model import DrLogicSettings
from liferaft.errors import ConfigError, RetryLater
from liferaft.links.prometheus import PrometheusMonitor

QUERIES = {
    "capacity_bps": 'ifHighSpeed{ifName="wan0",site="{site}"} * 1e6 / 8',
    "app_traffic_bps": 'sum(rate(ifHCOutOctets{ifName="wan0",peer="{peer}"}[1m]))',
    "replication_bps": 'rate(node_qdisc_bytes_total{device="wan0"}[1m])',
}


def vector(*values: float) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"i": str(i)}, "value": [1.7e9, str(v)]} for i, v in enumerate(values)
            ],
        },
    }


class Prom:
    """Answers ``GET /api/v1/query`` from ``answers`` (query -> (status, body)); records queries."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, dict[str, Any]]] = {}
        self.seen: list[str] = []
        prom = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                u = urlparse(self.path)
                q = parse_qs(u.query).get("query", [""])[0]
                prom.seen.append(q)
                code, body = (
                    prom.answers.get(q, (200, vector())) if u.path == "/api/v1/query" else (404, {})
                )
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def prom() -> Iterator[Prom]:
    p = Prom()
    try:
        yield p
    finally:
        p.stop()


def monitor(url: str, queries: dict[str, str] | None = None) -> PrometheusMonitor:
    s = DrLogicSettings(
        link_monitor="prometheus", link_url=url, prometheus_queries=queries or QUERIES
    )
    return PrometheusMonitor(s, site="east", peer="west")


def test_a_sample_evaluates_each_query_with_site_and_peer_filled_in(prom: Prom) -> None:
    cap = 'ifHighSpeed{ifName="wan0",site="east"} * 1e6 / 8'
    app = 'sum(rate(ifHCOutOctets{ifName="wan0",peer="west"}[1m]))'
    rep = 'rate(node_qdisc_bytes_total{device="wan0"}[1m])'
    prom.answers = {
        cap: (200, vector(12.5e6)),
        app: (
            200,
            {"status": "success", "data": {"resultType": "scalar", "result": [1.7e9, "3e6"]}},
        ),
        rep: (200, vector(1e5, 2e5)),  # two classes: summed
    }
    m = monitor(prom.url)
    try:
        s = m.sample()
    finally:
        m.close()
    assert (s.capacity_bps, s.app_traffic_bps, s.replication_bps) == (12.5e6, 3e6, 3e5)
    assert sorted(prom.seen) == sorted([cap, app, rep])
    assert s.source == f"prometheus {prom.url}"


def test_an_unmeasured_replication_is_none_but_a_missing_capacity_is_a_config_error(
    prom: Prom,
) -> None:
    app = 'sum(rate(ifHCOutOctets{ifName="wan0",peer="west"}[1m]))'
    prom.answers = {
        'ifHighSpeed{ifName="wan0",site="east"} * 1e6 / 8': (200, vector(1e6)),
        app: (200, vector(0)),
    }
    m = monitor(prom.url)
    assert m.sample().replication_bps is None
    prom.answers.pop(app)
    with pytest.raises(
        ConfigError, match=r"drlogic.prometheus_queries.app_traffic_bps: .* selects no series"
    ):
        m.sample()
    m.close()


def test_a_bad_query_names_the_setting_and_an_outage_is_retry_later(prom: Prom) -> None:
    cap = 'ifHighSpeed{ifName="wan0",site="east"} * 1e6 / 8'
    prom.answers = {
        cap: (400, {"status": "error", "errorType": "bad_data", "error": "parse error"})
    }
    m = monitor(prom.url)
    with pytest.raises(
        ConfigError, match=r"drlogic\.prometheus_queries\.capacity_bps: Prometheus refused"
    ):
        m.sample()
    prom.answers = {cap: (503, {"status": "error", "errorType": "unavailable", "error": "busy"})}
    with pytest.raises(RetryLater, match="busy"):
        m.sample()
    m.close()
    gone = monitor("http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(RetryLater, match="prometheus at"):
        gone.sample()
    gone.close()


def test_the_queries_are_checked_at_start() -> None:
    with pytest.raises(ConfigError, match="missing app_traffic_bps; unknown bogus"):
        monitor("http://x", {"capacity_bps": "1", "bogus": "2"})
    with pytest.raises(ConfigError, match=r"drlogic\.link_url"):
        PrometheusMonitor(DrLogicSettings(prometheus_queries=QUERIES), site="east", peer="west")
