"""What the API needs from the rest of the controller, injected by ``create_app``.

Nothing here is built at import time: ``liferaft serve`` (or a test)
constructs the services and hands them over.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from liferaft.clouds import Cloud
from liferaft.engine.clock import Clock
from liferaft.engine.leadership import Leadership
from liferaft.store import Store


@dataclass
class Services:
    """The controller's parts the API reads.

    ``cloud`` is this site's Cloud adapter (tokens are validated by its
    Keystone); ``store`` and ``leadership`` may be absent in a bare API
    (then the routes that need them answer 503).
    """

    clock: Clock
    cloud: Cloud
    store: Store | None = None
    leadership: Leadership | None = None
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
