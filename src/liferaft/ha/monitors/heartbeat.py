"""The signed UDP host heartbeat listener (format: :mod:`liferaft.agent.heartbeat`).

Each compute host's agent sends a signed datagram every few seconds over
the management network.  A host whose last valid heartbeat is older than
``heartbeat_timeout`` (or that was never heard since the listener started
that long ago) counts as silent.  Forged, replayed and stale packets are
dropped and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from liferaft.agent import heartbeat as hb
from liferaft.errors import ConfigError

from .base import HOST_SIGNAL, MonitorContext, Signal

log = logging.getLogger(__name__)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, monitor: HeartbeatMonitor) -> None:
        self.monitor = monitor

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.monitor.receive(data)


class HeartbeatMonitor:
    name = "heartbeat"
    capabilities = frozenset({HOST_SIGNAL})

    def __init__(self, ctx: MonitorContext) -> None:
        s = ctx.settings
        if s.heartbeat_listen is None or s.heartbeat_key is None:
            raise ConfigError("ha: the heartbeat monitor needs heartbeat_listen and heartbeat_key")
        self.ctx = ctx
        key = s.heartbeat_key.get_secret_value().encode()
        hb.check_key(key, "ha.heartbeat_key")
        self._keys = [key]
        host, _, port = s.heartbeat_listen.rpartition(":")
        if not port.isdigit():
            raise ConfigError(f"ha.heartbeat_listen: {s.heartbeat_listen!r} is not host:port")
        self.listen = (host.strip("[]") or "127.0.0.1", int(port))
        self.guard = hb.ReplayGuard()
        self.last_seen: dict[str, float] = {}
        self.rejected = 0
        self.started_at: float | None = None
        self._transport: asyncio.DatagramTransport | None = None

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens (the real port when 0 was asked for)."""
        if self._transport is None:
            return self.listen
        sock = self._transport.get_extra_info("sockname")
        return (str(sock[0]), int(sock[1]))

    async def start(self) -> None:
        if self._transport is not None:
            return
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=self.listen
        )
        self._transport = transport
        self.started_at = self.ctx.clock.now()

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def receive(self, packet: bytes) -> None:
        try:
            now = self.ctx.clock.now()
            beat = hb.verify(packet, self._keys, self.guard, now)
        except Exception as exc:  # a forged, replayed or garbled packet: drop it
            self.rejected += 1
            log.debug("heartbeat dropped: %s", exc)
            return
        if beat.site == self.ctx.site:
            self.last_seen[beat.host] = max(self.last_seen.get(beat.host, 0.0), beat.timestamp)

    async def observe(self, hosts: Sequence[str]) -> dict[str, Signal]:
        now = self.ctx.clock.now()
        timeout = self.ctx.settings.heartbeat_timeout
        out: dict[str, Signal] = {}
        for h in hosts:
            seen = self.last_seen.get(h)
            if seen is None:
                if self.started_at is not None and now - self.started_at > timeout:
                    out[h] = Signal(h, True, "no heartbeat since the listener started")
                continue
            age = now - seen
            out[h] = Signal(
                h,
                age > timeout,
                f"last heartbeat {age:.0f} s ago" if age > timeout else "heartbeat",
            )
        return out
