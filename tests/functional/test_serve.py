"""``liferaft serve`` as a real process: ready line, token check, clear config errors."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer
import yaml

from liferaft.cli import client
from tests.support.sim import SimProcess
from tests.support.wait import wait_for

READY = re.compile(r"liferaft ready api=(\S+) site=(\S+)")


def liferaft_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "liferaft", *args]


class Controller:
    def __init__(self, config: Path, log: Path) -> None:
        self.log_path = log
        self._log = open(log, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            liferaft_cmd("serve", "--config", str(config)),
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            start_new_session=True,
        )
        self.url, self.site = self._wait_ready(60)

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
        raise AssertionError(f"liferaft serve did not become ready:\n{self.log_path.read_text()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def write_config(tmp_path: Path, sim: SimProcess, **extra: object) -> Path:
    cfg: dict[str, object] = {
        "site": {"name": "east", "clouds_yaml": sim.clouds_yaml},
        "peers": [{"name": "west", "clouds_yaml": sim.clouds_yaml}],
        "state_dir": str(tmp_path / "state"),
        "api": {"port": 0},
        "logging": {"format": "json"},
        "clock": {"source": "simulator", "control_url": sim.control_url},
        **extra,
    }
    path = tmp_path / "liferaft.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def leading(controller: Controller, token: str) -> dict[str, object] | None:
    """The controller's ``/v1/info`` once it leads, else None."""
    info: dict[str, object] = httpx.get(
        controller.url + "/v1/info", headers={"X-Auth-Token": token}, timeout=30
    ).json()
    return info if info["leader"] else None


@pytest.fixture
def controller(sim: SimProcess, tmp_path: Path) -> Iterator[Controller]:
    c = Controller(write_config(tmp_path, sim), tmp_path / "serve.log")
    yield c
    c.stop()


def test_serve_answers_with_a_real_token(
    sim: SimProcess, controller: Controller, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert controller.site == "east"
    assert controller.url.startswith("http://127.0.0.1:")
    health = httpx.get(controller.url + "/health", timeout=30).json()
    assert health["status"] == "ok", health
    r = httpx.get(controller.url + "/v1/info", timeout=30)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == 401
    token = str(sim.connect("east-demo").auth_token)
    r = httpx.get(controller.url + "/v1/info", headers={"X-Auth-Token": token}, timeout=30)
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["site"] == "east" and info["clock"] == "simulator"
    # The only controller of its role takes the leadership.
    if not info["leader"]:
        info = wait_for(
            lambda: leading(controller, token), 30, "the controller to take the leadership"
        )
    assert info["leader"] is True

    # The CLI's client helpers reach the same API, with a token issued from clouds.yaml.
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", sim.clouds_yaml)
    api = client.connect(url=controller.url, cloud="east-demo")
    assert api.get("/v1/info")["site"] == "east"
    assert api.get("/v1/events", after=0)["events"] == []
    with pytest.raises(client.ClientError, match="HTTP 401: invalid or expired token"):
        client.ApiClient(controller.url, "bogus").get("/v1/info")
    with pytest.raises(typer.Exit), client.handle_errors():
        client.ApiClient(controller.url, None).get("/v1/info")

    assert controller.stop() == 0
    logs = controller.log_path.read_text()
    assert '"msg": "serving"' in logs


@pytest.mark.parametrize(
    "extra, key, problem",
    [
        ({"api": {"port": 0, "prot": 1}}, "api.prot", "unknown setting"),
        ({"api": {"port": "many"}}, "api.port", "valid integer"),
        (
            {"store": {"url": {"$env": "LIFERAFT_TEST_UNSET_VAR"}}},
            "store.url",
            "LIFERAFT_TEST_UNSET_VAR is not set",
        ),
    ],
)
def test_bad_config_exits_2_naming_file_and_key(
    sim: SimProcess, tmp_path: Path, extra: dict[str, object], key: str, problem: str
) -> None:
    path = write_config(tmp_path, sim, **extra)
    env = {k: v for k, v in os.environ.items() if k != "LIFERAFT_TEST_UNSET_VAR"}
    r = subprocess.run(
        liferaft_cmd("serve", "--config", str(path)),
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"liferaft: config error: {path}: {key}: ")
    assert problem in lines[0]
    assert "Traceback" not in r.stderr


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    r = subprocess.run(
        liferaft_cmd("serve", "--config", str(tmp_path / "nope.yaml")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert f"{tmp_path / 'nope.yaml'}: config file not found" in r.stderr


@pytest.mark.parametrize(
    "extra, expected",
    [
        (
            {"protection": {"quiescer": "freeze-typo"}},
            ["protection.quiescer: no quiescer driver named 'freeze-typo' (available: "],
        ),
        (
            {"drlogic": {"logic_driver": "mpc-typo"}},
            ["drlogic.logic_driver: no logic driver named 'mpc-typo' (available: "],
        ),
        (
            # Two problems, one line: an unknown verifier and a fencer that cannot confirm power-off.
            {
                "protection": {"verifier": "ping-typo"},
                "ha": {
                    "enabled": True,
                    "segments": [{"name": "seg", "hosts": ["cmp-1"]}],
                    "hosts": [{"name": "cmp-1", "fencers": [{"driver": "noop"}]}],
                },
            },
            [
                "protection.verifier: no verifier driver named 'ping-typo' (available: ",
                "ha.hosts[cmp-1].fencers[0]: fencer driver 'noop' (",
                "lacks the required capabilities",
            ],
        ),
    ],
)
def test_an_unknown_or_incapable_driver_exits_2_with_one_line_naming_the_setting(
    sim: SimProcess, tmp_path: Path, extra: dict[str, object], expected: list[str]
) -> None:
    path = write_config(tmp_path, sim, **extra)
    r = subprocess.run(
        liferaft_cmd("serve", "--config", str(path)), capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"liferaft: config error: {path}: "), lines[0]
    for part in expected:
        assert part in lines[0], lines[0]
    assert "Traceback" not in r.stderr
    # Nothing was led or written: the check runs before the store is opened.
    assert not (tmp_path / "state" / "liferaft.db").exists()


def test_serve_leads_through_the_controller_and_releases_the_lease_on_stop(
    sim: SimProcess, controller: Controller, tmp_path: Path
) -> None:
    from liferaft.store import Store, sqlite_url

    token = str(sim.connect("east-demo").auth_token)
    info = wait_for(lambda: leading(controller, token), 60, "the controller to take the leadership")
    assert info["leader"] is True, info
    assert controller.stop() == 0
    with Store(sqlite_url(tmp_path / "state"), migrate=False) as store:
        lease = store.get_lease(str(info["role"]))
    assert lease is not None and lease.holder == "", lease  # released: a successor leads at once
