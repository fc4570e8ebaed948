"""The critical-path bound of a recovery plan, on small plans checked by hand."""

from __future__ import annotations

import pytest

from liferaft.recovery.critical_path import (
    CloudLimits,
    ServerNeed,
    bound,
    makespan_lower_bound,
    needs_from_params,
)

LIM = CloudLimits(
    api=0.05, port=0.5, restore_base=20.0, restore_mb_s=200.0, boot=30.0, attach=3.0, hosts=1
)
R1 = 20.0 + 1024 / 200  # one 1 GB restore: 25.12 s
R10 = 20.0 + 10 * 1024 / 200  # one 10 GB restore: 71.2 s


def test_makespan_equal_jobs_is_exact() -> None:
    assert makespan_lower_bound([10.0] * 7, 3) == pytest.approx(30.0)  # ceil(7/3) rounds
    assert makespan_lower_bound([10.0] * 6, 3) == pytest.approx(20.0)


def test_makespan_mixed_jobs() -> None:
    # 3,3,2,2,2 on two machines: sum/2 = 6, and {3,3},{2,2,2} reaches it.
    assert makespan_lower_bound([2, 3, 2, 3, 2], 2) == pytest.approx(6.0)
    # One long job dominates.
    assert makespan_lower_bound([100, 1, 1], 4) == pytest.approx(100.0)
    assert makespan_lower_bound([], 4) == 0.0
    with pytest.raises(ValueError):
        makespan_lower_bound([1.0], 0)


def test_one_server_is_its_chain() -> None:
    b = bound([ServerNeed(tier=0, boot_volume_gb=1)], LIM)
    # capacity check, import + restore calls, restore, create call, boot
    assert b.bound_s == pytest.approx(0.05 + 0.1 + R1 + 0.05 + 30.0)
    assert b.chain_s == pytest.approx(b.bound_s)


def test_image_boot_waits_for_its_port_only() -> None:
    b = bound([ServerNeed(tier=0, boot_volume_gb=None, ports=1)], LIM)
    assert b.bound_s == pytest.approx(0.05 + (0.05 + 0.5) + 0.05 + 30.0)


def test_build_slots_bound_many_servers_on_one_host() -> None:
    # 100 servers, one host of 20 build slots: 5 rounds of 30 s.
    b = bound([ServerNeed(tier=0, boot_volume_gb=1)] * 100, LIM)
    assert b.builds_s == pytest.approx(0.05 + 0.05 + 5 * 30.0)
    # restores: 2 rounds of 50 on the site, then the last volume's boot
    assert b.restores_s == pytest.approx(0.05 + 0.1 + 2 * R1 + 0.05 + 30.0)
    assert b.bound_s == pytest.approx(b.builds_s)


def test_restore_slots_bound_many_volumes_on_many_hosts() -> None:
    lim = CloudLimits(hosts=50, max_restores=50)
    b = bound([ServerNeed(tier=0, boot_volume_gb=1)] * 500, lim)
    assert b.restores_s == pytest.approx(0.05 + 0.1 + 10 * R1 + 0.05 + 30.0)
    assert b.bound_s == pytest.approx(b.restores_s)


def test_tiers_chain_through_data_volumes() -> None:
    plan = [
        ServerNeed(tier=0, boot_volume_gb=1, data_volumes_gb=(10,)),
        ServerNeed(tier=1, boot_volume_gb=1),
        ServerNeed(tier=2, boot_volume_gb=1),
    ]
    b = bound(plan, LIM)
    t0 = 0.05 + 0.1 + R10 + 0.05 + 3.0  # the data volume's restore, then its attach
    assert b.tiers[0]["recovered_s"] == pytest.approx(t0, abs=1e-3)
    assert b.tiers[1]["recovered_s"] == pytest.approx(t0 + 0.05 + 30.0, abs=1e-3)
    assert b.bound_s == pytest.approx(t0 + 2 * (0.05 + 30.0))


def test_needs_from_params_reads_the_manifests() -> None:
    params = {
        "groups": [
            {
                "manifest": {
                    "volumes": [
                        {"id": "v-boot", "size_gb": 1},
                        {"id": "v-data", "size_gb": 10},
                    ],
                    "servers": [
                        {
                            "tier": 1,
                            "boot": {"from": "volume", "volume_id": "v-boot"},
                            "ports": [{"id": "p"}, {"id": "q"}],
                            "volumes": [
                                {"volume_id": "v-boot", "boot_index": 0},
                                {"volume_id": "v-data", "boot_index": None},
                            ],
                        },
                        {"boot": {"from": "image", "image_id": "i"}, "ports": [], "volumes": []},
                    ],
                }
            }
        ]
    }
    assert needs_from_params(params) == [
        ServerNeed(tier=1, boot_volume_gb=1.0, data_volumes_gb=(10.0,), ports=2),
        ServerNeed(tier=0, boot_volume_gb=None, data_volumes_gb=(), ports=0),
    ]


def test_simulator_restore_slots_queue_beyond_the_limit() -> None:
    from liferaft.sim.volume.backups import RestoreSlots

    slots = RestoreSlots(2)
    started: list[int] = []
    for i in range(4):
        slots.run(lambda i=i: started.append(i))
    assert started == [0, 1] and slots.active == 2
    slots.release()
    assert started == [0, 1, 2] and slots.active == 2
    slots.release()
    slots.release()
    assert started == [0, 1, 2, 3] and slots.active == 1
