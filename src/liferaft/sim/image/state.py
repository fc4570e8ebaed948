"""State of the simulated image service of one site."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..topology import Topology
    from ..world import Site


class ImageState:
    def __init__(self, site: Site) -> None:
        self.site = site

    def seed(self, topology: Topology, *args: Any) -> None:
        """Create the resources the topology file asks for."""
