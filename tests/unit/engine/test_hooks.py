from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from liferaft.engine.hooks import HOOKS, KillHooks, KillSpec
from liferaft.errors import ConfigError


def test_parse_spec() -> None:
    assert KillSpec.parse("before_step", where="x") == KillSpec("before_step", None, 1)
    assert KillSpec.parse(" after_cloud_call@boot#3 ", where="x") == KillSpec(
        "after_cloud_call", "boot", 3
    )


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("nope", "unknown kill hook 'nope'"),
        ("before_step#x", "must be a number"),
        ("before_step#0", ">= 1"),
    ],
)
def test_bad_specs_are_config_errors(spec: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        KillHooks(spec)


def test_unarmed_hooks_do_nothing_and_unknown_points_are_bugs() -> None:
    hooks = KillHooks.from_env({})
    assert not hooks.armed
    for name in HOOKS:
        hooks.point(name, "s")
    with pytest.raises(ValueError):
        hooks.point("no_such_hook")


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


CODE = """
from liferaft.engine.hooks import KillHooks
h = KillHooks.from_env()
for i in range(3):
    for step in ("a", "b"):
        h.point("before_step", step)
        print("passed", step, i, flush=True)
"""


def test_env_spec_kills_at_the_nth_hit_of_the_named_step() -> None:
    proc = _run(CODE, {"LIFERAFT_KILL_AT": "before_step@b#2", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == -9
    assert proc.stdout.split("\n")[:-1] == ["passed a 0", "passed b 0", "passed a 1"]


def test_file_spec_fires_once(tmp_path: Path) -> None:
    spec = tmp_path / "kill"
    spec.write_text("before_step@a#2\n")
    env = {"LIFERAFT_KILL_FILE": str(spec), "PATH": "/usr/bin:/bin"}
    first = _run(CODE, env)
    assert first.returncode == -9
    assert first.stdout.split("\n")[:-1] == ["passed a 0", "passed b 0"]
    assert not spec.exists() and (tmp_path / "kill.fired").exists()
    second = _run(CODE, env)
    assert second.returncode == 0, second.stderr
