"""Pure parts of the simulated compute service: status mapping, host filters and weighers."""

from __future__ import annotations

from typing import Any

import pytest

from liferaft.sim.compute.records import Flavor, Host, ServerGroup, server_status
from liferaft.sim.compute.scheduler import NoValidHost, demand, select_host


class _Faults:
    down = False


class _Site:
    faults = _Faults()


def host(name: str, **kw: Any) -> Host:
    args: dict[str, Any] = {
        "site": _Site(),
        "name": name,
        "vcpus": 4,
        "ram_mb": 8192,
        "disk_gb": 100,
        "max_builds": 2,
        "reserved": False,
        "index": 1,
        "service_id": name,
        "hypervisor_id": name,
    }
    args.update(kw)
    return Host(**args)


TINY = (1, 512, 1)


@pytest.mark.parametrize(
    "vm, task, status",
    [
        ("building", "scheduling", "BUILD"),
        ("active", None, "ACTIVE"),
        ("active", "powering-off", "ACTIVE"),
        ("stopped", "powering-on", "SHUTOFF"),
        ("active", "rebuilding", "REBUILD"),
        ("stopped", "rebuilding", "REBUILD"),
        ("active", "rebooting_hard", "HARD_REBOOT"),
        ("stopped", "rebooting_hard", "SHUTOFF"),
        ("error", None, "ERROR"),
    ],
)
def test_status_follows_vm_and_task_state(vm: str, task: str | None, status: str) -> None:
    assert server_status(vm, task) == status


def test_spread_by_free_ram_and_skip_down_or_disabled_hosts() -> None:
    a, b, c = host("a"), host("b"), host("c")
    a.ram_used = 4096
    assert select_host([a, b], 0.0, TINY).name == "b"
    b.disabled = True
    assert select_host([a, b], 0.0, TINY).name == "a"
    a.forced_down = True
    c.powered_on, c.died_at = False, -61.0  # no heartbeat for over a minute
    with pytest.raises(NoValidHost):
        select_host([a, b, c], 0.0, TINY)
    c.died_at = -30.0  # Nova still believes a host that died 30 s ago is up
    assert select_host([c], 0.0, TINY).name == "c"


def test_capacity_uses_allocation_ratios() -> None:
    h = host("a")
    assert h.fits(16, 8192, 100)  # 4 vCPUs x 4.0
    assert not h.fits(17, 512, 1)
    assert not h.fits(1, 8193, 1)


def test_group_policies() -> None:
    a, b = host("a"), host("b")
    anti = ServerGroup("g", "g", "anti-affinity", {}, "p", "u")
    assert select_host([a, b], 0.0, TINY, group=anti, group_hosts={"a": 1}).name == "b"
    with pytest.raises(NoValidHost):
        select_host([a, b], 0.0, TINY, group=anti, group_hosts={"a": 1, "b": 1})
    anti.rules = {"max_server_per_host": 2}
    assert select_host([a, b], 0.0, TINY, group=anti, group_hosts={"a": 1, "b": 2}).name == "a"
    aff = ServerGroup("g", "g", "affinity", {}, "p", "u")
    b.ram_used = 0
    a.ram_used = 4096  # the spread weigher would pick b
    assert select_host([a, b], 0.0, TINY, group=aff, group_hosts={"a": 1}).name == "a"
    soft = ServerGroup("g", "g", "soft-anti-affinity", {}, "p", "u")
    assert select_host([a, b], 0.0, TINY, group=soft, group_hosts={"b": 3, "a": 1}).name == "a"


def test_forced_host_skips_filters_but_needs_room() -> None:
    a = host("a", disabled=True)
    assert select_host([a], 0.0, TINY, requested="a", force=True).name == "a"
    with pytest.raises(NoValidHost):
        select_host([a], 0.0, (1, 99999, 1), requested="a", force=True)


def test_volume_backed_servers_claim_no_root_disk() -> None:
    f = Flavor("1", "m1.small", 1, 2048, 20, ephemeral_gb=5)
    assert demand(f, volume_backed=False) == (1, 2048, 25)
    assert demand(f, volume_backed=True) == (1, 2048, 5)
