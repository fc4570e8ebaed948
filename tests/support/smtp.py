"""A real SMTP server (aiosmtpd) on a free loopback port, collecting what it receives."""

from __future__ import annotations

import socket
import threading
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Collect:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []
        self.arrived = threading.Condition()

    # aiosmtpd's hook name
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.arrived:
            self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
            self.arrived.notify_all()
        return "250 Message accepted for delivery"


class SmtpSink:
    """``with SmtpSink() as smtp:`` -- ``smtp.port``, ``smtp.messages``, ``smtp.wait(n)``."""

    def __init__(self) -> None:
        self.port = free_port()
        self._handler = _Collect()
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[tuple[list[str], Message]]:
        return self._handler.messages

    def url(self, to: str, sender: str = "liferaft@example.org") -> str:
        """An Apprise URL that mails ``to`` through this server, without TLS."""
        return f"mailto://127.0.0.1:{self.port}?from={sender}&to={to}&mode=insecure"

    def wait(self, n: int, timeout: float = 10.0) -> list[tuple[list[str], Message]]:
        """Block until ``n`` messages arrived (the server runs in its own thread)."""
        with self._handler.arrived:
            self._handler.arrived.wait_for(lambda: len(self.messages) >= n, timeout=timeout)
        return self.messages

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._controller.stop()
