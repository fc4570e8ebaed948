"""A LinkMonitor reading Prometheus (its HTTP query API), for real sites.

The site's network exporters (SNMP exporter on the WAN router, node exporter
on a gateway, sFlow/NetFlow collectors) already put the link's counters in
Prometheus; the operator gives one PromQL expression per measure in
``drlogic.prometheus_queries``, each evaluating to bytes per second:

* ``capacity_bps`` -- e.g. ``ifHighSpeed{ifName="wan0"} * 1e6 / 8``;
* ``app_traffic_bps`` -- e.g. ``rate(ifHCOutOctets{ifName="wan0"}[1m])``
  minus the replication class's rate;
* ``replication_bps`` (optional) -- e.g. the shaper class's byte counter
  ``rate(node_qdisc_bytes_total{device="wan0",kind="htb"}[1m])`` or a flow
  collector's sum for the object store's addresses.

``{site}`` and ``{peer}`` in a query are replaced by this site and the
recovery site. Each query is evaluated with ``GET /api/v1/query``; a vector
result is summed, a scalar used as is; an empty result for a required
measure is a configuration error (the query selects nothing).
"""

from __future__ import annotations

from typing import Any

import httpx

from liferaft.config.model import DrLogicSettings
from liferaft.errors import ConfigError, RetryLater

from .port import LinkSample

REQUIRED = ("capacity_bps", "app_traffic_bps")
OPTIONAL = ("replication_bps",)


class PrometheusMonitor:
    name = "prometheus"
    capabilities: frozenset[str] = frozenset({"capacity", "app-traffic", "replication-use"})

    def __init__(
        self,
        settings: DrLogicSettings,
        *,
        site: str,
        peer: str,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not settings.link_url:
            raise ConfigError("drlogic.link_url: the prometheus link monitor needs Prometheus' URL")
        queries = dict(settings.prometheus_queries)
        missing = [k for k in REQUIRED if k not in queries]
        unknown = sorted(set(queries) - set(REQUIRED) - set(OPTIONAL))
        if missing or unknown:
            problems = []
            if missing:
                problems.append(f"missing {', '.join(missing)}")
            if unknown:
                problems.append(f"unknown {', '.join(unknown)}")
            raise ConfigError(
                "drlogic.prometheus_queries: "
                + "; ".join(problems)
                + f" (give {', '.join(REQUIRED)} and optionally {', '.join(OPTIONAL)})"
            )
        self.queries = {
            k: q.replace("{site}", site).replace("{peer}", peer) for k, q in queries.items()
        }
        self.url = settings.link_url
        self.http = httpx.Client(base_url=settings.link_url, timeout=10.0, transport=transport)

    def query(self, key: str) -> float | None:
        """Evaluate the query for ``key``; ``None`` when it selects nothing."""
        q = self.queries[key]
        try:
            r = self.http.get("/api/v1/query", params={"query": q})
        except httpx.HTTPError as err:
            raise RetryLater(f"prometheus at {self.url}: {err}") from err
        try:
            body: Any = r.json()
        except ValueError:
            raise RetryLater(f"prometheus at {self.url}: HTTP {r.status_code}, not JSON") from None
        if r.status_code == 400 or body.get("errorType") == "bad_data":
            raise ConfigError(
                f"drlogic.prometheus_queries.{key}: Prometheus refused {q!r}: {body.get('error')}"
            )
        if r.status_code >= 400 or body.get("status") != "success":
            raise RetryLater(f"prometheus at {self.url}: {r.status_code} {body.get('error', '')}")
        data = body.get("data") or {}
        kind = data.get("resultType")
        result: Any = data.get("result")
        try:
            if kind == "scalar":
                return float(result[1])
            if kind == "vector":
                if not result:
                    return None
                return sum(float(s["value"][1]) for s in result)
        except (TypeError, ValueError, KeyError, IndexError) as err:
            raise RetryLater(f"prometheus: unreadable answer to {q!r}: {err}") from None
        raise ConfigError(
            f"drlogic.prometheus_queries.{key}: {q!r} gives a {kind}, not a single value "
            "(use an instant vector or a scalar)"
        )

    def sample(self) -> LinkSample:
        values: dict[str, float | None] = {k: self.query(k) for k in self.queries}
        for key in REQUIRED:
            if values[key] is None:
                raise ConfigError(
                    f"drlogic.prometheus_queries.{key}: {self.queries[key]!r} selects no series"
                )
        return LinkSample(
            capacity_bps=float(values["capacity_bps"] or 0.0),
            app_traffic_bps=float(values["app_traffic_bps"] or 0.0),
            replication_bps=values.get("replication_bps"),
            source=f"prometheus {self.url}",
        )

    def close(self) -> None:
        self.http.close()
