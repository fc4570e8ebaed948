"""The simulator's WAN links as a LinkMonitor and a LinkShaper (its control API, over HTTP).

The monitor reads ``GET /control/links``: the link between this site and
the recovery site, its configured bandwidth, the background (application)
traffic and the bytes carried by tag; replication use is the growth of the
``backup`` tag's counter between two samples on the simulator's clock (the
rate of its active backup flows on the first sample). The shaper caps the
``backup`` flows of that link together (``PUT /control/links/{name}/limits``),
the simulator's shaper class. The simulator cannot guarantee a rate to one
flow; the guarantees are reported, not enforced (the ``tc`` shaper does).

The control API is for tests, the demo and benchmarks only (DESIGN.md).
"""

from __future__ import annotations

from typing import Any

import httpx

from liferaft.config.model import DrLogicSettings
from liferaft.errors import ConfigError, RetryLater

from .port import LinkSample, ShapeOrder

#: The simulator tags the backup service's transfers with this.
BACKUP_TAG = "backup"


class _SimLinks:
    def __init__(self, settings: DrLogicSettings, *, site: str, peer: str) -> None:
        if not settings.link_url:
            raise ConfigError(
                "drlogic.link_url: the simulator link drivers need the simulator's control URL"
            )
        self.site = site
        self.peer = peer
        self.http = httpx.Client(base_url=settings.link_url, timeout=10.0)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            r = self.http.request(method, path, json=body)
        except httpx.HTTPError as err:
            raise RetryLater(f"simulator links: {method} {path}: {err}") from err
        if r.status_code >= 400:
            raise RetryLater(f"simulator links: {method} {path}: {r.status_code} {r.text[:200]}")
        return r.json()

    def link(self) -> dict[str, Any]:
        links: list[dict[str, Any]] = self._call("GET", "/control/links")["links"]
        for lk in links:
            if {lk["a"], lk["b"]} == {self.site, self.peer}:
                return lk
        names = ", ".join(lk["name"] for lk in links) or "none"
        raise ConfigError(
            f"the simulator has no link between {self.site} and {self.peer} (links: {names})"
        )

    def now(self) -> float:
        return float(self._call("GET", "/control/clock")["now"])

    def close(self) -> None:
        self.http.close()


class SimulatorMonitor(_SimLinks):
    name = "simulator"
    capabilities: frozenset[str] = frozenset({"capacity", "app-traffic", "replication-use"})

    def __init__(self, settings: DrLogicSettings, *, site: str, peer: str) -> None:
        super().__init__(settings, site=site, peer=peer)
        self._last: tuple[float, float] | None = None  # (time, backup bytes)

    def sample(self) -> LinkSample:
        now = self.now()
        lk = self.link()
        carried = float(lk["bytes_by_tag"].get(BACKUP_TAG, 0))
        direction = f"{self.site}->{self.peer}"
        if self._last is not None and now > self._last[0]:
            used: float | None = (carried - self._last[1]) / (now - self._last[0])
        else:
            used = sum(
                f["rate_mbps"] * 1e6 / 8.0
                for f in lk["flows"]
                if f["tag"] == BACKUP_TAG and f"{f['src']}->{f['dst']}" == direction
            )
        self._last = (now, carried)
        capacity = 0.0 if not lk["up"] else float(lk["bandwidth_mbps"]) * 1e6 / 8.0
        return LinkSample(
            capacity_bps=capacity,
            app_traffic_bps=float(lk["background_mbps"]) * 1e6 / 8.0,
            replication_bps=max(0.0, used) if used is not None else None,
            source=f"simulator link {lk['name']}",
        )


class SimulatorShaper(_SimLinks):
    name = "simulator"
    capabilities: frozenset[str] = frozenset({"ceiling"})

    def apply(self, order: ShapeOrder) -> list[str]:
        lk = self.link()
        mbps = None if order.ceiling_bps is None else order.ceiling_bps * 8.0 / 1e6
        current = lk["tag_limits_mbps"].get(BACKUP_TAG)
        if current is not None and mbps is not None and abs(current - mbps) <= 1e-6 * mbps:
            return []
        if current is None and mbps is None:
            return []
        self._call(
            "PUT", f"/control/links/{lk['name']}/limits", {"limits_mbps": {BACKUP_TAG: mbps}}
        )
        what = "removed" if mbps is None else f"{mbps:.3f} Mbit/s"
        return [f"backup flows on {lk['name']}: ceiling {what}"]
