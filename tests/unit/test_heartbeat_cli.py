"""``liferaft agent`` sends signed heartbeats a monitor verifies; bad options get clear errors."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from liferaft.agent.heartbeat import ReplayGuard, load_key, verify


def agent(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "liferaft", "agent", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_agent_sends_verified_heartbeats(tmp_path: Path) -> None:
    key_file = tmp_path / "hb.key"
    key_file.write_text("0123456789abcdef0123456789abcdef\n")
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(10)
    port = rx.getsockname()[1]
    r = agent(
        "--key-file", str(key_file), "--target", f"127.0.0.1:{port}",
        "--host", "compute-7", "--site", "east", "--interval", "0.01", "--count", "3",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    guard = ReplayGuard(max_skew=60)
    key = load_key(key_file)
    # A real host's agent stamps wall time; so does a real monitor's clock.
    beats = [verify(rx.recv(1024), [key], guard, time.time()) for _ in range(3)]
    rx.close()
    assert {(b.site, b.host) for b in beats} == {("east", "compute-7")}
    assert [b.seq for b in beats] == sorted({b.seq for b in beats})


def test_agent_refuses_bad_options(tmp_path: Path) -> None:
    short = tmp_path / "short.key"
    short.write_text("abc")
    cases = [
        (["--key-file", str(short), "--target", "127.0.0.1:1", "--site", "e"], "at least 16 bytes"),
        (["--key-file", str(tmp_path / "nope"), "--target", "h:1", "--site", "e"], "no such key"),
    ]
    good = tmp_path / "good.key"
    good.write_text("x" * 32)
    cases += [
        (["--key-file", str(good), "--target", "nohost", "--site", "e"], "HOST:PORT"),
        (["--key-file", str(good), "--target", "h:1"], "--site is required"),
        (
            ["--key-file", str(good), "--target", "h:1", "--site", "e", "--interval", "0"],
            "positive",
        ),
    ]
    for args, message in cases:
        r = agent(*args)
        assert r.returncode == 2, args
        assert message in " ".join(r.stderr.split()), (args, r.stderr)
