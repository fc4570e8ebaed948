"""The layering contract of DESIGN.md holds (``.importlinter``, checked with ``lint-imports``).

The second test proves the contract has teeth: on a skeleton package with
the same layout, an upward import and an import of the simulator are
reported as broken.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path, *, config: Path, pythonpath: Path | None = None) -> str:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    proc = subprocess.run(
        [str(LINT_IMPORTS), "--config", str(config), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return f"exit={proc.returncode}\n{proc.stdout}\n{proc.stderr}"


def test_the_code_keeps_every_layer_contract() -> None:
    out = lint_imports(ROOT, config=ROOT / ".importlinter")
    assert out.startswith("exit=0\n"), out
    assert "0 broken" in out, out
    for name in ("Controller layers", "Only the CLI reaches the simulator", "imports nothing"):
        assert name in out, out


def _skeleton(root: Path, modules: dict[str, str]) -> None:
    for dotted, source in modules.items():
        path = root.joinpath(*dotted.split("."))
        path.mkdir(parents=True, exist_ok=True)
        (path / "__init__.py").write_text(source)


def test_an_upward_import_and_a_sim_import_break_the_contract(tmp_path: Path) -> None:
    base = {
        f"liferaft.{p}": ""
        for p in ("cli", "api", "engine", "clouds", "store", "plugins", "links", "config", "errors")
    }
    base["liferaft"] = ""
    base["liferaft.sim"] = ""
    base["liferaft.testing"] = ""
    base["liferaft.engine"] = "import liferaft.api\n"  # the engine reaching up
    base["liferaft.store"] = "import liferaft.sim\n"  # a port importing the simulator
    _skeleton(tmp_path / "pkg", base)
    cfg = tmp_path / ".importlinter"
    cfg.write_text((ROOT / ".importlinter").read_text())
    out = lint_imports(tmp_path, config=cfg, pythonpath=tmp_path / "pkg")
    assert not out.startswith("exit=0\n"), out
    assert "liferaft.engine -> liferaft.api" in out, out
    assert "liferaft.store -> liferaft.sim" in out, out
    assert "2 broken" in out, out
