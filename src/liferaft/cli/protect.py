"""``liferaft protect-vm|protect-volume``, ``group``, ``policy``, ``checkpoint``: protection from the CLI."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .client import (
    CloudOpt,
    ConfigOpt,
    JsonOpt,
    TokenOpt,
    UrlOpt,
    connect,
    handle_errors,
    output,
)

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


def protect_vm(
    server: Annotated[str, typer.Argument(help="Server id at the controller's site.")],
    policy: Annotated[str, typer.Option(help="Policy name.")] = "default",
    volumes: Annotated[
        bool,
        typer.Option(
            "--volumes/--no-volumes",
            help="Protect the volumes attached to the server with it (the default).",
        ),
    ] = True,
    url: UrlOpt = None,
    token: TokenOpt = None,
    cloud: CloudOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Protect one server (ORBIT's protect_vm) and its attached volumes: a group of its own."""
    with handle_errors():
        g = connect(url=url, token=token, cloud=cloud, config=config).post(
            "/v1/protect/servers", {"server": server, "policy": policy, "volumes": volumes}
        )
    output(g, as_json, _group_line)


def protect_volume(
    volume: Annotated[str, typer.Argument(help="Volume id at the controller's site.")],
    policy: Annotated[str, typer.Option(help="Policy name.")] = "default",
    url: UrlOpt = None,
    token: TokenOpt = None,
    cloud: CloudOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Protect one volume (ORBIT's protect_volume)."""
    with handle_errors():
        g = connect(url=url, token=token, cloud=cloud, config=config).post(
            "/v1/protect/volumes", {"volume": volume, "policy": policy}
        )
    output(g, as_json, _group_line)


@group_app.command("create")
def group_create(
    name: str,
    policy: Annotated[str, typer.Option(help="Policy name.")] = "default",
    url: UrlOpt = None,
    token: TokenOpt = None,
    cloud: CloudOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an empty protection group."""
    with handle_errors():
        g = connect(url=url, token=token, cloud=cloud, config=config).post(
            "/v1/groups", {"name": name, "policy": policy}
        )
    output(g, as_json, _group_line)


@group_app.command("add")
def group_add(
    group: str,
    resource: Annotated[str, typer.Argument(help="Server or volume id.")],
    volume: Annotated[bool, typer.Option("--volume", help="The id is a volume's.")] = False,
    tier: Annotated[int, typer.Option(help="Boot tier at recovery (lower first).")] = 0,
    rank: Annotated[int, typer.Option(help="Quiesce position (0: after the others).")] = 0,
    url: UrlOpt = None,
    token: TokenOpt = None,
    cloud: CloudOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a server (quiesced in the order added) or a volume (--volume) to a group."""
    body = {"kind": "volume" if volume else "server", "id": resource, "tier": tier, "rank": rank}
    with handle_errors():
        g = connect(url=url, token=token, cloud=cloud, config=config).post(
            f"/v1/groups/{group}/members", body
        )
    output(g, as_json, _group_line)


@group_app.command("list")
def group_list(
    url: UrlOpt = None,
    token: TokenOpt = None,
    cloud: CloudOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The protection groups of the controller's site."""
    with handle_errors():
        d = connect(url=url, token=token, cloud=cloud, config=config).get("/v1/groups")
    output(d, as_json, lambda d: "\n".join(_group_line(g) for g in d["groups"]) or "no groups")


@group_app.command("show")
def group_show(
    group: str,
    url: UrlOpt = None,
    token: TokenOpt = None,
    cloud: CloudOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One group and its latest checkpoints."""
    with handle_errors():
        g = connect(url=url, token=token, cloud=cloud, config=config).get(f"/v1/groups/{group}")

    def render(g: dict[str, Any]) -> str:
        cps = [
            f"  {c['id'][:12]} {c['state']} captured {c['captured_at']}" for c in g["checkpoints"]
        ]
        return _group_line(g) + "\n" + ("\n".join(cps) or "  no checkpoints")

    output(g, as_json, render)


def _policy_line(p: dict[str, Any]) -> str:
    return (
        f"{p['name']}: rpo {p['rpo_seconds']:g}s, every {p['interval_seconds']:g}s, keep "
        f"{p['retention_count']} / {p['retention_age_seconds']:g}s, {p['consistency']}, {p['method']}"
    )


@policy_app.command("list")
def policy_list(
    url: UrlOpt = None,
    token: TokenOpt = None,
    cloud: CloudOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every policy (``default`` exists from the start)."""
    with handle_errors():
        d = connect(url=url, token=token, cloud=cloud, config=config).get("/v1/policies")
    output(d, as_json, lambda d: "\n".join(_policy_line(p) for p in d["policies"]))


@policy_app.command("show")
def policy_show(
    name: str,
    url: UrlOpt = None,
    token: TokenOpt = None,
    cloud: CloudOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One policy."""
    with handle_errors():
        d = connect(url=url, token=token, cloud=cloud, config=config).get(f"/v1/policies/{name}")
    output(d, as_json, _policy_line)


@policy_app.command("set")
def policy_set(
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
    url: UrlOpt = None,
    token: TokenOpt = None,
    cloud: CloudOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
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
        d = connect(url=url, token=token, cloud=cloud, config=config).request(
            "PUT", f"/v1/policies/{name}", json=body
        )
    output(d, as_json, _policy_line)


@checkpoint_app.command("list")
def checkpoint_list(
    group: Annotated[str | None, typer.Option(help="Only this group.")] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    cloud: CloudOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Checkpoints, oldest first."""
    params = {"group": group} if group else {}
    with handle_errors():
        d = connect(url=url, token=token, cloud=cloud, config=config).get(
            "/v1/checkpoints", **params
        )

    def render(d: dict[str, Any]) -> str:
        return (
            "\n".join(
                f"{c['id'][:12]} group {c['group_id'][:12]} {c['state']:9} captured "
                f"{c['captured_at']} {c['consistency'] or ''}"
                for c in d["checkpoints"]
            )
            or "no checkpoints"
        )

    output(d, as_json, render)


def register(app: typer.Typer) -> None:
    app.command("protect-vm")(protect_vm)
    app.command("protect-volume")(protect_volume)
    app.add_typer(group_app, name="group")
    app.add_typer(policy_app, name="policy")
    app.add_typer(checkpoint_app, name="checkpoint")
