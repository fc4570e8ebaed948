"""Identity v3 of the simulator, through openstacksdk and the openstack CLI."""

from __future__ import annotations

import httpx
import pytest

from tests.support.sim import SimProcess


def test_sdk_authenticates_and_lists_projects(sim: SimProcess) -> None:
    conn = sim.connect("east")
    names = {p.name for p in conn.identity.projects()}
    assert {"admin", "demo", "service"} <= names
    assert conn.identity.get_project(conn.current_project_id).name == "admin"


def test_cli_token_issue_and_catalog(sim: SimProcess) -> None:
    token = sim.openstack("west-demo", "token", "issue", "-f", "json")
    assert token["id"].startswith("gAAAAA")
    catalog = sim.openstack("west", "catalog", "list", "-f", "json")
    types = {c["Type"] for c in catalog}
    assert {"identity", "compute", "block-storage", "image", "network"} <= types


def test_token_is_validated_and_revoked(sim: SimProcess) -> None:
    conn = sim.connect("east")
    token = conn.auth_token
    base = sim.sites["east"] + "/identity/v3/auth/tokens"
    hdr = {"X-Auth-Token": token, "X-Subject-Token": token}
    assert httpx.get(base, headers=hdr).status_code == 200
    assert httpx.delete(base, headers=hdr).status_code == 204
    r = httpx.get(base, headers={"X-Auth-Token": "garbage", "X-Subject-Token": token})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == 401


@pytest.mark.parametrize(
    "body, status",
    [
        (b"{not json", 400),
        (
            b'{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"}, "password": "wrong"}}}}}',
            401,
        ),
    ],
)
def test_bad_auth_requests(sim: SimProcess, body: bytes, status: int) -> None:
    r = httpx.post(sim.sites["east"] + "/identity/v3/auth/tokens", content=body)
    assert r.status_code == status
    assert r.json()["error"]["code"] == status
