"""The WAN link ports: measure a link (:class:`LinkMonitor`) and shape it (:class:`LinkShaper`).

DR-Logic decides from what a link carries and decides how its replication
share is capped; these ports are how the controller reads and enforces that
on a real network or on the simulator. Adapters are plugins in the
``liferaft.link_monitors`` and ``liferaft.link_shapers`` entry-point groups
(docs/drlogic.md, "Wiring").
"""

from liferaft.links.port import LinkMonitor, LinkSample, LinkShaper, ShapeOrder

__all__ = ["LinkMonitor", "LinkSample", "LinkShaper", "ShapeOrder"]
