"""One loader for every kind of driver, over stevedore entry points.

Each kind of driver has its own entry-point group, ``liferaft.<kind>``;
built-in drivers register in Liferaft's own ``pyproject.toml`` exactly as a
third-party package would in its own::

    [project.entry-points."liferaft.fencers"]
    redfish = "liferaft.ha.fencers.redfish:RedfishFencer"

A driver class declares what it can do in ``capabilities: frozenset[str]``;
a caller that needs a capability asks for it when loading, so a driver that
cannot do the job is refused at start-up with one clear error instead of
failing in the middle of a recovery (a fencer that cannot confirm power-off
is refused for evacuation).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any

from stevedore import DriverManager, ExtensionManager
from stevedore.exception import NoMatches

from liferaft.errors import PluginError

#: Every driver kind and what its drivers do.
KINDS: dict[str, str] = {
    "monitors": "watch compute hosts and report their health",
    "fencers": "power a host off (and confirm it) so it can no longer run or write",
    "evacuators": "move a failed host's instances elsewhere",
    "notifiers": "tell tenants and admins what happened",
    "logics": "DR-Logic: decide when to checkpoint and how to share the WAN link",
    "quiescers": "quiesce and unquiesce workloads for consistent snapshots",
    "verifiers": "check that a recovered workload works",
    "replication_monitors": "read a storage replica's lag and last applied write",
    "link_monitors": "measure the WAN links between sites",
    "link_shapers": "enforce the bandwidth split on a WAN link",
}


def group(kind: str) -> str:
    """The entry-point group of ``kind`` (``liferaft.<kind>``)."""
    if kind not in KINDS:
        raise PluginError(f"unknown driver kind {kind!r}; the kinds are: {', '.join(KINDS)}")
    return f"liferaft.{kind}"


def names(kind: str) -> list[str]:
    """The names of the installed drivers of ``kind``, sorted (none are imported)."""
    return sorted({ep.name for ep in entry_points(group=group(kind))})


def refresh() -> None:
    """Forget stevedore's in-process list of entry points (after installing a driver at run time)."""
    cache = getattr(ExtensionManager, "ENTRY_POINT_CACHE", None)
    if isinstance(cache, dict):
        for kind in KINDS:
            cache.pop(f"liferaft.{kind}", None)


def load(kind: str, name: str, *, required_capabilities: Iterable[str] = ()) -> type[Any]:
    """The driver class ``name`` of ``kind``, checked to have ``required_capabilities``.

    Raises :class:`PluginError` naming the kind, the name and what is
    installed (unknown name), the import error (broken driver), or the
    missing capabilities.
    """
    grp = group(kind)
    try:
        mgr = DriverManager(grp, name, invoke_on_load=False, on_load_failure_callback=_reraise)
    except NoMatches:
        available = ", ".join(names(kind)) or "none installed"
        raise PluginError(
            f"no {kind[:-1]} driver named {name!r} (available: {available})"
        ) from None
    except PluginError:
        raise
    except Exception as exc:
        raise PluginError(f"{kind[:-1]} driver {name!r} could not be loaded: {exc}") from exc
    cls = mgr.driver
    where = f"{kind[:-1]} driver {name!r} ({_qualname(cls)})"
    if not isinstance(cls, type):
        raise PluginError(f"{where} is not a class")
    caps = getattr(cls, "capabilities", None)
    if not isinstance(caps, frozenset) or not all(isinstance(c, str) for c in caps):
        raise PluginError(f"{where} does not declare `capabilities: frozenset[str]`")
    missing = sorted(set(required_capabilities) - caps)
    if missing:
        has = ", ".join(sorted(caps)) or "none"
        raise PluginError(
            f"{where} lacks the required capabilities {', '.join(missing)} (it has: {has})"
        )
    return cls


def create(
    kind: str,
    name: str,
    *args: Any,
    required_capabilities: Iterable[str] = (),
    **kwargs: Any,
) -> Any:
    """Load the driver class and instantiate it with ``args`` and ``kwargs``."""
    cls = load(kind, name, required_capabilities=required_capabilities)
    return cls(*args, **kwargs)


def _reraise(_manager: Any, entrypoint: Any, exc: BaseException) -> None:
    raise PluginError(
        f"driver {entrypoint.name!r} ({entrypoint.value}) could not be loaded: "
        f"{type(exc).__name__}: {exc}"
    ) from exc


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
