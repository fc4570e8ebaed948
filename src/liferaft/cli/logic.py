"""``liferaft logic status``: the DR-Logic as the controller runs it."""

from __future__ import annotations

from typing import Any

import typer

from .options import Api, api_command

app = typer.Typer(
    help="DR-Logic: RPO per group, compliance, the latest decisions.", no_args_is_help=True
)


def _mbps(bps: float | None) -> str:
    return "-" if bps is None else f"{bps * 8 / 1e6:.1f} Mbit/s"


def _dur(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.0f}s" if s < 120 else f"{s / 60:.1f}min"


def render(s: dict[str, Any]) -> str:
    """The status as text: logic, groups, decisions with reasons."""
    logic = s["logic"]
    head = f"logic {logic}"
    if s.get("fell_back"):
        head += f" -- FELL BACK to {s['active']}: {s.get('error')}"
    elif s.get("active") and s["active"] != logic:
        head += f" (decided by {s['active']})"
    worst = s.get("worst_ratio")
    head += (
        f"; every {_dur(s['drlogic_interval'])}, forced after {_dur(s['max_protection_interval'])}"
        f"; {'all groups within target' if s['compliant'] else 'NOT ALL GROUPS WITHIN TARGET'}"
        + (f" (worst RPO/target {worst:.2f})" if worst is not None else "")
    )
    lines = [head]
    link = s.get("link")
    if link:
        lines.append(
            f"link ({link['monitor']}: {link['source']}): capacity {_mbps(link['capacity_bps'])}, "
            f"applications {_mbps(link['app_traffic_bps'])}, replication "
            f"{_mbps(link['replication_bps'])}, budget {_mbps(link['budget_bps'])}"
            + (f"; monitor error: {link['error']}" if link.get("error") else "")
        )
    if s["groups"]:
        lines.append(f"{'group':<28} {'RPO':>9} {'target':>9} {'ratio':>6}  state")
    for g in s["groups"]:
        state = "ok" if g["compliant"] else "MISSES TARGET"
        if g["recovery_point_s"] is None:
            state = "no recovery point yet"
        if g["in_flight"]:
            state += f", {g['in_flight']} in flight"
        lines.append(
            f"{g['name'][:28]:<28} {_dur(g['rpo_s']):>9} {_dur(g['target_s']):>9} "
            f"{g['ratio']:>6.2f}  {state}"
        )
    d = s.get("decisions")
    if d:
        lines.append(
            f"latest decision at {d['at']:.1f} by {d['by']}: ratio {d['ratio']:.2f}, at most "
            f"{d['max_concurrent_transfers'] if d['max_concurrent_transfers'] is not None else 'any'}"
            f" transfers, replication ceiling {_mbps(d['applied_ceiling_bps'])}"
            + (f" ({d['replication_ceiling_reason']})" if d["replication_ceiling_reason"] else "")
        )
        for c in d["checkpoints"]:
            lines.append(
                f"  checkpoint {c['group'] or c['group_id']}: {c['reason']} -> {c['applied']}"
            )
        for f in d["flow_rates"]:
            lines.append(
                f"  flow {f['flow_id']} ({f['carrier']}): {_mbps(f['rate_bps'])}: {f['reason']}"
                + (f" -> {f['applied']}" if f.get("applied") else "")
            )
        for m in d["misses"]:
            lines.append(
                f"  MISS {m['group_id']}: RPO/target {m['expected_ratio']:.2f}: {m['reason']}"
            )
        if d.get("shaper_error"):
            lines.append(f"  shaper {d['shaper']} error: {d['shaper_error']}")
    else:
        lines.append("no decision yet")
    for f in (s.get("image_copy") or {}).get("flows", []):
        # What the copier applies: its pace as it read it before its latest chunk.
        if f["read_at"] is None:
            lines.append(f"image copy {f['flow_id']}: no chunk sent yet")
            continue
        pace = "no limit" if f["pace_bps"] is None else _mbps(f["pace_bps"])
        lines.append(
            f"image copy {f['flow_id']}: pacing at {pace} ({f['source']}: {f['detail']};"
            f" read at {f['read_at']:.1f}), {f['sent_bytes']} bytes sent"
        )
    for f in s.get("forced", [])[-5:]:
        lines.append(f"forced at {f['at']:.1f}: {f['group']}: {f['reason']}")
    return "\n".join(lines)


@app.command("status")
@api_command
def status(api: Api) -> None:
    """RPO per group, compliance, the latest decisions with reasons, the active logic."""
    api.show("/v1/logic/status", render)
