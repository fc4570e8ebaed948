"""``liferaft ha status|segments|hosts|events|maintenance|rejoin``: compute-host HA."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .client import handle_errors
from .options import Api, api_command

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


@app.command("status")
@api_command
def status(api: Api) -> None:
    """Monitors, breaker, silent hosts."""
    api.show("/v1/ha/status", _status)


@app.command("segments")
@api_command
def segments(api: Api) -> None:
    """Failover segments."""
    api.show("/v1/ha/segments", _segments)


@app.command("hosts")
@api_command
def hosts(api: Api) -> None:
    """Watched hosts and their lifecycle."""
    api.show("/v1/ha/hosts", _hosts)


@app.command("events")
@api_command
def events(
    api: Api,
    after: Annotated[int, typer.Option(help="Only events after this id.")] = 0,
) -> None:
    """HA events: failures, fences, evacuations, notifications, breaker."""
    api.show("/v1/ha/events", _events, after=after)


@app.command("maintenance")
@api_command
def maintenance(
    api: Api,
    host: Annotated[str, typer.Argument(help="The compute host.")],
    off: Annotated[bool, typer.Option("--off", help="Take the host out of maintenance.")] = False,
    reason: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
) -> None:
    """Put HOST in maintenance (no recovery while set), or take it out with --off."""
    with handle_errors():
        client = api.client()
        row = client.post(f"/v1/ha/hosts/{host}/maintenance", {"on": not off, "reason": reason})
        api.output(
            row,
            lambda r: f"{r['host']}: maintenance {'on' if r['maintenance'] else 'off'}",
        )


@app.command("rejoin")
@api_command
def rejoin(
    api: Api,
    host: Annotated[str, typer.Argument(help="The repaired compute host.")],
) -> None:
    """Rejoin a repaired HOST: leftovers checked, service unforced and enabled."""
    with handle_errors():
        client = api.client()
        api.output(
            client.post(f"/v1/ha/hosts/{host}/rejoin"),
            lambda r: f"{host}: rejoining ({r['workflow_id']})",
        )
