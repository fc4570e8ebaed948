"""Kill hooks: named points where a test makes the controller SIGKILL itself.

Crash-safety tests need the process to die *exactly* at an interesting
instant -- after the cloud accepted a create but before anything was
recorded, say -- not "about then" after a sleep.  The engine calls
:meth:`KillHooks.point` at each named point; when the point is armed the
process sends itself ``SIGKILL`` right there (no cleanup, no flush, like a
power cut or the OOM killer).

Arming, by environment variable (read once, when the controller builds its
hooks)::

    LIFERAFT_KILL_AT=<hook>[@<step>][#<n>]

kills at the ``n``-th time (default 1) the hook is reached, counting only
the step named ``<step>`` if given.  Or by file::

    LIFERAFT_KILL_FILE=/path/to/spec      # the file holds the same spec

which is read at each point while it exists and is renamed to
``<path>.fired`` just before the kill, so a restarted controller with the
same environment runs on instead of dying again.

A *pause* point is the same spec in ``LIFERAFT_PAUSE_AT``: the process
sends itself ``SIGSTOP`` there instead (a GC pause, a frozen VM, a
partition), and goes on from that very point when the test sends
``SIGCONT``.  Leadership tests use it to freeze a leader between its lease
check and its cloud call.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from liferaft.errors import ConfigError

ENV_SPEC = "LIFERAFT_KILL_AT"
ENV_FILE = "LIFERAFT_KILL_FILE"
ENV_PAUSE = "LIFERAFT_PAUSE_AT"

#: Every hook point the engine has, in the order a step meets them.
HOOKS: dict[str, str] = {
    "before_step": "a step is about to start; nothing recorded for this attempt yet",
    "before_call": "the step's `running` record (with its attempt) is committed; not yet called",
    "before_cloud_call": "the lease was re-checked in the store; the cloud create is not sent yet",
    "after_cloud_call": "the cloud accepted a create; nothing recorded about it yet",
    "after_ledger": "the created resource is in the resources ledger; the step has not returned",
    "before_record": "the step function returned; its outcome is not recorded yet",
    "after_record": "the step's outcome (done/failed/retrying/blocked) is committed",
    "before_workflow_record": "every step settled; the workflow's final state is not recorded yet",
    "before_undo": "a step's `undoing` record is committed; its undo is not called yet",
    "after_undo": "the undo returned; `undone` is not recorded yet",
}


@dataclass(frozen=True)
class KillSpec:
    hook: str
    step: str | None = None
    nth: int = 1

    @classmethod
    def parse(cls, text: str, *, where: str) -> KillSpec:
        raw = text.strip()
        rest, _, nth_s = raw.partition("#")
        hook, _, step = rest.partition("@")
        hook = hook.strip()
        if hook not in HOOKS:
            raise ConfigError(
                f"{where}: unknown kill hook {hook!r} in {raw!r}; known: {', '.join(HOOKS)}"
            )
        try:
            nth = int(nth_s) if nth_s.strip() else 1
        except ValueError:
            raise ConfigError(f"{where}: {raw!r}: the count after '#' must be a number") from None
        if nth < 1:
            raise ConfigError(f"{where}: {raw!r}: the count after '#' must be >= 1")
        return cls(hook, step.strip() or None, nth)

    def matches(self, hook: str, step: str | None) -> bool:
        return hook == self.hook and (self.step is None or self.step == step)


class KillHooks:
    """The controller's kill points; inert unless armed."""

    def __init__(
        self,
        spec: str | None = None,
        *,
        file: Path | str | None = None,
        pause: str | None = None,
    ) -> None:
        self._spec = KillSpec.parse(spec, where=ENV_SPEC) if spec else None
        self._file = Path(file) if file else None
        self._pause = KillSpec.parse(pause, where=ENV_PAUSE) if pause else None
        self._hits: Counter[tuple[str, str | None]] = Counter()
        self._pause_hits = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KillHooks:
        env = os.environ if environ is None else environ
        return cls(
            env.get(ENV_SPEC) or None,
            file=env.get(ENV_FILE) or None,
            pause=env.get(ENV_PAUSE) or None,
        )

    @property
    def armed(self) -> bool:
        return self._spec is not None or self._file is not None or self._pause is not None

    def point(self, hook: str, step: str | None = None) -> None:
        """Pass hook point ``hook`` (for ``step``); dies here if armed for it."""
        if hook not in HOOKS:
            raise ValueError(f"unknown kill hook {hook!r}")
        if not self.armed:
            return
        pause = self._pause
        if pause is not None and pause.matches(hook, step):
            self._pause_hits += 1
            if self._pause_hits == pause.nth:  # once: after SIGCONT the process runs on
                os.kill(os.getpid(), signal.SIGSTOP)
        for spec, source in self._specs():
            key = (spec.hook, spec.step)
            if not spec.matches(hook, step):
                continue
            self._hits[key] += 1
            if self._hits[key] >= spec.nth:
                self._fire(source)

    def _specs(self) -> list[tuple[KillSpec, str]]:
        specs: list[tuple[KillSpec, str]] = []
        if self._spec is not None:
            specs.append((self._spec, "env"))
        if self._file is not None:
            try:
                text = self._file.read_text()
            except FileNotFoundError:
                text = ""
            if text.strip():
                specs.append((KillSpec.parse(text, where=str(self._file)), "file"))
        return specs

    def _fire(self, source: str) -> None:
        if source == "file" and self._file is not None:
            os.replace(self._file, self._file.with_name(self._file.name + ".fired"))
        os.kill(os.getpid(), signal.SIGKILL)
