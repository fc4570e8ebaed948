"""The openstacksdk adapter of the Cloud port, against the simulator over HTTP.

Errors from the simulator must come back as the engine's classes: a site
that is down is ``RetryLater``, a resource that does not exist is
``GiveUp`` (``ResourceNotFound``), bad credentials need a human.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from liferaft.clouds import Cloud, OpenStackCloud, ResourceNotFound, Tag
from liferaft.errors import ConfigError, GiveUp, NeedsHuman, RetryLater
from tests.support.sim import SimProcess
from tests.support.wait import step_until

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def adapter(sim: SimProcess, site: str = "east", cloud: str | None = None) -> OpenStackCloud:
    return OpenStackCloud(site, cloud=cloud or site, clouds_yaml=sim.clouds_yaml)


def user_token(sim: SimProcess, site: str, user: str = "demo") -> str:
    conn = sim.connect(site if user == "admin" else f"{site}-demo")
    return str(conn.auth_token)


def test_adapter_satisfies_the_port(sim: SimProcess) -> None:
    assert isinstance(adapter(sim), Cloud)


def test_identity_and_catalog(sim: SimProcess) -> None:
    east = adapter(sim)
    info = run(east.identity())
    assert info.auth_url.startswith(sim.sites["east"])
    types = {c.type for c in info.catalog}
    assert {"identity", "compute", "network", "image"} <= types
    assert info.project_id and info.user_id


def test_endpoints_are_resolved_once_per_connection(sim: SimProcess) -> None:
    """The first authenticated call pins each catalog endpoint as the proxy's override
    (no catalog look-up per request); an unauthenticated ping pins nothing."""
    east = adapter(sim)
    run(east.ping())
    conn = east.connection()
    assert conn.compute.endpoint_override is None
    catalog = {c.type: c for c in run(east.identity()).catalog}
    public = {
        e.url.rstrip("/")
        for e in catalog["compute"].endpoints + catalog["volumev3"].endpoints
        if e.interface == "public"
    }
    assert conn.compute.endpoint_override.rstrip("/") in public
    assert conn.block_storage.endpoint_override.rstrip("/") in public
    # requests through the pinned endpoints still work
    assert run(east.list_servers()) == []
    assert run(east.capacity())


def test_validate_token_of_a_user(sim: SimProcess) -> None:
    east = adapter(sim)
    token = user_token(sim, "east")
    who = run(east.validate_token(token))
    assert who is not None
    assert who.user_name == "demo"
    assert who.project_name == "demo"
    assert who.expires_at
    assert run(east.validate_token("not-a-token")) is None


def test_site_down_is_retry_later(sim: SimProcess) -> None:
    east = adapter(sim)
    run(east.identity())
    sim.control("POST", "/control/faults", {"kind": "site-down", "target": "east"})
    with pytest.raises(RetryLater) as info:
        run(adapter(sim).identity())
    assert "east" in str(info.value)
    # The other site is untouched.
    assert run(adapter(sim, "west").identity()).catalog


def test_api_errors_are_retry_later(sim: SimProcess) -> None:
    east = adapter(sim)
    token = user_token(sim, "east")
    sim.control("POST", "/control/faults", {"kind": "api-errors", "target": "east", "rate": 1.0})
    with pytest.raises(RetryLater, match="east: validate token"):
        run(east.validate_token(token))
    sim.control("POST", "/control/heal", {"target": "east"})
    assert run(east.validate_token(token)) is not None


def test_unknown_server_is_give_up(sim: SimProcess) -> None:
    east = adapter(sim)
    with pytest.raises(ResourceNotFound) as info:
        run(east.get_server("00000000-0000-0000-0000-000000000000"))
    assert isinstance(info.value, GiveUp)
    assert "east: get server 00000000" in str(info.value)


def test_bad_password_needs_a_human(sim: SimProcess, tmp_path: Path) -> None:
    data = yaml.safe_load(Path(sim.clouds_yaml).read_text())
    data["clouds"]["east"]["auth"]["password"] = "wrong"
    bad = tmp_path / "clouds.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(NeedsHuman, match="east"):
        run(OpenStackCloud("east", clouds_yaml=bad).identity())


def test_unknown_cloud_is_a_config_error(sim: SimProcess, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nowhere"):
        run(adapter(sim, "east", cloud="nowhere").identity())
    with pytest.raises(ConfigError, match="not found"):
        run(OpenStackCloud("east", clouds_yaml=tmp_path / "missing.yaml").identity())


def test_tags_mark_what_a_step_made() -> None:
    tag = Tag(run="r1", step="boot-web")
    assert tag.matches({"liferaft_run": "r1", "liferaft_step": "boot-web", "other": "x"})
    assert not tag.matches({"liferaft_run": "r1", "liferaft_step": "boot-db"})
    assert not tag.matches({})
    assert tag.matches_tags(["liferaft_run=r1", "liferaft_step=boot-web"])
    assert not tag.matches_tags(["liferaft_run=r1"])


def test_region_comes_from_clouds_yaml(sim: SimProcess) -> None:
    region = yaml.safe_load(Path(sim.clouds_yaml).read_text())["clouds"]["west"]["region_name"]
    west = run(adapter(sim, "west").identity())
    assert west.region == region
    assert west.auth_url.startswith(sim.sites["west"])


def wait_status(get: Any, wanted: str, sim: SimProcess, tries: int = 20) -> Any:
    """Read a resource (advancing the stepped clock) until it reaches ``wanted``."""
    seen: list[str] = []

    def reached() -> Any:
        obj = run(get())
        seen.append(obj.status)
        return obj if obj.status == wanted else None

    try:
        return step_until(sim, reached, f"status {wanted}", steps=tries)
    except AssertionError as err:
        raise AssertionError(f"{err}; last seen {seen[-1]}") from None


def test_volumes_snapshots_backups_carry_the_tag(sim: SimProcess) -> None:
    east = adapter(sim)
    tag = Tag(run="run-1", step="make-vol")
    vol = run(east.create_volume(name="data-1", tag=tag, size_gb=1))
    assert vol.metadata["liferaft_run"] == "run-1"
    vol = wait_status(lambda: east.get_volume(vol.id), "available", sim)
    # A replayed step finds what the first attempt made; another step does not.
    found = run(east.find_volume("data-1", tag))
    assert found is not None and found.id == vol.id
    assert run(east.find_volume("data-1", Tag(run="run-1", step="other"))) is None
    assert vol.id in {v.id for v in run(east.list_volumes())}

    snap = run(east.create_snapshot(vol.id, name="data-1-snap", tag=tag))
    snap = wait_status(lambda: east.get_snapshot(snap.id), "available", sim)
    assert snap.volume_id == vol.id
    again = run(east.find_snapshot("data-1-snap", tag))
    assert again is not None and again.id == snap.id

    backup = run(
        east.create_backup(
            vol.id, name="data-1-b0", tag=tag, incremental=False, snapshot_id=snap.id
        )
    )
    backup = wait_status(lambda: east.get_backup(backup.id), "available", sim)
    assert not backup.is_incremental
    record = run(east.export_backup_record(backup.id))
    assert record.backup_service and record.backup_url
    # The record is what the recovery site imports (the data stays in the object store).
    west = adapter(sim, "west")
    # Recovery imports with no read-back: the answer names the backup, which keeps its id.
    assert run(west.request_import(record)) == backup.id
    with pytest.raises(GiveUp, match="already exists"):  # a replay falls back to a GET
        run(west.request_import(record))
    with pytest.raises(GiveUp, match="already exists"):
        run(west.import_backup_record(record))
    imported = run(west.get_backup(backup.id))
    assert imported.size_gb == backup.size_gb
    imported = wait_status(lambda: west.get_backup(imported.id), "available", sim)
    restored = run(west.restore_backup(imported.id, name="data-1-restored"))
    restored = wait_status(lambda: west.get_volume(restored.id), "available", sim)
    assert restored.size_gb == vol.size_gb

    run(east.delete_backup(backup.id))
    run(east.delete_snapshot(snap.id))

    def snapshot_gone() -> bool:
        try:
            run(east.get_snapshot(snap.id))
        except ResourceNotFound:
            return True
        return False

    step_until(sim, snapshot_gone, "the snapshot deleted", steps=20)
    run(east.delete_volume(vol.id))
    run(east.delete_volume(vol.id))  # idempotent: already gone is fine
    with pytest.raises(ResourceNotFound):
        wait_status(lambda: east.get_volume(vol.id), "deleted", sim)


def test_unknown_volume_and_bad_server_request_give_up(sim: SimProcess) -> None:
    east = adapter(sim)
    with pytest.raises(ResourceNotFound, match="east: get volume"):
        run(east.get_volume("00000000-0000-0000-0000-000000000000"))
    with pytest.raises(GiveUp):
        run(
            east.create_server(
                name="web-1",
                tag=Tag(run="r", step="s"),
                flavor="m1.tiny",
                image_id="00000000-0000-0000-0000-000000000000",
            )
        )
    with pytest.raises(GiveUp, match="exactly one of"):
        run(east.create_server(name="x", tag=Tag(run="r", step="s"), flavor="m1.tiny"))


def test_compute_hosts_capacity_and_capabilities(sim: SimProcess) -> None:
    east = adapter(sim)
    services = run(east.list_compute_services())
    assert services and all(s.binary == "nova-compute" for s in services)
    host = services[0].host
    assert all(s.state == "up" and s.status == "enabled" for s in services)
    down = run(east.force_down_compute(host))
    assert down.forced_down and down.state == "down"
    up = run(east.force_down_compute(host, down=False))
    assert not up.forced_down
    disabled = run(east.disable_compute(host, reason="liferaft test"))
    assert disabled.status == "disabled" and disabled.disabled_reason == "liferaft test"
    assert run(east.enable_compute(host)).status == "enabled"
    with pytest.raises(ResourceNotFound, match="no nova-compute service on host"):
        run(east.force_down_compute("no-such-host"))

    hypervisors = run(east.list_hypervisors())
    assert {h.name for h in hypervisors} >= {s.host for s in services}
    providers = run(east.capacity())
    assert providers and all("VCPU" in p.inventories for p in providers)
    assert all(p.free("MEMORY_MB") > 0 for p in providers)

    assert run(east.supports("quiesce")) is True
    assert run(east.supports("force_down")) is True
    assert run(east.list_servers()) == []
    with pytest.raises(GiveUp, match="unknown capability"):
        run(east.supports("teleport"))


def test_an_untagged_security_group_is_tagged_when_adopted(sim: SimProcess) -> None:
    """A create whose tag call never happened (a kill between Neutron's two calls) leaves an
    untagged group; adopting it tags it, so a clean-up by the run's tag finds it."""
    east = adapter(sim)
    conn = sim.connect("east")
    try:
        g = conn.network.create_security_group(name="lr-adopt", description="made by a step")
    finally:
        conn.close()
    tag = Tag(run="run-7", step="secgroups:g0")
    tagged = run(east.tag_security_group(str(g.id), tag))
    assert tagged.id == g.id
    assert set(tag.tags()) <= set(tagged.tags)
    assert set(tag.tags()) <= set(run(east.get_security_group(str(g.id))).tags)


def test_an_untagged_network_and_subnet_are_tagged_when_adopted(sim: SimProcess) -> None:
    """Test mode's isolated copies are created then tagged (two Neutron calls each); adopting
    a copy a killed controller left untagged tags it, as for security groups."""
    east = adapter(sim)
    conn = sim.connect("east")
    try:
        net = conn.network.create_network(name="lr-test-adopt")
        sn = conn.network.create_subnet(
            network_id=net.id, name="lr-test-adopt-s0", cidr="10.99.0.0/24", ip_version=4
        )
    finally:
        conn.close()
    tag = Tag(run="run-8", step="isolate")
    run(east.tag_network(str(net.id), tag))
    assert run(east.find_network_tagged("lr-test-adopt", tag)) == net.id
    tagged = run(east.tag_subnet(str(sn.id), tag))
    assert tagged.id == sn.id and set(tag.tags()) <= set(tagged.tags)
    found = run(east.find_subnet("lr-test-adopt-s0", tag))
    assert found is not None and found.id == sn.id
