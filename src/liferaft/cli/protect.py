"""``liferaft protect-vm|protect-volume``, ``group``, ``policy``, ``checkpoint``: protection from the CLI."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .client import handle_errors
from .options import Api, api_command

group_app = typer.Typer(help="Protection groups: servers and volumes protected together.")
policy_app = typer.Typer(help="Protection policies: RPO, retention, consistency, method.")
checkpoint_app = typer.Typer(help="Checkpoints: recovery points of the groups.")


def _group_line(g: dict[str, Any]) -> str:
    servers = ", ".join(m["name"] or m["cloud_id"] for m in g["servers"]) or "-"
    volumes = ", ".join(m["name"] or m["cloud_id"] for m in g["volumes"]) or "-"
    return (
        f"{g['name']}  ({g['site']} -> {g['recovery_site']}, policy {g['policy']})\n"
        f"  quiesce order: {servers}\n  volumes: {volumes}"
    )


@api_command
def protect_vm(
    api: Api,
    server: Annotated[str, typer.Argument(help="Server id at the controller's site.")],
    policy: Annotated[str, typer.Option(help="Policy name.")] = "default",
    volumes: Annotated[
        bool,
        typer.Option(
            "--volumes/--no-volumes",
            help="Protect the volumes attached to the server with it (the default).",
        ),
    ] = True,
) -> None:
    """Protect one server (ORBIT's protect_vm) and its attached volumes: a group of its own."""
    with handle_errors():
        g = api.client().post(
            "/v1/protect/servers", {"server": server, "policy": policy, "volumes": volumes}
        )
    api.output(g, _group_line)


@api_command
def protect_volume(
    api: Api,
    volume: Annotated[str, typer.Argument(help="Volume id at the controller's site.")],
    policy: Annotated[str, typer.Option(help="Policy name.")] = "default",
) -> None:
    """Protect one volume (ORBIT's protect_volume)."""
    with handle_errors():
        g = api.client().post("/v1/protect/volumes", {"volume": volume, "policy": policy})
    api.output(g, _group_line)


@group_app.command("create")
@api_command
def group_create(
    api: Api,
    name: str,
    policy: Annotated[str, typer.Option(help="Policy name.")] = "default",
) -> None:
    """Create an empty protection group."""
    with handle_errors():
        g = api.client().post("/v1/groups", {"name": name, "policy": policy})
    api.output(g, _group_line)


@group_app.command("add")
@api_command
def group_add(
    api: Api,
    group: str,
    resource: Annotated[str, typer.Argument(help="Server or volume id.")],
    volume: Annotated[bool, typer.Option("--volume", help="The id is a volume's.")] = False,
    tier: Annotated[int, typer.Option(help="Boot tier at recovery (lower first).")] = 0,
    rank: Annotated[int, typer.Option(help="Quiesce position (0: after the others).")] = 0,
) -> None:
    """Add a server (quiesced in the order added) or a volume (--volume) to a group."""
    body = {"kind": "volume" if volume else "server", "id": resource, "tier": tier, "rank": rank}
    with handle_errors():
        g = api.client().post(f"/v1/groups/{group}/members", body)
    api.output(g, _group_line)


@group_app.command("list")
@api_command
def group_list(api: Api) -> None:
    """The protection groups of the controller's site."""
    api.show("/v1/groups", lambda d: "\n".join(_group_line(g) for g in d["groups"]) or "no groups")


@group_app.command("show")
@api_command
def group_show(api: Api, group: str) -> None:
    """One group and its latest checkpoints."""
    with handle_errors():
        g = api.client().get(f"/v1/groups/{group}")

    def render(g: dict[str, Any]) -> str:
        cps = [
            f"  {c['id'][:12]} {c['state']} captured {c['captured_at']}" for c in g["checkpoints"]
        ]
        return _group_line(g) + "\n" + ("\n".join(cps) or "  no checkpoints")

    api.output(g, render)


def _policy_line(p: dict[str, Any]) -> str:
    return (
        f"{p['name']}: rpo {p['rpo_seconds']:g}s, every {p['interval_seconds']:g}s, keep "
        f"{p['retention_count']} / {p['retention_age_seconds']:g}s, {p['consistency']}, {p['method']}"
    )


@policy_app.command("list")
@api_command
def policy_list(api: Api) -> None:
    """Every policy (``default`` exists from the start)."""
    api.show("/v1/policies", lambda d: "\n".join(_policy_line(p) for p in d["policies"]))


@policy_app.command("show")
@api_command
def policy_show(api: Api, name: str) -> None:
    """One policy."""
    api.show(f"/v1/policies/{name}", _policy_line)


@policy_app.command("set")
@api_command
def policy_set(
    api: Api,
    name: str,
    rpo: Annotated[float, typer.Option("--rpo", help="RPO target, seconds.")],
    interval: Annotated[float, typer.Option(help="Seconds between checkpoints.")],
    retention_count: Annotated[int, typer.Option(help="Checkpoints kept.")] = 6,
    retention_age: Annotated[float, typer.Option(help="Seconds a checkpoint is kept.")] = 86400,
    consistency: Annotated[
        str, typer.Option(help="ordered-quiesce or crash-consistent.")
    ] = "ordered-quiesce",
    method: Annotated[
        str,
        typer.Option(
            help="snapshot-backup, image-copy or storage-replication (see docs/protection.md)."
        ),
    ] = "snapshot-backup",
) -> None:
    """Create or replace a policy."""
    body = {
        "rpo_seconds": rpo,
        "interval_seconds": interval,
        "retention_count": retention_count,
        "retention_age_seconds": retention_age,
        "consistency": consistency,
        "method": method,
    }
    with handle_errors():
        d = api.client().request("PUT", f"/v1/policies/{name}", json=body)
    api.output(d, _policy_line)


@checkpoint_app.command("list")
@api_command
def checkpoint_list(
    api: Api,
    group: Annotated[str | None, typer.Option(help="Only this group.")] = None,
) -> None:
    """Checkpoints, oldest first."""
    params = {"group": group} if group else {}
    with handle_errors():
        d = api.client().get("/v1/checkpoints", **params)

    def render(d: dict[str, Any]) -> str:
        return (
            "\n".join(
                f"{c['id'][:12]} group {c['group_id'][:12]} {c['state']:9} captured "
                f"{c['captured_at']} {c['consistency'] or ''}"
                for c in d["checkpoints"]
            )
            or "no checkpoints"
        )

    api.output(d, render)


def register(app: typer.Typer) -> None:
    app.command("protect-vm")(protect_vm)
    app.command("protect-volume")(protect_volume)
    app.add_typer(group_app, name="group")
    app.add_typer(policy_app, name="policy")
    app.add_typer(checkpoint_app, name="checkpoint")
