"""``liferaft recovery DATACENTER``: recover a failed site at this controller's site (disaster mode)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from .client import (
    CloudOpt,
    ConfigOpt,
    JsonOpt,
    TokenOpt,
    UrlOpt,
    connect,
    fail,
    handle_errors,
    output,
    progress,
)

SETTLED = {"done", "failed", "cancelled", "paused", "rolled_back", "rollback_failed"}


def render(run: dict[str, Any]) -> str:
    lines = [
        f"recovery {run['id'][:12]} of {run['protected_site']} at {run['recovery_site']}: {run['state']}"
    ]
    rep = run.get("report")
    if rep:
        lines.append(
            f"  RTO {rep['rto_s']:.1f}s: {rep['servers_recovered']} servers, "
            f"{rep['volumes_recovered']} volumes recovered and verified"
        )
    for t in run.get("timeline", []):
        lines.append(f"  {t['start_s']:8.1f}s → {t['end_s']:8.1f}s  {t['step']} {t['state']}")
    for name, err in (run.get("failed_steps") or {}).items():
        lines.append(f"  {name}: {err}")
    if run.get("error"):
        lines.append(f"  error: {run['error']}")
    return "\n".join(lines)


def recovery(
    datacenter: Annotated[str, typer.Argument(help="The failed site to recover here.")],
    declare_down: Annotated[
        str | None,
        typer.Option(
            "--declare-down",
            help="Declare SITE down (it can no longer run or write anything); must name DATACENTER.",
        ),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow the run until it settles.")] = True,
    url: UrlOpt = None,
    token: TokenOpt = None,
    cloud: CloudOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recover DATACENTER at this controller's site from its newest verified checkpoints."""
    with handle_errors():
        api = connect(url=url, token=token, cloud=cloud, config=config)
        run = api.post("/v1/recovery", {"datacenter": datacenter, "declare_down": declare_down})
        if wait:
            with progress(f"recovering {datacenter}", total=run["steps_total"]) as update:
                while run["state"] not in SETTLED:
                    time.sleep(0.5)  # polling a remote API in real time
                    run = api.get(f"/v1/recovery/runs/{run['id']}")
                    update(completed=run["steps_done"])
    output(run, as_json, render)
    if wait and run["state"] != "done":
        raise fail(f"recovery {run['id']} ended {run['state']}")
