"""The host agent's heartbeat packet: encoding, authentication, replay protection."""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path

import pytest

from liferaft.agent.heartbeat import (
    HEADER_SIZE,
    MAC_SIZE,
    Heartbeat,
    HeartbeatError,
    ReplayError,
    ReplayGuard,
    decode,
    encode,
    initial_seq,
    load_key,
    verify,
)
from liferaft.agent.sender import HeartbeatSender, parse_target
from liferaft.engine.clock import ManualClock

KEY = b"k" * 32
OTHER = b"o" * 32
NOW = 1767225600.0


def hb(seq: int = 1, t: float = NOW, host: str = "east-compute-1", site: str = "east") -> Heartbeat:
    return Heartbeat(host=host, site=site, seq=seq, timestamp=t)


def test_round_trip_and_documented_layout() -> None:
    packet = encode(hb(seq=42, t=NOW + 0.25), KEY)
    assert len(packet) == HEADER_SIZE + len("east-compute-1") + len("east") + MAC_SIZE
    magic, version, flags, hl, sl, seq, ts_us = struct.unpack_from("!4sBBBBQq", packet)
    assert (magic, version, flags, hl, sl, seq) == (b"LRHB", 1, 0, 14, 4, 42)
    assert ts_us == int((NOW + 0.25) * 1_000_000)
    assert packet[24:38] == b"east-compute-1" and packet[38:42] == b"east"
    assert decode(packet, [KEY]) == hb(seq=42, t=NOW + 0.25)


def test_unicode_names_and_key_rotation() -> None:
    packet = encode(hb(host="hôte-1", site="zürich"), KEY)
    assert decode(packet, [OTHER, KEY]).host == "hôte-1"


@pytest.mark.parametrize("offset", [0, 4, 5, 8, 16, 20, 24, 30, 40, -1])
def test_any_flipped_byte_is_rejected(offset: int) -> None:
    packet = bytearray(encode(hb(), KEY))
    packet[offset] ^= 0x01
    with pytest.raises(HeartbeatError):
        decode(bytes(packet), [KEY])


def test_wrong_key_truncation_and_garbage_are_rejected() -> None:
    packet = encode(hb(), KEY)
    with pytest.raises(HeartbeatError, match="bad signature"):
        decode(packet, [OTHER])
    with pytest.raises(HeartbeatError, match="bad signature"):
        decode(packet, [])
    with pytest.raises(HeartbeatError, match="lengths"):
        decode(packet[:-1], [KEY])
    with pytest.raises(HeartbeatError, match="lengths"):
        decode(packet + b"x", [KEY])
    with pytest.raises(HeartbeatError, match="too short"):
        decode(b"LRHB", [KEY])
    with pytest.raises(HeartbeatError, match="magic"):
        decode(b"\x00" * 80, [KEY])


def test_a_renamed_host_cannot_reuse_a_signature() -> None:
    a = encode(hb(host="east-compute-1"), KEY)
    b = encode(hb(host="east-compute-2"), KEY)
    forged = a[:24] + b"east-compute-2" + a[38:]  # same lengths, other host, old MAC
    assert forged != b
    with pytest.raises(HeartbeatError, match="bad signature"):
        decode(forged, [KEY])


def test_replayed_and_reordered_packets_are_refused_per_sender() -> None:
    guard = ReplayGuard(max_skew=30)
    first = encode(hb(seq=10), KEY)
    assert verify(first, [KEY], guard, NOW).seq == 10
    with pytest.raises(ReplayError, match="replayed"):
        verify(first, [KEY], guard, NOW + 1)
    with pytest.raises(ReplayError, match="seq 9 <= last accepted 10"):
        verify(encode(hb(seq=9, t=NOW + 1), KEY), [KEY], guard, NOW + 1)
    # Another host has its own sequence.
    assert verify(encode(hb(seq=1, host="east-compute-2"), KEY), [KEY], guard, NOW).seq == 1
    assert verify(encode(hb(seq=11, t=NOW + 5), KEY), [KEY], guard, NOW + 5).seq == 11


def test_stale_and_future_packets_are_refused() -> None:
    guard = ReplayGuard(max_skew=30)
    with pytest.raises(ReplayError, match="off the receiver's clock"):
        verify(encode(hb(seq=1, t=NOW - 31), KEY), [KEY], guard, NOW)
    with pytest.raises(ReplayError, match="off the receiver's clock"):
        verify(encode(hb(seq=2, t=NOW + 31), KEY), [KEY], guard, NOW)
    # A refused packet does not advance the sequence.
    assert verify(encode(hb(seq=1, t=NOW - 29), KEY), [KEY], guard, NOW).seq == 1
    with pytest.raises(ValueError):
        ReplayGuard(max_skew=0)


def test_sequence_numbers_survive_a_sender_restart() -> None:
    # A sender started later starts above everything an earlier one sent.
    early = initial_seq(NOW) + 3600  # one packet a second for an hour
    assert initial_seq(NOW + 3600.001) > early


def test_bad_encode_inputs_and_short_keys() -> None:
    with pytest.raises(HeartbeatError, match="at least 16 bytes"):
        encode(hb(), b"short")
    with pytest.raises(HeartbeatError, match="host must be"):
        encode(hb(host=""), KEY)
    with pytest.raises(HeartbeatError, match="site must be"):
        encode(hb(site="x" * 256), KEY)
    with pytest.raises(HeartbeatError, match="seq"):
        encode(hb(seq=-1), KEY)


def test_key_files(tmp_path: Path) -> None:
    f = tmp_path / "key"
    f.write_text("  0123456789abcdef0123456789abcdef\n")
    assert load_key(f) == b"0123456789abcdef0123456789abcdef"
    f.write_text("tooshort\n")
    with pytest.raises(HeartbeatError, match="at least 16 bytes"):
        load_key(f)
    with pytest.raises(HeartbeatError, match="no such key file"):
        load_key(tmp_path / "missing")


def test_targets() -> None:
    assert parse_target("127.0.0.1:9999") == ("127.0.0.1", 9999)
    assert parse_target("[::1]:623") == ("::1", 623)
    for bad in ("127.0.0.1", "host:0", "host:x", ":80"):
        with pytest.raises(ValueError):
            parse_target(bad)


def test_sender_sends_signed_sequenced_packets_over_udp() -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    clock = ManualClock(NOW, auto_advance=True)
    sender = HeartbeatSender(key=KEY, target=rx.getsockname(), host="h1", site="east", clock=clock)
    asyncio.run(sender.run(interval=5, count=3))
    guard = ReplayGuard()
    got = [verify(rx.recv(1024), [KEY], guard, clock.now()) for _ in range(3)]
    rx.close()
    assert [g.timestamp for g in got] == [NOW, NOW + 5, NOW + 10]
    assert [g.seq for g in got] == [initial_seq(NOW) + i for i in (1, 2, 3)]
    assert {(g.site, g.host) for g in got} == {("east", "h1")}
