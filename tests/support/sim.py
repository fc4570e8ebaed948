"""Start a real simulator process for a test and talk to it over HTTP.

Each test gets its own state directory and free ports (the simulator binds
port 0 and reports what it got on its ready line).
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openstack
import openstack.config
import yaml

READY = re.compile(r"liferaft-sim ready control=(\S+) clouds=(\S+)")


class SimProcess:
    def __init__(
        self,
        state_dir: Path,
        *,
        stepped: bool = True,
        topology: dict[str, Any] | None = None,
        time_scale: float | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.state_dir = state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "liferaft", "sim", "serve", "--state-dir", str(state_dir)]
        if topology is not None:
            topo = state_dir / "topology.yaml"
            topo.write_text(yaml.safe_dump(topology))
            args += ["--topology", str(topo)]
        if stepped:
            args.append("--stepped")
        elif time_scale is not None:
            args += ["--time-scale", str(time_scale)]
        self.log_path = state_dir / "sim.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=self._log, text=True, start_new_session=True
        )
        self.control_url, self.clouds_yaml = self._wait_ready(timeout)
        self.http = httpx.Client(base_url=self.control_url, timeout=30)
        self.sites: dict[str, str] = json.loads((state_dir / "sim.json").read_text())["sites"]

    def _wait_ready(self, timeout: float) -> tuple[str, str]:
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
            m = READY.search(line)
            if m:
                return m.group(1), m.group(2)
        self.stop()
        raise RuntimeError(f"simulator did not become ready; log:\n{self.log_path.read_text()}")

    # -- control API ---------------------------------------------------------
    def control(self, method: str, path: str, body: Any = None) -> Any:
        r = self.http.request(method, path, json=body)
        if r.status_code >= 400:
            raise RuntimeError(f"control {method} {path}: {r.status_code} {r.text}")
        return r.json()

    def advance(self, seconds: float) -> dict[str, Any]:
        result: dict[str, Any] = self.control(
            "POST", "/control/clock/advance", {"seconds": seconds}
        )
        return result

    def now(self) -> float:
        return float(self.control("GET", "/control/clock")["now"])

    # -- clients -------------------------------------------------------------
    def connect(self, cloud: str = "east") -> openstack.connection.Connection:
        cfg = openstack.config.OpenStackConfig(config_files=[self.clouds_yaml])
        region = cfg.get_one(cloud=cloud)
        return openstack.connection.Connection(config=region)

    def cli_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["OS_CLIENT_CONFIG_FILE"] = self.clouds_yaml
        env.pop("OS_CLOUD", None)
        env["LIFERAFT_SIM_URL"] = self.control_url
        return env

    def openstack(self, cloud: str, *args: str, check: bool = True) -> Any:
        """Run the real ``openstack`` CLI; ``-f json`` output is parsed."""
        exe = Path(sys.executable).with_name("openstack")
        cmd = [str(exe), "--os-cloud", cloud, *args]
        r = subprocess.run(cmd, capture_output=True, text=True, env=self.cli_env(), timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr}")
        if "-f" in args and "json" in args and r.returncode == 0:
            return json.loads(r.stdout or "null")
        return r

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
