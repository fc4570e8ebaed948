"""State of the simulated compute service of one site."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..topology import Topology
    from ..world import Site


class ComputeState:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.hosts: dict[str, Any] = {}
        self.servers: dict[str, Any] = {}

    def seed(self, topology: Topology, *args: Any) -> None:
        """Create the resources the topology file asks for."""

    def power_site(self, on: bool) -> None:
        """Power every host of the site on or off (the site-down fault)."""
