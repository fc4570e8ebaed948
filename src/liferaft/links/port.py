"""The LinkMonitor and LinkShaper ports.

A **LinkMonitor** measures the WAN link from this site to its recovery site:
its capacity, the application traffic on it and what replication used. A
**LinkShaper** enforces what DR-Logic decided for the flows Liferaft does not
carry itself (the backup service's volume backups): a ceiling on the
replication class and guaranteed rates, like an HTB class with children.

Both are synchronous (the controller calls them from a worker thread, next
to the catalog's queries) and are built by :func:`liferaft.plugins.create`
with ``(settings, site=..., peer=...)``: the DR-Logic settings, this site
and the recovery site. Errors are converted at the adapter boundary:
:class:`~liferaft.errors.RetryLater` when the source cannot be reached now,
:class:`~liferaft.errors.ConfigError` when its answer shows the
configuration is wrong.

Units: bytes per second (``*_bps``), like the DR-Logic contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class LinkSample:
    """One measurement of the link (bytes per second).

    ``capacity_bps`` is what the link offers in the replication direction,
    ``app_traffic_bps`` the application traffic's current use of it, and
    ``replication_bps`` what replication flows used (``None``: not measured).
    """

    capacity_bps: float
    app_traffic_bps: float
    replication_bps: float | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class ShapeOrder:
    """What to enforce on the link until the next decision.

    ``ceiling_bps`` caps all replication flows together (``None``: no cap
    beyond the link). ``guaranteed_bps`` maps a flow id to its guaranteed
    rate; a shaper that cannot tell flows apart guarantees their sum to
    the replication class.
    """

    ceiling_bps: float | None
    guaranteed_bps: tuple[tuple[str, float], ...] = ()
    reason: str = ""

    @property
    def guaranteed_total_bps(self) -> float:
        return sum(r for _f, r in self.guaranteed_bps)


@runtime_checkable
class LinkMonitor(Protocol):
    """Measures the WAN link from this site to its recovery site."""

    name: str
    capabilities: frozenset[str]

    def sample(self) -> LinkSample:
        """Measure the link now."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class LinkShaper(Protocol):
    """Enforces the replication share of the WAN link."""

    name: str
    capabilities: frozenset[str]

    def apply(self, order: ShapeOrder) -> list[str]:
        """Enforce ``order``; returns what was done, one short line per action."""
        ...

    def close(self) -> None: ...
