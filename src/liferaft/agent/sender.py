"""Send the heartbeat from a real host: ``liferaft agent`` runs :class:`HeartbeatSender`."""

from __future__ import annotations

import socket
from typing import Protocol

from .heartbeat import Heartbeat, check_key, encode, initial_seq


class _Clock(Protocol):
    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


def parse_target(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as a socket address."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


class HeartbeatSender:
    """Sends one signed heartbeat per interval to ``target`` over UDP."""

    def __init__(
        self, *, key: bytes, target: tuple[str, int], host: str, site: str, clock: _Clock
    ) -> None:
        check_key(key)
        self.key = key
        self.target = target
        self.host = host
        self.site = site
        self.clock = clock
        self.seq = initial_seq(clock.now())
        family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sent = 0

    def send_one(self) -> Heartbeat:
        self.seq += 1
        hb = Heartbeat(host=self.host, site=self.site, seq=self.seq, timestamp=self.clock.now())
        try:
            self.sock.sendto(encode(hb, self.key), self.target)
            self.sent += 1
        except OSError:
            pass  # no route right now: the monitor sees the silence, which is the point
        return hb

    async def run(self, interval: float, count: int | None = None) -> None:
        """Send every ``interval`` seconds, ``count`` times (``None``: until cancelled)."""
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        n = 0
        try:
            while count is None or n < count:
                self.send_one()
                n += 1
                if count is None or n < count:
                    await self.clock.sleep(interval)
        finally:
            self.sock.close()
