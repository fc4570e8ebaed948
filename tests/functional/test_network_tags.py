"""Neutron resource tags (standard-attr-tag) through openstacksdk and raw HTTP."""

from __future__ import annotations

import httpx

from tests.support.sim import SimProcess


def test_port_tags_set_filter_and_remove(sim: SimProcess) -> None:
    conn = sim.connect("east")
    assert conn.network.find_extension("standard-attr-tag") is not None
    net = conn.network.find_network("private")
    port = conn.network.create_port(network_id=net.id, name="tagged")
    other = conn.network.create_port(network_id=net.id, name="plain")
    conn.network.set_tags(port, ["liferaft_run=r1", "liferaft_step=s1"])
    assert sorted(conn.network.get_port(port.id).tags) == ["liferaft_run=r1", "liferaft_step=s1"]
    found = [p.id for p in conn.network.ports(tags="liferaft_run=r1,liferaft_step=s1")]
    assert found == [port.id]
    assert other.id in [p.id for p in conn.network.ports(**{"not-tags": "liferaft_run=r1"})]

    base = f"{conn.network.get_endpoint().rstrip('/')}"
    if not base.endswith("/v2.0"):
        base += "/v2.0"
    hdr = {"X-Auth-Token": conn.auth_token}
    url = f"{base}/ports/{port.id}/tags"
    assert httpx.get(f"{url}/liferaft_run=r1", headers=hdr).status_code == 204
    assert httpx.put(f"{url}/extra", headers=hdr).status_code == 201
    assert httpx.delete(f"{url}/liferaft_step=s1", headers=hdr).status_code == 204
    missing = httpx.get(f"{url}/liferaft_step=s1", headers=hdr)
    assert missing.status_code == 404
    assert missing.json()["NeutronError"]["type"] == "TagNotFound"
    assert httpx.get(url, headers=hdr).json() == {"tags": ["extra", "liferaft_run=r1"]}
    bad = httpx.put(url, headers=hdr, json={"tags": "not-a-list"})
    assert bad.status_code == 400
    assert httpx.delete(url, headers=hdr).status_code == 204
    assert conn.network.get_port(port.id).tags == []
    unknown = httpx.get(f"{base}/ports/no-such-port/tags", headers=hdr)
    assert unknown.status_code == 404
    assert unknown.json()["NeutronError"]["type"] == "PortNotFound"


def test_bulk_port_create_with_tags_is_all_or_nothing(sim: SimProcess) -> None:
    """``POST /v2.0/ports`` with ``{"ports": [...]}`` (extension
    tag-ports-during-bulk-creation): every port made and tagged in one call, or none."""
    conn = sim.connect("east")
    assert conn.network.find_extension("tag-ports-during-bulk-creation") is not None
    net = conn.network.find_network("private")
    made = list(
        conn.network.create_ports(
            [
                {"network_id": net.id, "name": "b0", "tags": ["liferaft_run=r", "x"]},
                {"network_id": net.id, "name": "b1", "mac_address": "fa:16:3e:00:00:b1"},
            ]
        )
    )
    assert [p.name for p in made] == ["b0", "b1"]
    assert sorted(conn.network.get_port(made[0].id).tags) == ["liferaft_run=r", "x"]
    assert conn.network.get_port(made[1].id).mac_address == "fa:16:3e:00:00:b1"

    base = f"{conn.network.get_endpoint().rstrip('/')}"
    if not base.endswith("/v2.0"):
        base += "/v2.0"
    hdr = {"X-Auth-Token": conn.auth_token}
    before = {p.id for p in conn.network.ports()}
    # The second port's MAC is in use: nothing is made, not even the first.
    r = httpx.post(
        f"{base}/ports",
        headers=hdr,
        json={
            "ports": [
                {"network_id": net.id, "name": "c0"},
                {"network_id": net.id, "name": "c1", "mac_address": "fa:16:3e:00:00:b1"},
            ]
        },
    )
    assert r.status_code == 409, r.text
    assert r.json()["NeutronError"]["type"] == "MacAddressInUse"
    assert {p.id for p in conn.network.ports()} == before
    # Malformed: not a list, an empty list, an unknown attribute -- each 400, naming it.
    for bad, says in (
        ({"ports": {"network_id": net.id}}, "list"),
        ({"ports": []}, "list"),
        ({"ports": [{"network_id": net.id, "colour": "red"}]}, "colour"),
        ({"ports": [{"network_id": net.id, "tags": "a"}]}, "tags"),
    ):
        r = httpx.post(f"{base}/ports", headers=hdr, json=bad)
        assert r.status_code == 400 and says in r.text, (bad, r.text)
    assert {p.id for p in conn.network.ports()} == before


def test_adapter_makes_a_tagged_port_in_one_call(sim: SimProcess) -> None:
    """The Cloud adapter's create_port uses the bulk create with tags where advertised."""
    import asyncio

    from liferaft.clouds import OpenStackCloud
    from liferaft.clouds.model import Tag
    from liferaft.errors import GiveUp

    cloud = OpenStackCloud("east", clouds_yaml=sim.clouds_yaml)
    conn = sim.connect("east")
    net = conn.network.find_network("private")
    tag = Tag(run="run1", step="ports:g0:s0")
    calls: list[str] = []
    session = cloud.connection().session
    request = session.request

    def counted(url: str, method: str, *a: object, **kw: object) -> object:
        calls.append(f"{method} {url}")
        return request(url, method, *a, **kw)

    session.request = counted  # type: ignore[method-assign]

    async def main() -> None:
        await cloud.supports("port_tags")  # discovery out of the way
        p = await cloud.create_port(
            name="db-p0",
            tag=tag,
            network_id=net.id,
            fixed_ips=[(None, "10.0.0.77")],
            mac_address="fa:16:3e:00:00:77",
        )
        assert p.name == "db-p0" and p.mac_address == "fa:16:3e:00:00:77"
        assert [f.ip_address for f in p.fixed_ips] == ["10.0.0.77"]
        assert tag.matches_tags(list(p.tags))
        assert (await cloud.find_port("db-p0", tag)) == p
        calls.clear()
        try:
            await cloud.create_port(
                name="dup", tag=tag, network_id=net.id, mac_address="fa:16:3e:00:00:77"
            )
        except GiveUp as err:
            assert "dup" in str(err)
        else:
            raise AssertionError("a port with a MAC in use was made")
        assert [c.split()[0] for c in calls] == ["POST"]  # one call, refused
        assert [x.name for x in await cloud.list_ports(name="dup")] == []

    try:
        asyncio.run(main())
    finally:
        cloud.close()
