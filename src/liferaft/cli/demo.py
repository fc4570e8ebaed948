"""``liferaft demo``: protect a VNF at east, lose east entirely, recover it at west, verify the data."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from .client import fail
from .options import JsonOpt


def render(r: dict[str, Any]) -> str:
    lines = [
        "",
        "Liferaft demo: east lost, VNF recovered at west",
        f"  servers recovered      {r['servers_recovered']}",
        f"  volumes recovered      {r['volumes_recovered']}",
        f"  RTO                    {r['rto_s']:.1f} s (request → every server ACTIVE and verified)",
        f"  data-loss window       {r['data_loss_s']:.1f} s (failure - newest canary in the restored volumes)",
        f"  data verified          {'yes' if r['data_verified'] else 'NO'}",
        f"  consistent             {'yes' if r['consistent'] else 'NO: ' + str(r['consistency_reason'])}",
        f"  wall time              {r['wall_s']:.0f} s",
        "  timeline (s after the recovery request):",
    ]
    for t in r["timeline"]:
        lines.append(f"    {t['start_s']:7.1f} → {t['end_s']:7.1f}  {t['step']}")
    if "api_url" in r:
        lines += [
            f"  api_url                {r['api_url']}",
            f"  clouds_yaml            {r['clouds_yaml']}",
        ]
    return "\n".join(lines)


def demo(
    as_json: JsonOpt = False,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the simulator and controllers running.")
    ] = False,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir", help="Where to keep everything (default: a temporary directory)."
        ),
    ] = None,
) -> None:
    """Protect a small VNF at east, take east down, recover it at west, verify it from its data."""
    from liferaft.demo.scenario import run_demo

    def say(msg: str) -> None:
        if not as_json:
            print(f"• {msg}", flush=True)
        else:
            print(f"demo: {msg}", file=sys.stderr, flush=True)

    base = state_dir or Path(tempfile.mkdtemp(prefix="liferaft-demo-"))
    try:
        result = run_demo(base, say, keep=keep)
    except (RuntimeError, OSError) as err:
        raise fail(f"demo failed: {err} (logs in {base})") from None
    if as_json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(render(result))
    if not (result["data_verified"] and result["consistent"]):
        raise typer.Exit(1)
