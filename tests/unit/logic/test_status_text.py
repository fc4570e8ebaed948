"""``liferaft logic status`` as text: a fallback, a miss and the decisions are spelled out."""

from __future__ import annotations

from typing import Any

from liferaft.cli.logic import render


def status(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "logic": "rpo-optimal",
        "active": "per-group-interval",
        "fell_back": True,
        "error": "ZeroDivisionError: division by zero",
        "drlogic_interval": 30.0,
        "max_protection_interval": 1800.0,
        "compliant": False,
        "worst_ratio": 1.25,
        "link": {
            "monitor": "simulator",
            "source": "simulator link east-west",
            "capacity_bps": 125e6,
            "app_traffic_bps": 12.5e6,
            "replication_bps": 1e6,
            "budget_bps": 115.625e6,
            "error": None,
        },
        "groups": [
            {"name": "db", "rpo_s": 750.0, "target_s": 600.0, "ratio": 1.25, "compliant": False,
             "recovery_point_s": 1.0, "in_flight": 1},
            {"name": "web", "rpo_s": 30.0, "target_s": 600.0, "ratio": 0.05, "compliant": True,
             "recovery_point_s": 2.0, "in_flight": 0},
        ],
        "decisions": {
            "at": 1000.0, "by": "per-group-interval", "ratio": 1.0,
            "max_concurrent_transfers": None, "applied_ceiling_bps": 50e6,
            "replication_ceiling_reason": "",
            "checkpoints": [{"group": "db", "group_id": "g1", "reason": "period 540 s is due",
                             "applied": "deferred: 2 transfers in flight, at most 2"}],
            "flow_rates": [],
            "misses": [{"group_id": "g1", "expected_ratio": 1.4, "reason": "link too small"}],
            "shaper": "tc", "shaper_error": "RetryLater: tc: exit 2",
        },
        "forced": [{"at": 900.0, "group": "web", "reason": "first checkpoint: the group has no recovery point"}],
    }  # fmt: skip
    return {**base, **kw}


def test_the_text_says_who_decided_who_misses_and_what_was_done() -> None:
    text = render(status())
    lines = text.splitlines()
    assert lines[0].startswith(
        "logic rpo-optimal -- FELL BACK to per-group-interval: ZeroDivisionError: division by zero"
    )
    assert "NOT ALL GROUPS WITHIN TARGET (worst RPO/target 1.25)" in lines[0]
    assert "capacity 1000.0 Mbit/s, applications 100.0 Mbit/s" in lines[1]
    assert any(
        line.startswith("db") and "12.5min" in line and "MISSES TARGET, 1 in flight" in line
        for line in lines
    )
    assert (
        "  checkpoint db: period 540 s is due -> deferred: 2 transfers in flight, at most 2"
        in lines
    )
    assert "  MISS g1: RPO/target 1.40: link too small" in lines
    assert "  shaper tc error: RetryLater: tc: exit 2" in lines
    assert lines[-1] == "forced at 900.0: web: first checkpoint: the group has no recovery point"


def test_before_the_first_decision() -> None:
    text = render(status(fell_back=False, active="rpo-optimal", decisions=None, groups=[],
                         compliant=True, worst_ratio=None, link=None, forced=[]))  # fmt: skip
    assert text.splitlines() == [
        "logic rpo-optimal; every 30s, forced after 30.0min; all groups within target",
        "no decision yet",
    ]


def test_the_copiers_applied_rate_is_shown_per_image_copy_flow() -> None:
    flows = [
        {"flow_id": "cp-1", "pace_bps": 2.5e6, "source": "decision",
         "detail": "decided by paced at 1000.0", "read_at": 1012.5, "sent_bytes": 3 << 20},
        {"flow_id": "cp-2", "pace_bps": None, "source": "unlimited",
         "detail": "no decision yet; no rate configured", "read_at": 5.0, "sent_bytes": 0},
        {"flow_id": "cp-3", "pace_bps": None, "source": None, "detail": None, "read_at": None,
         "sent_bytes": 0},
    ]  # fmt: skip
    s = status(image_copy={"published": None, "flows": flows})
    s["decisions"]["flow_rates"] = [
        {"flow_id": "cp-1", "carrier": "image-copy", "rate_bps": 1e6, "reason": "deadline",
         "applied": "published to the copier (read before every chunk)"},
    ]  # fmt: skip
    lines = render(s).splitlines()
    assert (
        "  flow cp-1 (image-copy): 8.0 Mbit/s: deadline -> "
        "published to the copier (read before every chunk)"
    ) in lines
    assert (
        "image copy cp-1: pacing at 20.0 Mbit/s (decision: decided by paced at 1000.0; "
        "read at 1012.5), 3145728 bytes sent"
    ) in lines
    assert (
        "image copy cp-2: pacing at no limit (unlimited: no decision yet; no rate configured; "
        "read at 5.0), 0 bytes sent"
    ) in lines
    assert "image copy cp-3: no chunk sent yet" in lines
