"""Notifiers (``liferaft.notifiers``): tell the affected tenants and the admins.

The ``apprise`` notifier sends to any Apprise URL (``mailto://`` /
``mailtos://`` email, ``json://`` webhooks, Slack, Matrix, ...).  Messages
come from the templates below, filled with plain values (host, segment,
instance names) -- never credentials.  Every notification is also an event
in the API (the HA service records it; see :mod:`liferaft.ha.service`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from string import Template
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)

#: Notice kinds and their (title, body) templates (``string.Template``: ``$host`` ...).
TEMPLATES: dict[str, tuple[str, str]] = {
    "host_failed": (
        "[liferaft] compute host $host failed",
        "Compute host $host (segment $segment, site $site) stopped answering: $reasons.\n"
        "It is being fenced and its instances evacuated.",
    ),
    "host_recovered": (
        "[liferaft] instances of $host recovered",
        "Compute host $host (segment $segment, site $site) was fenced ($fence) and its "
        "instances evacuated.\nRunning again: $recovered\nNot recovered: $failed\n"
        "Skipped (local disk): $skipped",
    ),
    "tenant_recovered": (
        "[liferaft] your instances on $host were moved",
        "The compute host $host failed. Your instances were restarted elsewhere:\n$recovered\n"
        "Not recovered: $failed\nNot moved (their disk is local to the failed host): $skipped",
    ),
    "fence_failed": (
        "[liferaft] ALERT: could not fence $host",
        "Compute host $host (segment $segment, site $site) failed and could not be fenced: "
        "$error\nNothing was evacuated (its instances might still be running). "
        "An operator must power it off and resume the recovery.",
    ),
    "breaker": (
        "[liferaft] ALERT: mass failure, recovery stopped",
        "$reason\nNo host is being recovered until this clears (or an operator acts). "
        "Silent hosts: $hosts",
    ),
    "control_plane": (
        "[liferaft] ALERT: control plane unreachable",
        "The controller cannot read the compute control plane of site $site: $error\n"
        "No host is declared failed while it cannot see it.",
    ),
}


@dataclass(frozen=True)
class Notice:
    kind: str
    values: Mapping[str, Any]
    #: Projects whose tenants are told (their URLs in ``ha.tenant_urls``).
    projects: Sequence[str] = ()
    admins: bool = True
    #: Values that differ per project (each tenant hears only of its own instances).
    per_project: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def render(self, kind: str | None = None, project: str | None = None) -> tuple[str, str]:
        title, body = TEMPLATES[kind or self.kind]
        merged = {**self.values, **(self.per_project.get(project, {}) if project else {})}
        values = {k: _text(v) for k, v in merged.items()}
        return Template(title).safe_substitute(values), Template(body).safe_substitute(values)


def _text(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v) or "none"
    return str(v)


@runtime_checkable
class Notifier(Protocol):
    capabilities: frozenset[str]

    async def notify(self, notice: Notice) -> list[str]:
        """Send ``notice``; returns who was told (``admins``, ``project:<id>``), never URLs."""
        ...


class AppriseNotifier:
    """Apprise: one message to the admins, one per affected project with URLs."""

    capabilities = frozenset({"email", "webhook", "chat"})

    def __init__(self, admin_urls: Sequence[str], tenant_urls: Mapping[str, Sequence[str]]) -> None:
        self.admin_urls = list(admin_urls)
        self.tenant_urls = {k: list(v) for k, v in tenant_urls.items()}

    def __repr__(self) -> str:  # URLs may hold passwords
        return f"AppriseNotifier(admins={len(self.admin_urls)}, projects={len(self.tenant_urls)})"

    @staticmethod
    def _send(urls: Sequence[str], title: str, body: str) -> bool:
        import apprise

        ap = apprise.Apprise()
        for u in urls:
            ap.add(u)
        return bool(ap.notify(title=title, body=body))

    async def notify(self, notice: Notice) -> list[str]:
        told: list[str] = []
        if notice.admins and self.admin_urls:
            title, body = notice.render()
            if await asyncio.to_thread(self._send, self.admin_urls, title, body):
                told.append("admins")
            else:
                log.warning("notification %s to the admins failed", notice.kind)
        tenant_kind = "tenant_recovered" if notice.kind == "host_recovered" else notice.kind
        for project in notice.projects:
            urls = self.tenant_urls.get(project)
            if not urls:
                continue
            title, body = notice.render(tenant_kind, project)
            if await asyncio.to_thread(self._send, urls, title, body):
                told.append(f"project:{project}")
            else:
                log.warning("notification %s to project %s failed", notice.kind, project)
        return told


class NullNotifier:
    """Tells nobody (the events in the API remain)."""

    capabilities: frozenset[str] = frozenset()

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    async def notify(self, notice: Notice) -> list[str]:
        return []
