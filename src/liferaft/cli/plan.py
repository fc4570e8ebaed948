"""``liferaft plan check DATACENTER``: every problem a recovery of DATACENTER here would meet."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .client import fail, handle_errors
from .options import Api, api_command

app = typer.Typer(help="Recovery plans: check one before it is needed.", no_args_is_help=True)


def render(chk: dict[str, Any]) -> str:
    lines = [
        f"recovery plan of {chk['protected_site']} at {chk['recovery_site']}: "
        + ("ready" if chk["ok"] else f"{len(chk['problems'])} problem(s)")
    ]
    for g in chk["groups"]:
        lines.append(
            f"  group {g['group']}: checkpoint {g['checkpoint_id'][:12]} captured at "
            f"{g['captured_at']:.1f} ({g['servers']} servers, {g['volumes']} volumes)"
        )
    needs = chk.get("needs") or {}
    if needs:
        lines.append("  needs: " + ", ".join(f"{k} {v}" for k, v in needs.items()))
    for p in chk["problems"]:
        lines.append(f"  PROBLEM [{p['kind']}] {p['subject']}: {p['message']}")
    for p in chk["warnings"]:
        lines.append(f"  warning [{p['kind']}] {p['subject']}: {p['message']}")
    return "\n".join(lines)


@app.command("check")
@api_command
def check(
    api: Api,
    datacenter: Annotated[
        str, typer.Argument(help="The protected site a recovery here would recover.")
    ],
) -> None:
    """List every problem a recovery of DATACENTER at this controller's site would meet.

    Missing mappings; flavors, images, volume types or networks this site
    lacks; quotas and Placement capacity; manifests that do not verify.
    Exit status 1 when there is a problem (warnings alone: 0).
    """
    with handle_errors():
        chk = api.client().get(f"/v1/recovery/check/{datacenter}")
    api.output(chk, render)
    if not chk["ok"]:
        raise fail(f"the recovery plan of {datacenter} has {len(chk['problems'])} problem(s)")
