from __future__ import annotations

from pathlib import Path

import pytest

from liferaft.sim.topology import PROFILES, TopologyError, load_topology


def test_default_world_has_east_and_west_backing_up_to_each_other() -> None:
    topo = load_topology(None)
    assert sorted(topo.sites) == ["east", "west"]
    assert topo.backup_site_of("east") == "west"
    assert topo.backup_site_of("west") == "east"
    assert [(link.a, link.b) for link in topo.link_specs()] == [("east", "west")]
    assert topo.latency_profile() == PROFILES["zero"]


def test_realistic_profile_matches_the_issue() -> None:
    p = PROFILES["realistic"]
    assert (p.api_call, p.port_create, p.boot, p.attach) == (0.05, 0.5, 30.0, 3.0)
    assert (p.volume_restore_base, p.volume_restore_mb_s) == (20.0, 200.0)


@pytest.mark.parametrize(
    "text, message",
    [
        ("sites: {east: {hosts: -1}}", "sites.east: Value error, hosts must be >= 0"),
        ("sites: {east: {backup_site: mars}}", "backup_site names unknown site 'mars'"),
        ("links: [{a: east, b: moon}]", "links[0] names unknown site 'moon'"),
        ("latency: glacial", "latency"),
        ("colour: blue", "colour: Extra inputs are not permitted"),
        ("sites: {a: {hosts: [{name: h}, {name: h}]}}", "duplicate host names: h"),
        ("- a list", "the top level must be a mapping"),
        ("sites: {east: [", "not valid YAML"),
    ],
)
def test_bad_topology_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "topo.yaml"
    f.write_text(text)
    with pytest.raises(TopologyError) as exc:
        load_topology(f)
    assert str(f) in str(exc.value)
    assert message in str(exc.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="no such topology file"):
        load_topology(tmp_path / "nope.yaml")


def test_host_list_and_custom_latency(tmp_path: Path) -> None:
    f = tmp_path / "topo.yaml"
    f.write_text(
        "sites:\n  a: {hosts: [{name: h1, vcpus: 8, max_builds: 2}]}\n  b: {hosts: 2}\n"
        "latency: {boot: 30, attach: 3}\n"
    )
    topo = load_topology(f)
    assert [h.name for h in topo.sites["a"].host_specs("a")] == ["h1"]
    assert [h.name for h in topo.sites["b"].host_specs("b")] == ["b-compute-1", "b-compute-2"]
    assert topo.latency_profile().boot == 30
