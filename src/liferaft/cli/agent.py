"""``liferaft agent``: the host agent, a signed UDP heartbeat sent from a compute host."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True)


def agent(
    key_file: Annotated[
        Path, typer.Option("--key-file", help="File holding the shared HMAC key (>= 16 bytes).")
    ],
    target: Annotated[
        str, typer.Option("--target", help="HOST:PORT where the controller's monitor listens.")
    ],
    host: Annotated[
        str | None,
        typer.Option("--host", help="This host's name as its compute service knows it."),
    ] = None,
    site: Annotated[
        str, typer.Option("--site", help="The site (cloud) this host belongs to.")
    ] = "",
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between heartbeats.")
    ] = 5.0,
    count: Annotated[
        int | None, typer.Option("--count", help="Send this many heartbeats, then exit.")
    ] = None,
) -> None:
    """Send this host's heartbeat to the controller until stopped (format: docs/host-ha-sim.md)."""
    from ..agent.heartbeat import HeartbeatError, load_key
    from ..agent.sender import HeartbeatSender, parse_target
    from ..engine.clock import RealClock

    def fail(message: str) -> None:
        err.print(f"[red]error:[/red] {message}")
        raise typer.Exit(2)

    try:
        key = load_key(key_file)
        addr = parse_target(target)
    except (HeartbeatError, ValueError) as exc:
        fail(str(exc))
        return
    if not site:
        fail("--site is required")
    if interval <= 0:
        fail(f"--interval must be positive, got {interval}")
    if count is not None and count < 1:
        fail(f"--count must be at least 1, got {count}")
    sender = HeartbeatSender(
        key=key, target=addr, host=host or socket.gethostname(), site=site, clock=RealClock()
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(sender.run(interval, count))
