"""A throwaway Redis server for tests, from Debian's ``redis-server`` package.

``RedisServer()`` starts ``redis-server`` on a free loopback port, with no
persistence (``--save "" --appendonly no``) and its working directory in a
temporary directory; it waits (with a timeout) until the server answers
``PING``, and :meth:`RedisServer.stop` terminates it (``SIGKILL`` if it does
not exit) and removes the directory.  ``scripts/system-deps`` installs the
package.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REDIS_SERVER = os.environ.get("LIFERAFT_REDIS_SERVER", "redis-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ping(port: int, timeout: float = 1.0) -> bool:
    """One RESP ``PING`` over a raw socket (no client library needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One running ``redis-server`` on ``127.0.0.1:port``."""

    def __init__(self, *, timeout: float = 30.0) -> None:
        exe = shutil.which(REDIS_SERVER)
        if exe is None:
            raise RuntimeError(
                f"redis-server is not installed ({REDIS_SERVER!r} not found); run scripts/system-deps"
            )
        self.root = Path(tempfile.mkdtemp(prefix="lr-redis-"))
        self.log = self.root / "redis.log"
        self.port = _free_port()
        cmd = [
            exe,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.root),
            "--logfile",
            str(self.log),
            "--daemonize",
            "no",
        ]
        self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not _ping(self.port):
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.proc.returncode} before answering:\n{self._tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"redis-server did not answer PING on port {self.port} "
                    f"within {timeout}s:\n{self._tail()}"
                )
            time.sleep(0.05)

    def _tail(self) -> str:
        return self.log.read_text()[-2000:] if self.log.exists() else ""

    @property
    def url(self) -> str:
        """The tooz coordination URL of this server."""
        return f"redis://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc is not None:
            proc, self.proc = self.proc, None
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.root)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
