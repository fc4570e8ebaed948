"""``liferaft catalog rebuild``: this site's protection catalog from the signed manifests alone."""

from __future__ import annotations

from typing import Any

import typer

from .client import handle_errors
from .options import Api, api_command

app = typer.Typer(
    help="The protection catalog (groups, members, checkpoints).", no_args_is_help=True
)


def render(r: dict[str, Any]) -> str:
    lines = [
        f"catalog of {r['site']} rebuilt from {r['source']}'s object store "
        f"(container {r['container']}): {len(r['groups'])} groups, "
        f"{r['members_restored']} members and {r['checkpoints_restored']} checkpoints restored"
    ]
    for g in r["groups"]:
        lines.append(
            f"  {g['name']} (policy {g['policy']}): {g['checkpoints']} checkpoints, "
            f"{g['checkpoints_restored']} new"
        )
    for p in r["policies_restored"]:
        lines.append(f"  policy {p} restored")
    for x in r["skipped"]:
        lines.append(f"  skipped: {x}")
    for x in r["refused"]:
        lines.append(f"  refused: {x}")
    return "\n".join(lines)


@app.command("rebuild")
@api_command
def rebuild(api: Api) -> None:
    """Rebuild this site's groups, members and checkpoints from its recovery site's manifests.

    For a controller that lost its database: only the signed manifests in
    the recovery site's object store are read.  What the catalog has is kept,
    so running it again changes nothing.
    """
    with handle_errors():
        r = api.client().post("/v1/catalog/rebuild", {})
    api.output(r, render)
