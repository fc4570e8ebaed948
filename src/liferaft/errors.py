"""Liferaft's errors, classified by what the caller should do about them.

Adapters convert third-party errors (openstacksdk, sushy, SQLAlchemy, ...)
into one of these at their boundary, so the engine can decide without
knowing where an error came from:

* :class:`RetryLater` -- temporary (a timeout, a 503, a busy resource): try the
  same thing again after a backoff.
* :class:`GiveUp` -- permanent (bad request, quota exceeded for good, a
  resource that cannot exist): fail the step and its workflow.
* :class:`NeedsHuman` -- only an operator can decide (a fence that could not be
  confirmed, an ambiguous state): pause the workflow until someone resumes,
  cancels or rolls it back.

:class:`ConfigError` and :class:`PluginError` are start-up problems: the
service refuses to start and says what was wrong and where.

:class:`NotLeader` (and its stricter form :class:`FencedOff`) means this
controller may no longer act; it is neither retried nor recorded as a step
failure -- the next leader replays the step.
"""

from __future__ import annotations

from typing import Literal


class LiferaftError(Exception):
    """Base of every error Liferaft raises on purpose; ``message`` is for humans."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class RetryLater(LiferaftError):
    """A temporary failure: the same action may succeed later.

    ``after`` optionally asks for a minimum delay in seconds (for example from
    a ``Retry-After`` header); the retry policy's backoff applies otherwise.
    """

    def __init__(self, message: str, *, after: float | None = None) -> None:
        super().__init__(message)
        if after is not None and after < 0:
            raise ValueError(f"RetryLater(after={after!r}): the delay must be >= 0")
        self.after = after


class GiveUp(LiferaftError):
    """A permanent failure: retrying cannot help."""


class NeedsHuman(LiferaftError):
    """Only an operator can decide how to go on; the workflow pauses."""


class ConfigError(LiferaftError):
    """The configuration is invalid; the message says which setting and why."""


class PluginError(LiferaftError):
    """A driver could not be found, loaded, or lacks a required capability."""


class IllegalTransition(LiferaftError):
    """A workflow or step was asked to move to a state it cannot reach from its current one."""

    def __init__(self, what: str, current: str, target: str, detail: str = "") -> None:
        msg = f"{what}: illegal transition {current!r} -> {target!r}"
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)
        self.what = what
        self.current = current
        self.target = target


class NotFound(LiferaftError):
    """A record that was asked for does not exist."""


class NotLeader(LiferaftError):
    """This controller does not (or no longer) hold the leadership it acts under."""


class FencedOff(NotLeader):
    """The state store refused a write: the writer's epoch is not the current lease's.

    A former leader that was paused (GC, VM freeze, network partition) and woke
    up after another controller took over gets this on its first write.
    """


ErrorClass = Literal["retry", "give_up", "needs_human"]


def classify(exc: BaseException) -> ErrorClass:
    """What the engine does about ``exc``.

    Anything that is not one of Liferaft's classified errors is treated as
    permanent: an unexpected exception is a bug or an unconverted third-party
    error, and retrying it forever would hide it.
    """
    if isinstance(exc, RetryLater):
        return "retry"
    if isinstance(exc, NeedsHuman):
        return "needs_human"
    return "give_up"


def describe(exc: BaseException) -> str:
    """A one-line description of ``exc`` for records and events."""
    if isinstance(exc, LiferaftError):
        return f"{type(exc).__name__}: {exc.message}"
    text = str(exc)
    return (
        f"unexpected {type(exc).__name__}: {text}" if text else f"unexpected {type(exc).__name__}"
    )
