"""``cloudsteps.ensure_port`` adopts a port half made by a killed create (made, never tagged).

A replay (attempt 2 or more) looks first; a first attempt creates at once and
looks only if the cloud refuses the create.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from liferaft.clouds.model import FixedIP, Port, Tag
from liferaft.engine import cloudsteps
from liferaft.engine.idempotency import IdempotencyTag
from liferaft.errors import GiveUp


class Ctx:
    """The part of a StepContext that ``ensure_created`` needs: find, else create."""

    run_id = "run1"
    step = "ports:g0:s0"

    def __init__(self, attempt: int) -> None:
        self.attempt = attempt

    async def ensure_created(
        self,
        *,
        kind: str,
        name: str,
        find: Callable[[IdempotencyTag], Awaitable[Any]],
        create: Callable[[IdempotencyTag], Awaitable[Any]],
        cloud_id: Callable[[Any], str],
        site: str | None = None,
    ) -> Any:
        t = IdempotencyTag(run_id=self.run_id, step_id=self.step, name=name)
        found = await find(t)
        return found if found is not None else await create(t)


class Neutron:
    """Ports on one network, tagged only when a caller tags them (as Neutron does)."""

    site = "west"

    def __init__(self, ports: list[Port]) -> None:
        self.ports = ports
        self.created: list[Port] = []
        self.lookups = 0

    async def find_port(self, name: str, tag: Tag) -> Port | None:
        self.lookups += 1
        return next((p for p in self.ports if p.name == name and tag.matches_tags(p.tags)), None)

    async def list_ports(self, *, network_id: str | None = None, **_: Any) -> list[Port]:
        self.lookups += 1
        return [p for p in self.ports if network_id in (None, p.network_id)]

    async def create_port(self, *, name: str, tag: Tag, network_id: str, **kw: Any) -> Port:
        mac = kw.get("mac_address")
        if mac and any(p.mac_address == mac for p in self.ports):
            raise GiveUp(f"west: create port {name!r}: MacAddressInUse {mac}")
        p = port(f"new{len(self.created)}", name, tags=tag.tags(), mac=kw.get("mac_address") or "")
        self.ports.append(p)
        self.created.append(p)
        return p


def port(
    pid: str,
    name: str,
    *,
    tags: tuple[str, ...] | list[str] = (),
    mac: str = "fa:16:3e:00:00:01",
    device: str | None = None,
    ip: str = "10.0.0.5",
) -> Port:
    return Port(
        id=pid,
        name=name,
        network_id="net",
        mac_address=mac,
        status="DOWN",
        fixed_ips=(FixedIP(ip, "sub"),),
        device_id=device,
        tags=tuple(tags),
    )


def ensure(cloud: Neutron, attempt: int = 2, **kw: Any) -> Port:
    args: dict[str, Any] = {"name": "db-p0", "network_id": "net", **kw}
    return asyncio.run(cloudsteps.ensure_port(Ctx(attempt), cloud, **args))  # type: ignore[arg-type]


def test_an_untagged_port_with_our_name_mac_and_ip_is_adopted() -> None:
    half = port("half", "db-p0")
    cloud = Neutron([half])
    got = ensure(cloud, mac_address="fa:16:3e:00:00:01", fixed_ips=[(None, "10.0.0.5")])
    assert got.id == "half" and cloud.created == []


def test_without_mac_or_ips_the_name_alone_adopts_an_unbound_untagged_port() -> None:
    cloud = Neutron([port("half", "db-p0")])
    assert ensure(cloud).id == "half" and cloud.created == []


def test_a_port_that_is_not_ours_is_left_alone_and_a_new_one_made() -> None:
    others = [
        port("othermac", "db-p0", mac="fa:16:3e:00:00:99"),
        port("bound", "db-p0", device="server-1"),
        port("tagged", "db-p0", tags=["liferaft-run=someone-else"]),
        port("otherip", "db-p0", ip="10.0.0.6"),
        replace(port("othername", "app-p0")),
    ]
    cloud = Neutron(list(others))
    got = ensure(cloud, mac_address="fa:16:3e:00:00:02", fixed_ips=[(None, "10.0.0.5")])
    assert len(cloud.created) == 1 and got.id == cloud.created[0].id


def test_the_tagged_port_is_found_first() -> None:
    cloud = Neutron([])
    first = ensure(cloud)
    again = ensure(cloud)
    assert again.id == first.id and len(cloud.created) == 1


def test_a_first_attempt_creates_without_looking() -> None:
    cloud = Neutron([port("other", "app-p0", mac="fa:16:3e:00:00:09")])
    got = ensure(cloud, attempt=1, mac_address="fa:16:3e:00:00:01")
    assert cloud.lookups == 0 and [p.id for p in cloud.created] == [got.id]
    assert set(got.tags) == {"liferaft_run=run1", "liferaft_step=ports:g0:s0"}


def test_a_first_attempt_refused_adopts_a_half_made_port_of_its_name() -> None:
    cloud = Neutron([port("half", "db-p0")])  # an abandoned run's, never tagged
    got = ensure(cloud, attempt=1, mac_address="fa:16:3e:00:00:01", fixed_ips=[(None, "10.0.0.5")])
    assert got.id == "half" and cloud.created == [] and cloud.lookups > 0


def test_a_first_attempt_refused_for_a_port_not_ours_fails() -> None:
    cloud = Neutron([port("bound", "db-p0", device="server-1")])
    try:
        ensure(cloud, attempt=1, mac_address="fa:16:3e:00:00:01")
    except GiveUp as err:
        assert "MacAddressInUse" in str(err)
    else:
        raise AssertionError("a port bound elsewhere was adopted")
    assert cloud.created == []
