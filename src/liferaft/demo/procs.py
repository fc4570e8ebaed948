"""Child processes of the demo: the simulator and one controller per site."""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path


class Child:
    """A ``liferaft`` subprocess that prints one ready line (its log goes to a file)."""

    def __init__(self, args: list[str], log: Path, ready: str, *, timeout: float = 60.0) -> None:
        self.log_path = log
        self._log = open(log, "w")  # noqa: SIM115 -- closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "liferaft", *args],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            start_new_session=True,
        )
        self.match = self._wait(re.compile(ready), timeout)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            line = self.proc.stdout.readline()
            if not line:
                break
            m = pattern.search(line)
            if m:
                return m
        self.stop()
        raise RuntimeError(
            f"{self.log_path.name}: not ready; log:\n{self.log_path.read_text()[-3000:]}"
        )

    def kill(self) -> None:
        """Die at once (a lost site's controller)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
