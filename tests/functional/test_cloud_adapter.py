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
