"""HA notifications reach a real SMTP server (aiosmtpd on a free loopback port) through Apprise."""

from __future__ import annotations

import asyncio

from liferaft.ha.notifiers import AppriseNotifier, Notice
from tests.support.smtp import SmtpSink


def test_admins_and_each_tenant_get_their_email() -> None:
    with SmtpSink() as smtp:
        notifier = AppriseNotifier(
            [smtp.url("ops@example.org")],
            {"proj-a": [smtp.url("alice@example.org")], "proj-b": [smtp.url("bob@example.org")]},
        )
        notice = Notice(
            "host_recovered",
            {
                "host": "east-compute-1",
                "segment": "rack-1",
                "site": "east",
                "fence": "redfish",
                "recovered": ["web-1 (id1)", "db-1 (id2)"],
                "failed": [],
                "skipped": [],
            },
            projects=["proj-a", "proj-b", "proj-without-urls"],
            per_project={
                "proj-a": {"recovered": ["web-1 (id1)"], "failed": [], "skipped": []},
                "proj-b": {"recovered": ["db-1 (id2)"], "failed": [], "skipped": []},
            },
        )
        told = asyncio.run(notifier.notify(notice))
        assert told == ["admins", "project:proj-a", "project:proj-b"]
        msgs = {rcpt[0]: msg for rcpt, msg in smtp.wait(3)}
    assert set(msgs) == {"ops@example.org", "alice@example.org", "bob@example.org"}
    admin = msgs["ops@example.org"]
    assert "east-compute-1" in admin["Subject"]
    body = (
        admin.get_payload(decode=True)
        if not admin.is_multipart()
        else admin.get_payload()[0].get_payload(decode=True)
    )
    assert b"web-1" in body and b"db-1" in body and b"redfish" in body

    def text(m: object) -> bytes:
        from email.message import Message

        assert isinstance(m, Message)
        part = m.get_payload()[0] if m.is_multipart() else m
        return bytes(part.get_payload(decode=True))

    # Each tenant hears only of its own instances.
    assert b"web-1" in text(msgs["alice@example.org"]) and b"db-1" not in text(
        msgs["alice@example.org"]
    )
    assert b"db-1" in text(msgs["bob@example.org"]) and b"web-1" not in text(
        msgs["bob@example.org"]
    )


def test_a_failed_fence_alert_is_mailed_to_the_admins() -> None:
    with SmtpSink() as smtp:
        notifier = AppriseNotifier([smtp.url("ops@example.org")], {})
        told = asyncio.run(
            notifier.notify(
                Notice(
                    "fence_failed",
                    {
                        "host": "east-compute-2",
                        "segment": "rack-1",
                        "site": "east",
                        "error": "BMC refused the login",
                    },
                )
            )
        )
        assert told == ["admins"]
        ((rcpt, msg),) = smtp.wait(1)
    assert (
        rcpt == ["ops@example.org"]
        and "ALERT" in msg["Subject"]
        and "east-compute-2" in msg["Subject"]
    )
