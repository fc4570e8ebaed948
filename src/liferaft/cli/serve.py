"""``liferaft serve --config FILE``: run the controller (API, leadership, services) for one site.

One process, one :class:`~liferaft.engine.controller.Controller`: it holds
and renews the role's lease on the injected clock, drives every workflow
(checkpoints, recovery runs, host-HA recoveries) while -- and only while --
it leads, cancels them when the lease is lost, and releases the lease on a
clean shutdown.  The services (protection's schedule, the HA loop) are
loops the process runs beside the API; they submit workflows through the
controller's executor and act only while it leads.

Every driver the configuration names is loaded and checked at start
(:func:`driver_needs`, :func:`~liferaft.engine.controller.check_drivers`):
an unknown name or a driver lacking a capability stops the start with one
line naming the setting, exit code 2, like a bad configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from liferaft.errors import ConfigError, GiveUp, LiferaftError, PluginError, RetryLater

if TYPE_CHECKING:
    from liferaft.config import Settings
    from liferaft.engine.clock import Clock
    from liferaft.engine.controller import DriverNeed

# The API, the SDK and the store are imported when the command runs, so other
# commands of the CLI start fast.

log = logging.getLogger("liferaft.serve")

#: Exit codes: 2 for a bad configuration or driver (like a usage error), 1 for a start-up failure.
EXIT_CONFIG = 2
EXIT_STARTUP = 1

#: What a DR-Logic plugin must be able to do to drive the checkpoint schedule.
LOGIC_CAPABILITIES = frozenset({"checkpoint-schedule"})


def make_clock(settings: Settings) -> Clock:
    from liferaft.engine.clock import RealClock
    from liferaft.engine.simclock import SimulatorClock

    if settings.clock.source == "simulator":
        assert settings.clock.control_url is not None  # checked by the model
        return SimulatorClock(
            settings.clock.control_url, poll_interval=settings.clock.poll_interval
        )
    return RealClock()


def driver_needs(settings: Settings) -> list[DriverNeed]:
    """Every driver the configuration names, with the setting that names it and what it must do."""
    from liferaft import plugins
    from liferaft.engine.controller import DriverNeed

    ps = settings.protection
    needs = [
        DriverNeed("quiescers", ps.quiescer, "protection.quiescer", frozenset({"quiesce"})),
        DriverNeed("verifiers", ps.verifier, "protection.verifier", frozenset({"verify"})),
    ]
    # The DR-Logic: checked when configured explicitly, or when the default is installed
    # (a build without any logic still starts on the default setting).
    logic = settings.drlogic.logic_driver
    if "logic_driver" in settings.drlogic.model_fields_set or logic in plugins.names("logics"):
        needs.append(DriverNeed("logics", logic, "drlogic.logic_driver", LOGIC_CAPABILITIES))
    dl = settings.drlogic
    needs.append(DriverNeed("link_monitors", dl.link_monitor, "drlogic.link_monitor"))
    needs.append(DriverNeed("link_shapers", dl.link_shaper, "drlogic.link_shaper"))
    ha = settings.ha
    if ha.enabled:
        from liferaft.ha.fencers.base import EVACUATION_CAPABILITIES

        needs += [DriverNeed("monitors", m, f"ha.monitors[{m}]") for m in ha.monitors]
        needs.append(DriverNeed("evacuators", ha.evacuator, "ha.evacuator"))
        needs.append(DriverNeed("notifiers", ha.notifier, "ha.notifier"))
        for h in ha.hosts:
            needs += [
                DriverNeed(
                    "fencers",
                    f.driver,
                    f"ha.hosts[{h.name}].fencers[{i}]",
                    EVACUATION_CAPABILITIES,
                )
                for i, f in enumerate(h.fencers)
            ]
    return needs


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


#: A service loop the process runs beside the API (cancelled at shutdown).
Service = tuple[str, Callable[[], Coroutine[Any, Any, None]]]


async def run(settings: Settings) -> None:
    """Check the drivers, start everything, print the ready line, serve until SIGINT/SIGTERM."""
    import uvicorn

    from liferaft.engine.controller import check_drivers

    # Before anything is opened or led.  stevedore's own "Could not load" warning says
    # less than the PluginError does (which names the setting): one line, not two.
    quiet = logging.getLogger("stevedore")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        check_drivers(driver_needs(settings))
    finally:
        quiet.setLevel(level)

    class _QuietServer(uvicorn.Server):
        """uvicorn without its own signal handling (it re-raises the signal after shutdown,
        which would kill the process before the lease is released)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    from liferaft.api import Services, create_app
    from liferaft.clouds import Cloud, OpenStackCloud, clouds_for
    from liferaft.engine.controller import Controller
    from liferaft.engine.hooks import KillHooks
    from liferaft.engine.leadership_tooz import make_leadership
    from liferaft.engine.simclock import SimulatorClock
    from liferaft.recovery.runtime import DrRuntime
    from liferaft.store import Store

    clock = make_clock(settings)
    cloud = OpenStackCloud(
        settings.site.name, cloud=settings.site.cloud_name, clouds_yaml=settings.site.clouds_yaml
    )
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    store = await asyncio.to_thread(Store, settings.store_url)
    # The one leadership and executor path of the process.
    controller = Controller(
        store,
        clock=clock,
        role=settings.leadership.role,
        ttl=settings.leadership.lease_seconds,
        hooks=KillHooks.from_env(),
        # The store's lease, or a tooz coordinator in front of it (docs/engine.md).
        leadership=make_leadership(settings, store, clock),
    )
    services = Services(clock=clock, cloud=cloud, store=store, leadership=controller.leadership)
    app = create_app(settings, services)
    clouds: dict[str, Cloud] = {**clouds_for(settings.peers), settings.site.name: cloud}
    # Protection and recovery: their workflow kinds and their schedule (docs/protection.md).
    app.state.controller = controller
    app.state.dr = DrRuntime(
        settings, store=store, clock=clock, clouds=clouds, controller=controller
    )
    loops: list[Service] = [("protection", app.state.dr.run)]
    # Host HA: its workflow kinds on the same executor, its detection loop (docs/host-ha.md).
    app.state.ha = None
    if settings.ha.enabled:
        from liferaft.ha.service import HaService

        app.state.ha = HaService(
            settings.ha,
            site=settings.site.name,
            store=store,
            clock=clock,
            clouds=clouds,
            leadership=controller.leadership,
            executor=controller.executor,
            registry=services.registry,
            drive=controller.wake,
        )
        loops.append(("ha", app.state.ha.run))
        # A segment naming hosts the cloud does not know is a configuration error (exit 2).
        with contextlib.suppress(RetryLater, GiveUp):  # the cloud cannot say now
            await app.state.ha.check_hosts()
    sock = _bind(settings.api.host, settings.api.port)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = _QuietServer(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # A graceful stop: uvicorn drains, then the lease is released and the store closed.
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="api")
    leading = controller.start()
    tasks = [asyncio.create_task(fn(), name=name) for name, fn in loops]
    try:
        while not server.started:
            if serving.done():
                await serving  # re-raise why it stopped
                return
            await asyncio.sleep(0.01)  # waiting on uvicorn's start-up (real time)
        url = _url(settings.api.host, port)
        log.info("serving", extra={"api": url, "site": settings.site.name})
        print(f"liferaft ready api={url} site={settings.site.name}", flush=True)
        await asyncio.wait({serving, leading}, return_when=asyncio.FIRST_COMPLETED)
        if leading.done() and not serving.done():
            # The controller loop ended on its own: an error it cannot act on.
            server.should_exit = True
            await serving
            leading.result()  # re-raise it
            raise LiferaftError("the controller loop stopped")
        await serving
    finally:
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks)
        # Cancels the workflows it drives and releases the lease: a successor takes over at once.
        with contextlib.suppress(Exception):
            await controller.stop()
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
    """Run the Liferaft controller for one site: the REST API, leadership and its services."""
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
    except PluginError as err:
        print(f"liferaft: config error: {config}: {err}", file=sys.stderr)
        raise typer.Exit(EXIT_CONFIG) from None
    except (LiferaftError, OSError) as err:
        print(f"liferaft: cannot start: {err}", file=sys.stderr)
        raise typer.Exit(EXIT_STARTUP) from None
    except KeyboardInterrupt:
        pass
