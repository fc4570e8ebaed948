"""``liferaft ha status|segments|hosts|events|maintenance|rejoin``: compute-host HA."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from .client import CloudOpt, ConfigOpt, JsonOpt, TokenOpt, UrlOpt, connect, handle_errors, output

app = typer.Typer(help="Compute-host HA: segments, hosts, events.", no_args_is_help=True)


def _status(s: dict[str, Any]) -> str:
    lines = [
        f"HA {'on' if s['enabled'] else 'off'}, {'leading' if s['leading'] else 'standby'}; "
        f"monitors {', '.join(s['monitors'])} (agreement: {s['agreement']})",
        "hosts: " + ", ".join(f"{k} {v}" for k, v in s["hosts"].items() if v),
    ]
    if s.get("breaker"):
        lines.append(f"BREAKER TRIPPED: {s['breaker']}")
    if s.get("control_plane_error"):
        lines.append(f"control plane unreachable: {s['control_plane_error']}")
    if s.get("silent"):
        lines.append(f"silent: {', '.join(s['silent'])}")
    if s.get("maintenance"):
        lines.append(f"maintenance: {', '.join(s['maintenance'])}")
    return "\n".join(lines)


def _segments(d: dict[str, Any]) -> str:
    return "\n".join(
        f"{s['name']} ({s['site']}): {s['recovery_method']}, hosts {', '.join(s['hosts'])}"
        + (f", reserved {', '.join(s['reserved_hosts'])}" if s["reserved_hosts"] else "")
        for s in d["segments"]
    )


def _hosts(d: dict[str, Any]) -> str:
    return "\n".join(
        f"{h['host']:<24} {h['segment']:<16} {h['state']:<12}"
        + (" maintenance" if h["maintenance"] else "")
        + (" silent" if h.get("silent") else "")
        + (" reserved" if h["in_pool"] else "")
        for h in d["hosts"]
    )


def _events(d: dict[str, Any]) -> str:
    return "\n".join(
        f"{e['id']:>6} {e['at']:.1f} {e['workflow_id'] or '-'} {e['step'] or ''} "
        f"{e['to_state'] or ''} {e['detail']}"
        for e in d["events"]
    )


def _show(
    path: str,
    render: Callable[[Any], str],
    url: str | None,
    token: str | None,
    cloud: str | None,
    config: Path | None,
    as_json: bool,
) -> None:
    """GET one read-only HA resource and print it (text or --json)."""
    with handle_errors():
        output(connect(url=url, token=token, cloud=cloud, config=config).get(path), as_json, render)


@app.command("status")
def status(
    url: UrlOpt = None,
    token: TokenOpt = None,
    cloud: CloudOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Monitors, breaker, silent hosts."""
    _show("/v1/ha/status", _status, url, token, cloud, config, as_json)


@app.command("segments")
def segments(
    url: UrlOpt = None,
    token: TokenOpt = None,
    cloud: CloudOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Failover segments."""
    _show("/v1/ha/segments", _segments, url, token, cloud, config, as_json)


@app.command("hosts")
def hosts(
    url: UrlOpt = None,
    token: TokenOpt = None,
    cloud: CloudOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Watched hosts and their lifecycle."""
    _show("/v1/ha/hosts", _hosts, url, token, cloud, config, as_json)


@app.command("events")
def events(
    after: Annotated[int, typer.Option(help="Only events after this id.")] = 0,
    url: UrlOpt = None,
    token: TokenOpt = None,
    cloud: CloudOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """HA events: failures, fences, evacuations, notifications, breaker."""
    with handle_errors():
        api = connect(url=url, token=token, cloud=cloud, config=config)
        output(api.get("/v1/ha/events", after=after), as_json, _events)


@app.command("maintenance")
def maintenance(
    host: Annotated[str, typer.Argument(help="The compute host.")],
    off: Annotated[bool, typer.Option("--off", help="Take the host out of maintenance.")] = False,
    reason: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    cloud: CloudOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Put HOST in maintenance (no recovery while set), or take it out with --off."""
    with handle_errors():
        api = connect(url=url, token=token, cloud=cloud, config=config)
        row = api.post(f"/v1/ha/hosts/{host}/maintenance", {"on": not off, "reason": reason})
        output(
            row,
            as_json,
            lambda r: f"{r['host']}: maintenance {'on' if r['maintenance'] else 'off'}",
        )


@app.command("rejoin")
def rejoin(
    host: Annotated[str, typer.Argument(help="The repaired compute host.")],
    url: UrlOpt = None,
    token: TokenOpt = None,
    cloud: CloudOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rejoin a repaired HOST: leftovers checked, service unforced and enabled."""
    with handle_errors():
        api = connect(url=url, token=token, cloud=cloud, config=config)
        output(
            api.post(f"/v1/ha/hosts/{host}/rejoin"),
            as_json,
            lambda r: f"{host}: rejoining ({r['workflow_id']})",
        )
