"""The host agent's heartbeat: one signed UDP datagram, its encoding and its checks.

Every compute host (``liferaft agent`` on a real host, the simulator for each
simulated host) sends this datagram to the controller's monitor every few
seconds over the management network.  Both sides import this module, so the
format has exactly one definition.

Byte format (network byte order, 60 bytes + host + site, at most 572 bytes)::

    offset  size  field
    0       4     magic      b"LRHB"
    4       1     version    1
    5       1     flags      0 (reserved; receivers reject other values)
    6       1     host_len   1..255, length of ``host`` in bytes
    7       1     site_len   1..255, length of ``site`` in bytes
    8       8     seq        unsigned 64-bit sequence number
    16      8     timestamp  signed 64-bit, microseconds since the Unix epoch
                             (the sender's clock: wall time, or the simulator's)
    24      n     host       UTF-8 host name (the compute service's host)
    24+n    m     site       UTF-8 site name
    24+n+m  32    mac        HMAC-SHA256(key, every byte before the mac)

The key is a shared secret of at least 16 bytes (see :func:`load_key`).  A
receiver may hold several keys (rotation): a packet is authentic if any of
them verifies its MAC (compared in constant time).

Replay protection (:class:`ReplayGuard`):

* **sequence**: per ``(site, host)`` the receiver accepts only a ``seq``
  strictly greater than the last one it accepted, so a captured packet
  cannot be played back.  Senders start ``seq`` at their clock in
  milliseconds (:func:`initial_seq`) and add one per packet; sending at
  most one packet per millisecond keeps ``seq`` increasing across restarts
  without any state on disk.
* **freshness**: a packet whose timestamp is more than ``max_skew`` seconds
  away from the receiver's clock is refused, so a packet captured before a
  receiver restart (which forgets the sequences) is useless after
  ``max_skew`` seconds.  The receiver's clock must be the sender's clock
  (the simulator's clock in the demo and in tests; NTP time on real hosts).

A packet proves that the host's agent ran and could reach the management
network at ``timestamp``; it says nothing about the guests (they may run on
through an isolation), which is why the controller never fences on a
missed heartbeat alone.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"LRHB"
VERSION = 1
MAC_SIZE = 32
MIN_KEY_BYTES = 16
DEFAULT_MAX_SKEW = 30.0
_HEADER = struct.Struct("!4sBBBBQq")  # magic, version, flags, host_len, site_len, seq, ts_us
HEADER_SIZE = _HEADER.size  # 24
MAX_PACKET = HEADER_SIZE + 255 + 255 + MAC_SIZE


class HeartbeatError(ValueError):
    """A datagram that is not an authentic, well-formed heartbeat."""


class ReplayError(HeartbeatError):
    """An authentic heartbeat refused as replayed or stale."""


@dataclass(frozen=True)
class Heartbeat:
    """One heartbeat: who sent it, its sequence number and its send time (seconds)."""

    host: str
    site: str
    seq: int
    timestamp: float


def initial_seq(now: float) -> int:
    """The first sequence number of a sender starting at ``now``: its clock in ms."""
    return max(0, int(now * 1000))


def load_key(path: str | Path) -> bytes:
    """Read a key file: its text, stripped of surrounding whitespace, as UTF-8 bytes."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError as exc:
        raise HeartbeatError(f"{p}: no such key file") from exc
    key = text.strip().encode()
    check_key(key, str(p))
    return key


def check_key(key: bytes, where: str = "heartbeat key") -> None:
    if len(key) < MIN_KEY_BYTES:
        raise HeartbeatError(f"{where}: a key needs at least {MIN_KEY_BYTES} bytes, got {len(key)}")


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()


def encode(hb: Heartbeat, key: bytes) -> bytes:
    """The signed datagram for ``hb``."""
    check_key(key)
    host, site = hb.host.encode(), hb.site.encode()
    for name, value in (("host", host), ("site", site)):
        if not 1 <= len(value) <= 255:
            raise HeartbeatError(f"{name} must be 1 to 255 bytes of UTF-8, got {len(value)}")
    if not 0 <= hb.seq < 2**64:
        raise HeartbeatError(f"seq must fit in 64 unsigned bits, got {hb.seq}")
    ts_us = round(hb.timestamp * 1_000_000)
    body = _HEADER.pack(MAGIC, VERSION, 0, len(host), len(site), hb.seq, ts_us) + host + site
    return body + _mac(key, body)


def decode(packet: bytes, keys: Iterable[bytes]) -> Heartbeat:
    """Parse and authenticate a datagram (no replay check: see :func:`verify`)."""
    if len(packet) < HEADER_SIZE + 2 + MAC_SIZE:
        raise HeartbeatError(f"too short for a heartbeat ({len(packet)} bytes)")
    magic, version, flags, host_len, site_len, seq, ts_us = _HEADER.unpack_from(packet)
    if magic != MAGIC:
        raise HeartbeatError("not a Liferaft heartbeat (bad magic)")
    if version != VERSION:
        raise HeartbeatError(f"unsupported heartbeat version {version}")
    if flags != 0:
        raise HeartbeatError(f"unknown flags {flags:#04x}")
    end = HEADER_SIZE + host_len + site_len
    if host_len == 0 or site_len == 0 or len(packet) != end + MAC_SIZE:
        raise HeartbeatError("lengths do not match the datagram")
    body, mac = packet[:end], packet[end:]
    if not any(hmac.compare_digest(_mac(k, body), mac) for k in keys):
        raise HeartbeatError("bad signature")
    try:
        host = packet[HEADER_SIZE : HEADER_SIZE + host_len].decode()
        site = packet[HEADER_SIZE + host_len : end].decode()
    except UnicodeDecodeError as exc:
        raise HeartbeatError("host or site is not UTF-8") from exc
    return Heartbeat(host=host, site=site, seq=seq, timestamp=ts_us / 1_000_000)


class ReplayGuard:
    """Accepts each sender's heartbeats once, in sequence order, and only fresh ones.

    Keeps the last accepted sequence number per ``(site, host)`` in memory.
    """

    def __init__(self, max_skew: float = DEFAULT_MAX_SKEW) -> None:
        if max_skew <= 0:
            raise ValueError(f"max_skew must be positive, got {max_skew}")
        self.max_skew = max_skew
        self.last_seq: dict[tuple[str, str], int] = {}

    def check(self, hb: Heartbeat, now: float) -> None:
        """Raise :class:`ReplayError` unless ``hb`` is fresh and newer; then remember it."""
        if abs(now - hb.timestamp) > self.max_skew:
            raise ReplayError(
                f"heartbeat of {hb.site}/{hb.host} is {now - hb.timestamp:+.1f} s off "
                f"the receiver's clock (allowed {self.max_skew:g} s)"
            )
        key = (hb.site, hb.host)
        last = self.last_seq.get(key)
        if last is not None and hb.seq <= last:
            raise ReplayError(
                f"heartbeat of {hb.site}/{hb.host} replayed or reordered "
                f"(seq {hb.seq} <= last accepted {last})"
            )
        self.last_seq[key] = hb.seq


def verify(packet: bytes, keys: Iterable[bytes], guard: ReplayGuard, now: float) -> Heartbeat:
    """Authenticate ``packet`` and pass it through ``guard``; the heartbeat, or an error."""
    hb = decode(packet, keys)
    guard.check(hb, now)
    return hb
