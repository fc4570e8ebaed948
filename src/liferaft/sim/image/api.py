"""HTTP facade of the simulated image service."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from ..world import Site


def routes(site: Site) -> list[BaseRoute]:
    return []
