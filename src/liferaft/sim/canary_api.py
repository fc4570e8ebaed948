"""Control-API routes for canary workloads, health queries and the consistency checker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from .server import SimServer


def routes(server: SimServer) -> list[BaseRoute]:
    return []
