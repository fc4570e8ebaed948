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
