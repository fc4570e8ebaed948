"""``liferaft serve --config FILE``: run the controller (API, leadership) for one site."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from liferaft.errors import ConfigError, LiferaftError, NotLeader

if TYPE_CHECKING:
    from liferaft.config import Settings
    from liferaft.engine.clock import Clock
    from liferaft.engine.leadership import Leadership

# The API, the SDK and the store are imported when the command runs, so other
# commands of the CLI start fast.

log = logging.getLogger("liferaft.serve")

#: Exit codes: 2 for a bad configuration (like a usage error), 1 for a start-up failure.
EXIT_CONFIG = 2
EXIT_STARTUP = 1


def make_clock(settings: Settings) -> Clock:
    from liferaft.engine.clock import RealClock
    from liferaft.engine.simclock import SimulatorClock

    if settings.clock.source == "simulator":
        assert settings.clock.control_url is not None  # checked by the model
        return SimulatorClock(
            settings.clock.control_url, poll_interval=settings.clock.poll_interval
        )
    return RealClock()


async def keep_leadership(lead: Leadership) -> None:
    """Contend for the role for ever; lead while the lease holds, contend again when lost."""
    while True:
        try:
            await lead.campaign()
            await lead.keep()
        except NotLeader as err:
            log.warning("leadership lost: %s", err)
        except LiferaftError as err:
            log.warning("leadership: %s", err)
            await lead.clock.sleep(lead.renew_every)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def run(settings: Settings) -> None:
    """Start everything, print the ready line, serve until SIGINT/SIGTERM."""
    import uvicorn

    class _QuietServer(uvicorn.Server):
        """uvicorn without its own signal handling (it re-raises the signal after shutdown,
        which would kill the process before the lease is released)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    from liferaft.api import Services, create_app
    from liferaft.clouds import OpenStackCloud
    from liferaft.engine.leadership import Leadership
    from liferaft.engine.simclock import SimulatorClock
    from liferaft.store import Store

    clock = make_clock(settings)
    cloud = OpenStackCloud(
        settings.site.name, cloud=settings.site.cloud_name, clouds_yaml=settings.site.clouds_yaml
    )
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    store = await asyncio.to_thread(Store, settings.store_url)
    lead = Leadership(
        store, settings.leadership.role, clock=clock, ttl=settings.leadership.lease_seconds
    )
    services = Services(clock=clock, cloud=cloud, store=store, leadership=lead)
    app = create_app(settings, services)
    # Protection and recovery: their workflows and their loop (docs/protection.md).
    from liferaft.clouds import Cloud, clouds_for
    from liferaft.recovery.runtime import DrRuntime

    clouds: dict[str, Cloud] = {**clouds_for(settings.peers), settings.site.name: cloud}
    app.state.dr = DrRuntime(settings, store=store, clock=clock, clouds=clouds, leadership=lead)
    # Host HA shares the executor: one executor drives every workflow kind of the role.
    app.state.ha = None
    if settings.ha.enabled:
        from liferaft.ha.service import HaService

        app.state.ha = HaService(
            settings.ha,
            site=settings.site.name,
            store=store,
            clock=clock,
            clouds=clouds,
            leadership=lead,
            executor=app.state.dr.executor,
            registry=services.registry,
        )
    sock = _bind(settings.api.host, settings.api.port)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = _QuietServer(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # A graceful stop: uvicorn drains, then the lease is released and the store closed.
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    leading = asyncio.create_task(keep_leadership(lead))
    dr_loop = asyncio.create_task(app.state.dr.run())
    ha_loop = asyncio.create_task(app.state.ha.run()) if app.state.ha is not None else None
    try:
        while not server.started:
            if serving.done():
                await serving  # re-raise why it stopped
                return
            await asyncio.sleep(0.01)  # waiting on uvicorn's start-up (real time)
        url = _url(settings.api.host, port)
        log.info("serving", extra={"api": url, "site": settings.site.name})
        print(f"liferaft ready api={url} site={settings.site.name}", flush=True)
        await serving
    finally:
        if ha_loop is not None:
            ha_loop.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await ha_loop
        dr_loop.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await dr_loop
        leading.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await leading
        with contextlib.suppress(Exception):
            await asyncio.to_thread(lead.release)
        store.close()
        cloud.close()
        if isinstance(clock, SimulatorClock):
            clock.close()
        sock.close()
        log.info("stopped", extra={"site": settings.site.name})


def serve(
    config: Annotated[
        Path,
        typer.Option(
            "--config",
            "-c",
            help="The controller's YAML config file (see docs/configuration.md).",
            envvar="LIFERAFT_CONFIG",
        ),
    ],
) -> None:
    """Run the Liferaft controller for one site: the REST API and leadership."""
    from liferaft.config import load_config
    from liferaft.config.logs import setup_logging

    try:
        settings = load_config(config)
    except ConfigError as err:
        print(f"liferaft: config error: {err}", file=sys.stderr)
        raise typer.Exit(EXIT_CONFIG) from None
    setup_logging(settings.logging)
    try:
        asyncio.run(run(settings))
    except ConfigError as err:
        print(f"liferaft: config error: {err}", file=sys.stderr)
        raise typer.Exit(EXIT_CONFIG) from None
    except (LiferaftError, OSError) as err:
        print(f"liferaft: cannot start: {err}", file=sys.stderr)
        raise typer.Exit(EXIT_STARTUP) from None
    except KeyboardInterrupt:
        pass
