"""One conformance suite per driver kind, to run against every registered driver.

Liferaft's own tests run it over every driver installed in each
``liferaft.<kind>`` entry-point group (``tests/unit/plugins/``); a third
party runs it over its own::

    from liferaft.testing.conformance import assert_conforms

    def test_my_fencer_conforms():
        assert_conforms("fencers", "my-bmc")

What is checked, for every kind:

* the driver loads through the one loader (:func:`liferaft.plugins.load`):
  its module imports, it is a class, it declares ``capabilities:
  frozenset[str]`` (possibly empty: a no-op fencer can do nothing);
* every capability is one the kind knows (for kinds with a fixed
  vocabulary: fencers, logics);
* it has every method of the kind's port (the ``Protocol`` the service
  calls), each one ``async`` exactly when the port's is, and callable with
  the port's parameters (same names; anything extra has a default).

Kinds whose port is not written yet (``link_monitors``, ``link_shapers``)
get the loader checks only.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from liferaft import plugins
from liferaft.errors import PluginError


@dataclass(frozen=True)
class KindSpec:
    """What a driver of one kind must offer."""

    kind: str
    #: ``module:Name`` of the kind's port (a ``typing.Protocol``); None while it has none.
    port: str | None
    #: ``module:NAME`` of the set of capabilities the kind knows, or a literal set; None: free.
    vocabulary: str | frozenset[str] | None = None


SPECS: dict[str, KindSpec] = {
    "fencers": KindSpec(
        "fencers",
        "liferaft.ha.fencers.base:Fencer",
        frozenset({"power_off", "power_on", "confirms_power_off"}),
    ),
    "monitors": KindSpec("monitors", "liferaft.ha.monitors.base:Monitor"),
    "evacuators": KindSpec("evacuators", "liferaft.ha.evacuators:Evacuator"),
    "notifiers": KindSpec("notifiers", "liferaft.ha.notifiers:Notifier"),
    "logics": KindSpec(
        "logics", "liferaft.logic.contract:DRLogic", "liferaft.logic.contract:KNOWN_CAPABILITIES"
    ),
    "quiescers": KindSpec("quiescers", "liferaft.protection.quiescers:Quiescer"),
    "verifiers": KindSpec("verifiers", "liferaft.recovery.verifiers:Verifier"),
    "replication_monitors": KindSpec(
        "replication_monitors",
        "liferaft.protection.replication_monitors:ReplicationMonitor",
        frozenset({"replication-status"}),
    ),
    "link_monitors": KindSpec("link_monitors", None),
    "link_shapers": KindSpec("link_shapers", None),
}


def _resolve(ref: str) -> Any:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def port_of(kind: str) -> type[Any] | None:
    """The kind's port class (its ``Protocol``), or None if it has none yet."""
    spec = SPECS[kind]
    return None if spec.port is None else _resolve(spec.port)


def vocabulary_of(kind: str) -> frozenset[str] | None:
    """The capabilities drivers of ``kind`` may declare (None: any)."""
    vocab = SPECS[kind].vocabulary
    if vocab is None or isinstance(vocab, frozenset):
        return vocab
    return frozenset(_resolve(vocab))


def port_methods(port: type[Any]) -> dict[str, Callable[..., Any]]:
    """The methods a port declares (its own and its bases', not ``object``'s or ``Protocol``'s)."""
    methods: dict[str, Callable[..., Any]] = {}
    for klass in reversed(port.__mro__):
        if klass is object or klass.__module__ in ("typing", "typing_extensions"):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or not inspect.isfunction(value):
                continue
            methods[name] = value
    return methods


def _signature_problems(name: str, wanted: Callable[..., Any], got: Any) -> list[str]:
    try:
        want_sig = inspect.signature(wanted)
        got_sig = inspect.signature(got)
    except (TypeError, ValueError):
        return []
    got_params = list(got_sig.parameters.values())[1:]  # without self
    want_params = list(want_sig.parameters.values())[1:]
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in got_params)
    names = {p.name: p for p in got_params}
    problems: list[str] = []
    for p in want_params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        q = names.get(p.name)
        if q is None:
            # Services may pass any parameter by name: the names are the contract.
            if not has_var_kw:
                problems.append(f"{name}(): lacks the port's parameter {p.name!r}")
        elif p.kind is p.POSITIONAL_OR_KEYWORD and q.kind is q.KEYWORD_ONLY:
            problems.append(f"{name}(): {p.name!r} must be positional, as in the port")
        elif p.kind is p.KEYWORD_ONLY and q.kind is q.POSITIONAL_ONLY:
            problems.append(f"{name}(): {p.name!r} must accept a keyword, as in the port")
    wanted_names = {p.name for p in want_params}
    for q in got_params:
        if q.kind in (q.VAR_POSITIONAL, q.VAR_KEYWORD) or q.name in wanted_names:
            continue
        if q.default is inspect.Parameter.empty:
            problems.append(f"{name}(): extra parameter {q.name!r} needs a default")
    return problems


def check_driver(kind: str, name: str) -> list[str]:
    """Every way the driver ``name`` of ``kind`` fails its kind's contract (empty: it conforms)."""
    if kind not in SPECS:
        raise PluginError(f"no conformance suite for driver kind {kind!r}")
    try:
        cls = plugins.load(kind, name)
    except PluginError as err:
        return [err.message]
    problems: list[str] = []
    caps: frozenset[str] = cls.capabilities
    vocab = vocabulary_of(kind)
    if vocab is not None:
        unknown = sorted(caps - vocab)
        if unknown:
            problems.append(
                f"declares unknown capabilities {', '.join(unknown)} "
                f"(known to {kind}: {', '.join(sorted(vocab))})"
            )
    port = port_of(kind)
    if port is not None:
        for mname, wanted in port_methods(port).items():
            got = getattr(cls, mname, None)
            if got is None or not callable(got):
                problems.append(f"lacks the method {mname}() of {port.__name__}")
                continue
            if inspect.iscoroutinefunction(wanted) != inspect.iscoroutinefunction(got):
                how = "async" if inspect.iscoroutinefunction(wanted) else "a plain method"
                problems.append(f"{mname}() must be {how}, as in {port.__name__}")
            problems += _signature_problems(mname, wanted, got)
    return problems


def assert_conforms(kind: str, name: str) -> None:
    """Fail (``AssertionError``) with every problem of the driver, one per line."""
    problems = check_driver(kind, name)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise AssertionError(f"{kind[:-1]} driver {name!r} does not conform:\n{lines}")


def registered() -> list[tuple[str, str]]:
    """Every installed driver, as ``(kind, name)``, for parametrizing a test."""
    return [(kind, name) for kind in SPECS for name in plugins.names(kind)]


__all__ = [
    "SPECS",
    "KindSpec",
    "assert_conforms",
    "check_driver",
    "port_methods",
    "port_of",
    "registered",
    "vocabulary_of",
]
