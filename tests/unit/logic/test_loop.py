"""The DR-Logic loop on a real catalog (SQLite) with a manual clock and recording ports.

Checkpoints are "submitted" to a recorder; the test plays the checkpoint
workflow by marking them captured and complete. The functional test
(tests/functional/test_drlogic.py) runs the same loop in ``liferaft serve``
against the simulator.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from liferaft import plugins
from liferaft.config.model import DrLogicSettings
from liferaft.engine.clock import ManualClock
from liferaft.errors import PluginError, RetryLater
from liferaft.links.port import LinkSample, ShapeOrder
from liferaft.logic.contract import CheckpointOrder, Decisions, FlowRate, Miss, State
from liferaft.logic.loop import LogicLoop, make_logic
from liferaft.protection.catalog import Catalog
from liferaft.protection.checkpoint import ProtectionDeps
from liferaft.protection.model import Group, Member, Policy
from liferaft.protection.service import ProtectionService
from liferaft.store import Store, sqlite_url

T0 = 1_000_000.0


class Protection(ProtectionService):
    """The real service; a checkpoint is in flight while its row is pending (no workflow engine)."""

    def in_flight(self, g: Group) -> bool:
        return bool(self.catalog.list_checkpoints(group_id=g.id, states=("pending",)))


class Monitor:
    name = "fake"
    capabilities = frozenset({"capacity"})

    def __init__(self) -> None:
        self.fail = False

    def sample(self) -> LinkSample:
        if self.fail:
            raise RetryLater("router unreachable")
        return LinkSample(10e6, 4e6, 1e6, "fake")

    def close(self) -> None:
        pass


class Shaper:
    name = "fake"
    capabilities = frozenset({"ceiling"})

    def __init__(self) -> None:
        self.orders: list[ShapeOrder] = []

    def apply(self, order: ShapeOrder) -> list[str]:
        self.orders.append(order)
        return [f"ceiling {order.ceiling_bps}"]

    def close(self) -> None:
        pass


class Scripted:
    """A logic returning what the test sets; records the states it saw."""

    name = "scripted"
    capabilities = frozenset({"checkpoint-schedule", "rate-control"})

    def __init__(self) -> None:
        self.next = Decisions()
        self.states: list[State] = []
        self.raise_with: Exception | None = None

    def decide(self, state: State) -> Decisions:
        self.states.append(state)
        if self.raise_with is not None:
            raise self.raise_with
        return self.next


class World:
    def __init__(self, tmp: Path, **settings: Any) -> None:
        self.clock = ManualClock(T0)
        self.store = Store(sqlite_url(tmp))
        self.catalog = Catalog(self.store)
        self.catalog.set_policy(
            Policy(
                "p",
                rpo_seconds=600,
                interval_seconds=600,
                retention_count=2,
                retention_age_seconds=1e6,
            )
        )
        deps = ProtectionDeps(
            site="east",
            clouds={},
            catalog=self.catalog,
            key=b"k" * 16,
            container="c",
            quiescer=None,
            clock=self.clock,
        )
        self.protection = Protection(deps, self.store, recovery_site="west")
        self.settings = DrLogicSettings(**settings)
        self.monitor, self.shaper, self.logic = Monitor(), Shaper(), Scripted()
        self.loop = LogicLoop(
            self.settings,
            protection=self.protection,
            monitor=self.monitor,
            shaper=self.shaper,
            logic=self.logic,
        )
        self.submitted: list[tuple[str, dict[str, Any], str]] = []

    def submit(self, kind: str, params: dict[str, Any], wid: str) -> None:
        self.submitted.append((kind, params, wid))

    def group(self, name: str) -> Group:
        g = self.protection.create_group(name, policy="p")
        return self.catalog.add_member(
            g, Member("east", "volume", f"vol-{name}", name, ""), now=self.clock.now()
        )

    def step(self) -> list[str]:
        return [c.group_id for c in self.loop.step(self.submit)]

    def land(self, group: Group, *, objects: int = 3, overhead: float = 10.0) -> None:
        """Every pending checkpoint of the group captured (after ``overhead``) and landed now."""
        for c in self.catalog.list_checkpoints(group_id=group.id, states=("pending",)):
            self.catalog.update_checkpoint(
                c.id,
                state="complete",
                captured_at=c.requested_at + overhead,
                completed_at=self.clock.now(),
                volumes={"v": {"backup_id": "b", "object_count": objects}},
            )


@pytest.fixture
def w(tmp_path: Path) -> World:
    return World(
        tmp_path,
        drlogic_interval=30,
        max_protection_interval=1800,
        drlogic_clean_up_interval=3600,
        backup_object_bytes=1000,
    )


def test_first_checkpoint_is_forced_then_the_logic_decides_with_the_catalog_state(w: World) -> None:
    a, b = w.group("a"), w.group("b")
    assert sorted(w.step()) == sorted([a.id, b.id])  # no recovery point: forced at once
    st = w.loop.status()
    assert [f["reason"] for f in st["forced"]] == [
        "first checkpoint: the group has no recovery point"
    ] * 2
    w.clock.advance(60)
    w.land(a)
    w.land(b)
    w.clock.advance(40)
    w.logic.next = Decisions(
        checkpoints=(CheckpointOrder(a.id, "a is due"),),
        replication_ceiling_bps=2e6,
        replication_ceiling_reason="leave room",
        flow_rates=(FlowRate("f1", "volume-backup", 5e5, "land by deadline"),),
        ratio=1.3,
        misses=(Miss(b.id, 1.3, "link too small"),),
    )
    assert w.step() == [a.id]
    state = w.logic.states[-1]
    ga = next(g for g in state.groups if g.group_id == a.id)
    assert ga.target_s == 600 and ga.recovery_point_s == T0 + 10 and ga.overhead_s == 10
    assert ga.history[-1].bytes == 2 * 1000  # two data objects (one is the metadata) x size
    assert ga.history[-1].completed_s == T0 + 60
    assert state.link.capacity_bps == 10e6 and state.link.app_traffic_bps == 4e6
    assert state.tick_s == 30
    # The ceiling applied is the logic's, within the budget (10e6 - 0.75 * 4e6 = 7e6).
    assert w.shaper.orders[-1].ceiling_bps == 2e6
    assert w.shaper.orders[-1].guaranteed_bps == (("f1", 5e5),)
    d = w.loop.status()["decisions"]
    assert d["by"] == "scripted" and d["checkpoints"][0]["reason"] == "a is due"
    assert d["checkpoints"][0]["applied"].startswith("started checkpoint")
    assert d["misses"][0]["reason"] == "link too small" and d["ratio"] == 1.3
    # Fed back at the next decision.
    w.clock.advance(30)
    w.step()
    assert w.logic.states[-1].previous_ratio == 1.3


def test_concurrency_and_in_flight_are_respected_and_the_ceiling_never_exceeds_the_budget(
    w: World,
) -> None:
    gs = [w.group(n) for n in "abc"]
    w.step()
    w.clock.advance(30)
    for g in gs:
        w.land(g)
    w.logic.next = Decisions(
        checkpoints=tuple(CheckpointOrder(g.id, "now") for g in gs),
        max_concurrent_transfers=2,
        replication_ceiling_bps=1e9,
    )
    assert w.step() == [gs[0].id, gs[1].id]
    applied = [c["applied"] for c in w.loop.status()["decisions"]["checkpoints"]]
    assert applied[2] == "deferred: 2 transfers in flight, at most 2"
    assert w.shaper.orders[-1].ceiling_bps == pytest.approx(7e6)  # the budget, not 1e9
    w.clock.advance(30)
    assert w.step() == []  # two still in flight
    assert "ignored: a checkpoint or clean-up is in flight" in [
        c["applied"] for c in w.loop.status()["decisions"]["checkpoints"]
    ]
    w.land(gs[0])
    w.clock.advance(30)
    assert w.step() == [gs[0].id]  # one in flight, one more allowed; c still waits


def test_the_logic_runs_every_drlogic_interval_only(w: World) -> None:
    w.group("a")
    w.step()
    n = len(w.logic.states)
    w.clock.advance(10)
    w.step()
    w.clock.advance(10)
    w.step()
    assert len(w.logic.states) == n
    w.clock.advance(10)
    w.step()
    assert len(w.logic.states) == n + 1


def test_a_group_is_forced_before_max_protection_interval_and_by_its_policy(
    tmp_path: Path,
) -> None:
    w = World(tmp_path, drlogic_interval=30, max_protection_interval=300)
    a = w.group("a")
    w.step()
    w.clock.advance(20)
    w.land(a)
    w.clock.advance(249)  # 269 s since the request: not yet
    assert w.step() == []
    w.clock.advance(1)  # 270 = 300 - one drlogic_interval: the next decision may be too late
    assert w.step() == [a.id]
    assert "max_protection_interval" in w.loop.status()["forced"][-1]["reason"]


def test_a_logic_that_raises_is_logged_and_per_group_interval_decides(
    w: World, caplog: pytest.LogCaptureFixture
) -> None:
    a = w.group("a")
    w.step()
    w.clock.advance(30)
    w.land(a, objects=10_001)  # 1e7 bytes over 10 s: per-group-interval's period is 516 s
    w.logic.raise_with = ZeroDivisionError("division by zero")
    w.clock.advance(500)  # T0 + 530: that period is due, the policy's 600 s is not
    with caplog.at_level(logging.ERROR, logger="liferaft.logic.loop"):
        started = w.step()
    assert started == [a.id]
    assert "DR-Logic 'scripted' raised ZeroDivisionError: division by zero" in caplog.text
    assert "falls back to per-group-interval" in caplog.text
    st = w.loop.status()
    assert st["fell_back"] is True and st["active"] == "per-group-interval"
    assert st["error"] == "ZeroDivisionError: division by zero"
    assert st["decisions"]["by"] == "per-group-interval"
    assert "period" in st["decisions"]["checkpoints"][0]["reason"]
    # Protection goes on; once the logic answers again it is back in charge.
    w.logic.raise_with = None
    w.logic.next = Decisions()
    w.clock.advance(30)
    w.step()
    st = w.loop.status()
    assert st["fell_back"] is False and st["active"] == "scripted" and st["error"] is None


def test_a_monitor_that_fails_keeps_the_last_sample_and_says_so(w: World) -> None:
    w.group("a")
    w.step()
    w.monitor.fail = True
    w.clock.advance(30)
    w.step()
    link = w.loop.status()["link"]
    assert link["capacity_bps"] == 10e6 and "router unreachable" in link["error"]


def test_status_reports_rpo_and_compliance_per_group(w: World) -> None:
    a, _b = w.group("a"), w.group("b")
    w.step()
    w.clock.advance(30)
    w.land(a)  # captured at T0 + 10
    w.clock.advance(600)
    st = w.loop.status()
    by = {g["name"]: g for g in st["groups"]}
    assert by["a"]["rpo_s"] == pytest.approx(620) and by["a"]["compliant"] is False
    assert by["a"]["ratio"] == pytest.approx(620 / 600)
    assert by["b"]["recovery_point_s"] is None and by["b"]["in_flight"] == 1
    assert st["compliant"] is False and st["worst_ratio"] >= by["a"]["ratio"]


def test_clean_up_runs_every_interval_for_groups_with_something_to_prune(w: World) -> None:
    a = w.group("a")
    for _ in range(4):  # four checkpoints, retention_count 2: two may go
        w.protection.start_checkpoint(a, w.submit)
        w.clock.advance(30)
        w.land(a)
    w.submitted.clear()
    w.step()  # the first pass cleans up
    kinds = [k for k, _p, _w in w.submitted]
    assert "cleanup" in kinds
    (params,) = [p for k, p, _w in w.submitted if k == "cleanup"]
    assert params == {"group_id": a.id, "policy": "p", "site": "east", "checkpoint_id": ""}
    assert w.loop.status()["cleanups"][0]["group"] == "a"


def test_an_unknown_logic_driver_names_the_known_logics() -> None:
    with pytest.raises(PluginError) as e:
        make_logic("mpc-typo", plugins.create)
    msg = str(e.value)
    assert "no logic driver named 'mpc-typo'" in msg
    for name in ("fixed-interval", "per-group-interval", "rpo-optimal"):
        assert name in msg


def test_every_builtin_logic_runs_in_the_loop(tmp_path: Path) -> None:
    for i, name in enumerate(("fixed-interval", "per-group-interval", "rpo-optimal")):
        w = World(tmp_path / str(i))
        w.loop.logic = make_logic(name, plugins.create)
        a = w.group("a")
        w.step()
        w.clock.advance(30)
        w.land(a)
        for _ in range(40):
            w.clock.advance(30)
            w.step()
            w.land(a)
        st = w.loop.status()
        assert st["fell_back"] is False and st["active"] == name, st
        assert len(w.catalog.list_checkpoints(group_id=a.id)) >= 2


def test_an_image_copy_group_is_carried_by_liferaft_and_sized_by_the_bytes_it_sent(
    w: World,
) -> None:
    w.catalog.set_policy(
        Policy("ic", rpo_seconds=600, interval_seconds=600, retention_count=2,
               retention_age_seconds=1e6, consistency="crash-consistent", method="image-copy")
    )  # fmt: skip
    g = w.catalog.add_member(
        w.protection.create_group("ic", policy="ic"),
        Member("east", "volume", "vol-ic", "ic", ""),
        now=w.clock.now(),
    )
    w.step()
    w.clock.advance(30)
    for c in w.catalog.list_checkpoints(group_id=g.id, states=("pending",)):
        w.catalog.update_checkpoint(
            c.id, state="complete", captured_at=c.requested_at + 5, completed_at=w.clock.now(),
            volumes={"vol-ic": {"method": "image-copy", "size": 1 << 30, "chunks": 1024,
                                "sent_bytes": 3 << 20, "sent_bytes_last_attempt": 3 << 20}},
        )  # fmt: skip
    w.protection.start_checkpoint(g, w.submit)  # in flight at the next decision
    w.logic.next = Decisions(
        flow_rates=(FlowRate("x", "image-copy", 1e6, "copier"),),
    )
    w.clock.advance(30)
    w.step()
    state = w.logic.states[-1]
    (gs,) = state.groups
    assert gs.carrier == "image-copy" and gs.history[-1].bytes == 3 << 20
    assert [t.carrier for t in state.transfers] == ["image-copy"]
    # The shaper guarantees only the flows it shapes (the backup service's).
    assert w.shaper.orders[-1].guaranteed_bps == ()


def test_image_copy_rates_are_published_to_the_copier_and_shown_as_applied(w: World) -> None:
    """The loop publishes image-copy guarantees and their part of the ceiling; the copier's
    pacer for that checkpoint reads them, and the status shows the pace it applies."""
    w.catalog.set_policy(
        Policy("ic", rpo_seconds=600, interval_seconds=600, retention_count=2,
               retention_age_seconds=1e6, consistency="crash-consistent", method="image-copy")
    )  # fmt: skip
    g = w.catalog.add_member(
        w.protection.create_group("ic", policy="ic"),
        Member("east", "volume", "vol-ic", "ic", ""),
        now=w.clock.now(),
    )
    (cp,) = w.loop.step(w.submit)  # forced: the first checkpoint; no decision for it yet
    w.clock.advance(30)
    w.logic.next = Decisions(
        flow_rates=(
            FlowRate(cp.id, "image-copy", 1e6, "land by the deadline"),
            FlowRate("backup-flow", "volume-backup", 2e6, "the backup's share"),
        ),
        replication_ceiling_bps=5e6,
        replication_ceiling_reason="leave room",
    )
    w.step()
    # The ceiling (5e6, within the 7e6 budget) less the backup flow's guarantee is the copier's.
    d = w.loop.status()["decisions"]
    assert d["image_copy_ceiling_bps"] == 3e6
    assert [f["applied"] for f in d["flow_rates"]] == [
        "published to the copier (read before every chunk)",
        "sent to the link shaper fake",
    ]
    # The only image-copy flow in flight: its guarantee plus all the spare (3e6 - 1e6).
    pacer = w.protection.deps.rates.pacer(cp.id, w.clock, None)
    assert pacer.board.rate(cp.id, w.clock.now(), None).bps == 3e6
    asyncio.run(pacer.take(1000))
    (flow,) = w.loop.status()["image_copy"]["flows"]
    assert flow["flow_id"] == cp.id and flow["pace_bps"] == 3e6 and flow["source"] == "decision"
    assert flow["guaranteed_bps"] == 1e6 and flow["sent_bytes"] == 1000
    assert flow["detail"] == f"decided by scripted at {T0 + 30:.1f}"
    assert g.id in {c.group_id for c in w.catalog.list_checkpoints(states=("pending",))}


def test_a_published_rate_stays_valid_for_the_spacing_of_the_decisions(tmp_path: Path) -> None:
    """With ticks further apart than drlogic_interval, a decision lasts until the next one."""
    w = World(tmp_path, drlogic_interval=2, max_protection_interval=1800)
    w.logic.next = Decisions(replication_ceiling_bps=5e5)
    w.step()
    w.clock.advance(10)  # the next pass (a 10 s tick) decides again
    w.step()
    board = w.protection.deps.rates
    p = board.published()
    assert p is not None and p.at == T0 + 10
    # Valid 2.5 spacings of 10 s (not 2.5 intervals of 2 s): no fallback between the ticks.
    assert board.rate("cp", T0 + 10 + 24.9, 1.0).source == "decision"
    assert board.rate("cp", T0 + 10 + 25.1, 1.0).source == "configured"
