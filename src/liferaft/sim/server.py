"""Serve the simulated world over HTTP: one listener per site plus the control API.

Each site has its own loopback port (so each advertises its own URL, as the
clients require, and a site that is down refuses connections like a dead
datacenter).  The control API (clock, faults, canaries, write log) has a
port of its own and is for tests, the demo and benchmarks only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from . import identity
from .bmc.ipmi import IpmiService
from .bmc.redfish import redfish_app
from .bmc.registry import BmcRegistry
from .clock import SimClock
from .compute import api as compute_api
from .heartbeat import HeartbeatService
from .image import api as image_api
from .network import api as network_api
from .objects import api as objects_api
from .topology import Topology
from .volume import api as volume_api
from .wan_view import WanView, view_name
from .world import Site, World

log = logging.getLogger(__name__)


def site_app(site: Site) -> Starlette:
    routes: list[BaseRoute] = []
    routes += identity.routes(site)
    routes += compute_api.routes(site)
    routes += volume_api.routes(site)
    routes += network_api.routes(site)
    routes += image_api.routes(site)
    routes += objects_api.routes(site)
    return Starlette(routes=routes)


def _bind(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets whose proto
    # says TCP, and without it every small response waits 40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signals alone: the simulator process owns them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _Listener:
    """One uvicorn server on a fixed port that can be stopped and started again."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.sock = _bind(host, port)
        self.port: int = self.sock.getsockname()[1]
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        if self.task is not None:
            return
        if self.sock is None or self.sock.fileno() < 0:
            self.sock = _bind(self.host, self.port)
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
            backlog=1024,
        )
        self.server = _QuietServer(config)
        sock = self.sock
        self.task = asyncio.get_running_loop().create_task(self.server.serve(sockets=[sock]))

    async def stop(self) -> None:
        if self.server is None or self.task is None:
            return
        self.server.should_exit = True
        self.server.force_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.server = None
        self.task = None
        with contextlib.suppress(OSError):
            self.sock.close()

    async def wait_started(self) -> None:
        while self.server is None or not self.server.started:
            if self.task is not None and self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)


class SimServer:
    """Owns the world and its listeners; ``run()`` serves until cancelled."""

    def __init__(
        self,
        topology: Topology,
        state_dir: Path,
        clock: SimClock,
        host: str = "127.0.0.1",
        control_port: int = 0,
    ) -> None:
        self.state_dir = state_dir
        self.host = host
        # Bind every port first: the catalog needs each site's URL.
        self.listeners: dict[str, _Listener] = {}
        self.world = World(topology, state_dir, clock)
        for name, site in self.world.sites.items():
            lst = _Listener(site_app(site), host, 0)
            site.url = lst.url
            self.listeners[name] = lst
        # Remote views (wan_view.py): each site as a client at a linked site reaches it.
        self.views: dict[str, tuple[str, _Listener]] = {}  # "site@client" -> (site, listener)
        for link in self.world.links.links.values():
            for name, client in ((link.spec.a, link.spec.b), (link.spec.b, link.spec.a)):
                view = WanView(site_app(self.world.sites[name]), self.world.sites[name], client)
                lst = _Listener(view, host, 0)
                view.url = lst.url
                self.views[view_name(name, client)] = (name, lst)
        # The hosts' BMCs: a Redfish listener per site, an IPMI UDP port per host.
        self.bmcs = BmcRegistry(self.world)
        self.bmc_listeners: dict[str, _Listener] = {}
        for name, site in self.world.sites.items():
            lst = _Listener(redfish_app(self.bmcs, site), host, 0)
            for bmc in self.bmcs.of_site(name):
                bmc.redfish_url = lst.url
            self.bmc_listeners[name] = lst
        self.ipmi = IpmiService(self.bmcs, host)
        self.heartbeats = HeartbeatService(self.world, state_dir)
        from .control import control_app  # late: control imports server helpers

        self.control = _Listener(control_app(self), host, control_port)

    @property
    def control_url(self) -> str:
        return self.control.url

    async def set_site_down(self, name: str, down: bool) -> None:
        """Stop or restart a site's listener (its APIs refuse connections while down)."""
        site = self.world.site(name)
        site.faults.down = down
        views = [lst for site_name, lst in self.views.values() if site_name == name]
        for lst in (self.listeners[name], self.bmc_listeners[name], *views):
            if down:
                await lst.stop()
            else:
                lst.start()
                await lst.wait_started()

    def clouds_yaml(self) -> dict[str, Any]:
        clouds: dict[str, Any] = {}
        topo = self.world.topology
        urls = [(name, site.url, site.region) for name, site in self.world.sites.items()]
        urls += [
            (view, lst.url, self.world.sites[name].region)
            for view, (name, lst) in self.views.items()
        ]
        for name, url, region in urls:
            for suffix, user, password, project in (
                ("", "admin", topo.admin_password, "admin"),
                ("-demo", "demo", topo.demo_password, "demo"),
            ):
                clouds[f"{name}{suffix}"] = {
                    "auth": {
                        "auth_url": f"{url}/identity",
                        "username": user,
                        "password": password,
                        "project_name": project,
                        "user_domain_name": "Default",
                        "project_domain_name": "Default",
                    },
                    "region_name": region,
                    "identity_api_version": 3,
                    "interface": "public",
                }
        return {"clouds": clouds}

    def write_files(self) -> Path:
        path = self.state_dir / "clouds.yaml"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(self.clouds_yaml(), sort_keys=False))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        info = {
            "control_url": self.control_url,
            "clouds_yaml": str(path),
            "sites": {n: s.url for n, s in self.world.sites.items()},
            "views": {n: lst.url for n, (_, lst) in self.views.items()},
            "pid": os.getpid(),
        }
        (self.state_dir / "sim.json").write_text(json.dumps(info, indent=2))
        self.bmcs.write_file(self.state_dir / "bmcs.yaml")
        return path

    def _all_listeners(self) -> list[_Listener]:
        views = [lst for _, lst in self.views.values()]
        return [*self.listeners.values(), *views, *self.bmc_listeners.values(), self.control]

    async def start(self) -> None:
        for lst in self._all_listeners():
            lst.start()
        for lst in self._all_listeners():
            await lst.wait_started()
        self.ipmi.start()
        self.write_files()

    async def run(self, ready: asyncio.Event | None = None) -> None:
        await self.start()
        clock_task = asyncio.get_running_loop().create_task(self.world.clock.run_forever())
        if ready is not None:
            ready.set()
        try:
            await asyncio.Event().wait()
        finally:
            clock_task.cancel()
            self.heartbeats.close()
            await self.ipmi.stop()
            for lst in self._all_listeners():
                await lst.stop()
            self.world.writelog.close()
