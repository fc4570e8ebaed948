"""Leadership through a tooz coordinator (Redis or etcd), keeping the store's fencing epoch.

``leadership.backend: tooz`` puts a tooz lock in front of the store's lease:
only the contender holding the lock ``liferaft-leader-<role>`` asks the
store for the lease, so the coordinator decides who campaigns.  The lock
expires when its holder stops renewing it (Redis: a key with a TTL; etcd: a
lease), and it is renewed with
the store's lease, every ``renew_every`` seconds: a leader that is frozen or
killed loses both, and the next lock holder takes the lease once it has run
out.

The store stays the single source of the fencing token.  The winner takes
the store's lease (bumping its epoch) exactly as :class:`Leadership` does,
every state change still carries :meth:`Leadership.fence` and is checked in
the store's transaction, and :meth:`Leadership.confirm` -- the guard before
a cloud call -- re-checks the tooz lock *and* the store lease.  So nothing
about safety depends on the coordinator: if it loses a lock (a Redis
restart, a failover between replicas) two contenders may both ask the
store, and the store still lets only one of them lead.  What the coordinator
adds is who may campaign, and a takeover that does not depend on polling a
store row.

When the lock is lost the leader stops acting at once but does not release
the store lease: a cloud create it sent just before must be given the usual
``margin`` to land, so the next leader waits for the lease to expire.

``make_leadership(settings, store, clock)`` builds the configured backend.
"""

from __future__ import annotations

import logging
import math
import urllib.parse
from typing import Any

from liferaft.config import LeadershipSettings, Settings
from liferaft.config.model import TOOZ_EXPIRING_DRIVERS
from liferaft.engine.clock import Clock
from liferaft.engine.leadership import Leadership
from liferaft.errors import ConfigError
from liferaft.store import Store

log = logging.getLogger(__name__)

#: The tooz lock a role's contenders race for.
LOCK_PREFIX = "liferaft-leader-"


def tooz_driver(url: str) -> str:
    """The tooz driver a coordination URL names (its scheme, lower case; ``''`` if none)."""
    return url.split("://", 1)[0].lower() if "://" in url else ""


def check_coordination_url(url: str) -> None:
    """:class:`ConfigError` (naming ``leadership.coordination_url``) if its driver cannot expire a lease."""
    driver = tooz_driver(url)
    if driver not in TOOZ_EXPIRING_DRIVERS:
        raise ConfigError(
            f"leadership.coordination_url: tooz driver {driver or '(no scheme)'!r} cannot expire "
            f"a lease (a frozen leader would hold it forever); use one of "
            f"{', '.join(sorted(TOOZ_EXPIRING_DRIVERS))}"
        )


def redact(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urllib.parse.urlunsplit(parts._replace(netloc=user + host))


def lock_options(url: str, *, ttl: float, margin: float) -> dict[str, str]:
    """Options that tie the tooz lock's expiry to the lease (those the URL sets win).

    tooz takes whole seconds for a lock's TTL, so it is rounded up: the lock
    never expires before the lease does.  Redis calls are given ``margin``
    seconds, so a coordinator that hangs cannot keep a leader acting past its lease.
    """
    given = set(urllib.parse.parse_qs(urllib.parse.urlsplit(url).query))
    driver = tooz_driver(url)
    whole = str(max(1, math.ceil(ttl)))
    wanted: dict[str, str] = {}
    if driver in ("redis", "etcd3+http", "etcd3+https"):
        wanted["lock_timeout"] = whole
    if driver == "redis":
        wanted["socket_timeout"] = str(margin)
        wanted["socket_connect_timeout"] = str(margin)
    return {k: v for k, v in wanted.items() if k not in given}


def with_options(url: str, options: dict[str, str]) -> str:
    """``url`` with ``options`` added to its query string."""
    if not options:
        return url
    parts = urllib.parse.urlsplit(url)
    extra = urllib.parse.urlencode(options)
    return urllib.parse.urlunsplit(
        parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra)
    )


class ToozLeadership(Leadership):
    """A :class:`Leadership` whose contenders first hold a tooz lock; the epoch stays the store's."""

    def __init__(
        self,
        store: Store,
        role: str,
        *,
        clock: Clock,
        coordination_url: str,
        holder: str | None = None,
        ttl: float = 15.0,
        renew_every: float | None = None,
        margin: float | None = None,
        coordinator: Any = None,
    ) -> None:
        check_coordination_url(coordination_url)
        super().__init__(
            store, role, clock=clock, holder=holder, ttl=ttl, renew_every=renew_every, margin=margin
        )
        self.coordination_url = coordination_url
        self._coordinator: Any = coordinator  # a tooz CoordinationDriver (injected in tests)
        self._started = False
        self._lock: Any = None

    # -- the tooz lock -------------------------------------------------------------------
    def _coord(self) -> Any:
        if self._coordinator is None:
            from tooz import coordination

            self._coordinator = coordination.get_coordinator(
                with_options(
                    self.coordination_url,
                    lock_options(self.coordination_url, ttl=self.ttl, margin=self.margin),
                ),
                self.holder.encode(),
            )
        if not self._started:
            self._coordinator.start(start_heart=False)
            self._started = True
            log.info("%s: tooz coordinator %s", self.holder, redact(self.coordination_url))
        return self._coordinator

    @property
    def holds_lock(self) -> bool:
        """Whether this process believes it holds the tooz lock (not checked with the coordinator)."""
        return self._lock is not None and bool(self._lock.acquired)

    def _hold_lock(self) -> bool:
        """Take the tooz lock, or renew it if held; False if another contender holds it or on error."""
        import tooz

        try:
            coord = self._coord()
            if self._lock is None:
                self._lock = coord.get_lock((LOCK_PREFIX + self.role).encode())
            if self._lock.acquired:
                if self._lock.heartbeat():
                    return True
                self._drop_lock()
                return False
            return bool(self._lock.acquire(blocking=False))
        except tooz.ToozError as err:
            # Lost (it expired, or someone else holds it now) or the coordinator is unreachable.
            log.warning("%s: no tooz lock for %r: %s", self.holder, self.role, err)
            self._drop_lock()
            return False

    def _drop_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None and lock.acquired:
            try:
                lock.release()  # forgets it in the coordinator; a no-op in the backend if lost
            except Exception as err:  # the coordinator may be what failed
                log.debug("%s: releasing the tooz lock failed: %s", self.holder, err)

    # -- Leadership ----------------------------------------------------------------------
    def try_acquire(self) -> bool:
        """Renew if leading; otherwise take the tooz lock, and only then ask the store for the lease."""
        if self.lease is not None and self.renew():
            return True
        self.lease = None
        if not self._hold_lock():
            return False
        # Holding the lock: the store's lease may still run for a former leader (it is
        # not released when the lock is lost); the next campaign tries again.
        return super().try_acquire()

    def renew(self) -> bool:
        """Renew the tooz lock, then the store's lease; losing either ends this leadership."""
        if self.lease is None:
            return False
        if not self._hold_lock():
            log.warning(
                "%s lost the tooz lock of %r (epoch %d); it stops acting",
                self.holder,
                self.role,
                self.lease.epoch,
            )
            self.lease = None
            return False
        return super().renew()

    def release(self) -> None:
        """Give up the store's lease, then the tooz lock, and stop the coordinator (clean shutdown)."""
        try:
            super().release()
        finally:
            self.close()

    def close(self) -> None:
        """Release the tooz lock and stop the coordinator (it restarts if this campaigns again)."""
        self._drop_lock()
        if self._coordinator is not None and self._started:
            self._started = False
            try:
                self._coordinator.stop()
            except Exception as err:
                log.debug("%s: stopping the tooz coordinator failed: %s", self.holder, err)


def make_leadership(
    settings: Settings | LeadershipSettings,
    store: Store,
    clock: Clock,
    *,
    holder: str | None = None,
    ttl: float | None = None,
) -> Leadership:
    """The configured leadership backend: :class:`Leadership` (``store``) or :class:`ToozLeadership`.

    ``settings`` is the whole :class:`Settings` or its ``leadership`` section;
    ``ttl`` defaults to ``leadership.lease_seconds``.
    """
    lead = settings.leadership if isinstance(settings, Settings) else settings
    ttl = ttl if ttl is not None else lead.lease_seconds
    if lead.backend == "store":
        return Leadership(store, lead.role, clock=clock, holder=holder, ttl=ttl)
    if lead.coordination_url is None:
        raise ConfigError("leadership.coordination_url: backend 'tooz' needs a coordination URL")
    return ToozLeadership(
        store,
        lead.role,
        clock=clock,
        coordination_url=lead.coordination_url,
        holder=holder,
        ttl=ttl,
    )


__all__ = [
    "LOCK_PREFIX",
    "ToozLeadership",
    "check_coordination_url",
    "lock_options",
    "make_leadership",
    "redact",
    "tooz_driver",
    "with_options",
]
