"""The simulated hosts' UDP heartbeats (the host agent each real host would run).

Every ``heartbeat_interval`` simulated seconds, each host that is powered
on, whose site is up and whose management network is not isolated sends one
signed datagram (format: :mod:`liferaft.agent.heartbeat`) to the target the
controller listens on.  The timestamp is the simulator's clock, so a monitor
reading the simulator's clock sees fresh packets however fast a stepped
clock moves (a stepped advance sends the whole burst at once).

The key is ``STATE_DIR/heartbeat.key`` (made on first start, mode 0600): the
controller's monitor is configured with the same file.  The target comes
from the topology's ``heartbeat_target`` or, since the controller starts
after the simulator, from ``PUT /control/heartbeat {"target": "HOST:PORT"}``
(``null`` stops sending); ``GET /control/heartbeat`` shows the settings and
counters.
"""

from __future__ import annotations

import secrets
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..agent.heartbeat import Heartbeat, encode, initial_seq, load_key
from .clock import Timer
from .http import ApiError, error_response, json_response, read_json

if TYPE_CHECKING:
    from .server import SimServer
    from .world import World


def parse_target(text: Any) -> tuple[str, int]:
    if not isinstance(text, str):
        raise ApiError(400, f"'target' must be HOST:PORT or null, got {text!r}")
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ApiError(400, f"'target' must be HOST:PORT, got {text!r}")
    return host, int(port)


class HeartbeatService:
    """Sends every live, connected host's heartbeat on the world's clock."""

    def __init__(self, world: World, state_dir: Path) -> None:
        self.world = world
        topo = world.topology
        self.interval = topo.heartbeat_interval
        self.key_file = state_dir / "heartbeat.key"
        if not self.key_file.exists():
            self.key_file.write_text(secrets.token_hex(32) + "\n")
            self.key_file.chmod(0o600)
        self.key = load_key(self.key_file)
        self.target: tuple[str, int] | None = None
        self.seqs: dict[tuple[str, str], int] = {}
        self.sent = 0
        self.silent = 0  # heartbeats a host did not send (off, site down, isolated)
        self.errors = 0
        self._sock: socket.socket | None = None
        self._timer: Timer | None = None
        if topo.heartbeat_target:
            self.configure(target=topo.heartbeat_target)

    def configure(self, *, target: Any = ..., interval: Any = ...) -> None:
        if interval is not ...:
            if (
                not isinstance(interval, (int, float))
                or isinstance(interval, bool)
                or not interval > 0
            ):
                raise ApiError(400, f"'interval' must be a number > 0, got {interval!r}")
            self.interval = float(interval)
        if target is not ...:
            self.target = None if target is None else parse_target(target)
            if self._sock is not None:
                self._sock.close()
                self._sock = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.target is not None:
            self._tick()

    def _tick(self) -> None:
        self.send_all()
        self._timer = self.world.clock.call_later(self.interval, self._tick)

    def send_all(self) -> None:
        if self.target is None:
            return
        now = self.world.clock.now()
        for site in self.world.sites.values():
            for host in site.compute.hosts.values():
                if not host.alive() or host.mgmt_silent_since is not None:
                    self.silent += 1
                    continue
                key = (site.name, host.name)
                seq = self.seqs.get(key, initial_seq(now)) + 1
                self.seqs[key] = seq
                hb = Heartbeat(host=host.name, site=site.name, seq=seq, timestamp=now)
                self._send(encode(hb, self.key))

    def _send(self, packet: bytes) -> None:
        assert self.target is not None
        if self._sock is None:
            family = socket.AF_INET6 if ":" in self.target[0] else socket.AF_INET
            self._sock = socket.socket(family, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        try:
            self._sock.sendto(packet, self.target)
            self.sent += 1
        except OSError:
            self.errors += 1  # nobody listening yet, or a full buffer: UDP loses it

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def describe(self) -> dict[str, Any]:
        return {
            "target": None if self.target is None else f"{self.target[0]}:{self.target[1]}",
            "interval": self.interval,
            "key_file": str(self.key_file),
            "sent": self.sent,
            "silent": self.silent,
            "errors": self.errors,
        }


def routes(server: SimServer) -> list[BaseRoute]:
    """``GET``/``PUT /control/heartbeat``."""
    service = server.heartbeats

    def handler(fn: Any) -> Any:
        async def wrapped(request: Request) -> Response:
            try:
                server.world.clock.run_due()
                result: Response = await fn(request)
                return result
            except ApiError as err:
                return error_response(err, "keystone")

        return wrapped

    @handler
    async def get(request: Request) -> Response:
        return json_response(service.describe())

    @handler
    async def put(request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict) or not body or set(body) - {"target", "interval"}:
            raise ApiError(
                400, "heartbeat settings are a JSON object with 'target' and/or 'interval'"
            )
        service.configure(target=body.get("target", ...), interval=body.get("interval", ...))
        return json_response(service.describe())

    return [
        Route("/control/heartbeat", get, methods=["GET"]),
        Route("/control/heartbeat", put, methods=["PUT"]),
    ]
