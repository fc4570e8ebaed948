"""One active controller per role: a lease with an epoch (fencing token) in the state store.

A contender takes the lease of a role when it is free or expired; taking it
bumps the *epoch*.  The leader renews it every ``renew_every`` seconds on
the injected clock; a lease that was not renewed for ``ttl`` seconds expires
and another contender may take it (under the next epoch).

Holding the lease is a belief; the epoch is what makes it safe.  Every
state change the executor makes carries :meth:`Leadership.fence` and the
store checks it in the same transaction, so a former leader that was paused
past its expiry and wakes up is refused (:class:`~liferaft.errors.FencedOff`)
on its first write.  Locally the leader stops believing it leads ``margin``
seconds before the lease's expiry, so it stops acting before anyone else may
start.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid

from liferaft.engine.clock import Clock, sleep_until
from liferaft.errors import NotLeader
from liferaft.store import Fence, Lease, Store

log = logging.getLogger(__name__)


def default_holder() -> str:
    """A name unique to this process incarnation (a restart is a new holder, so a new epoch)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Leadership:
    """This process's claim on the leadership of ``role``."""

    def __init__(
        self,
        store: Store,
        role: str,
        *,
        clock: Clock,
        holder: str | None = None,
        ttl: float = 15.0,
        renew_every: float | None = None,
        margin: float | None = None,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"lease ttl must be > 0, not {ttl!r}")
        self.store = store
        self.role = role
        self.clock = clock
        self.holder = holder or default_holder()
        self.ttl = ttl
        self.renew_every = renew_every if renew_every is not None else ttl / 3
        self.margin = margin if margin is not None else ttl / 5
        if not 0 < self.renew_every < ttl - self.margin:
            raise ValueError(
                f"renew_every={self.renew_every} must be > 0 and leave time before the lease "
                f"expires (ttl={ttl}, margin={self.margin})"
            )
        self.lease: Lease | None = None

    @property
    def is_leader(self) -> bool:
        """Whether this process may act now (it holds a lease that is not about to expire)."""
        return self.lease is not None and self.clock.now() < self.lease.expires_at - self.margin

    @property
    def epoch(self) -> int | None:
        return self.lease.epoch if self.lease is not None else None

    def fence(self) -> Fence:
        """The token to put on a state change; raises :class:`NotLeader` if not leading now."""
        if self.lease is None or not self.is_leader:
            raise NotLeader(f"{self.holder!r} does not hold the leadership of {self.role!r}")
        return self.lease.fence

    def try_acquire(self) -> bool:
        """One attempt to become (or stay) leader; True if this process leads now."""
        if self.lease is not None and self.renew():
            return True
        lease = self.store.try_acquire(self.role, self.holder, now=self.clock.now(), ttl=self.ttl)
        if lease is not None and (self.lease is None or lease.epoch != self.lease.epoch):
            log.info("%s leads %r at epoch %d", self.holder, self.role, lease.epoch)
        self.lease = lease
        return self.is_leader

    def renew(self) -> bool:
        """Extend the lease; on failure this process is no longer the leader."""
        if self.lease is None:
            return False
        lease = self.store.renew(self.lease.fence, now=self.clock.now(), ttl=self.ttl)
        if lease is None:
            log.warning(
                "%s lost the leadership of %r (epoch %d)", self.holder, self.role, self.lease.epoch
            )
        self.lease = lease
        return lease is not None and self.is_leader

    def confirm(self) -> Lease:
        """Make sure the lease is held with nearly ``ttl`` left; :class:`NotLeader` if lost.

        Called right before an action the store cannot fence (a cloud
        create): after it the lease has at least ``ttl - margin / 2`` seconds
        left, and :meth:`fence` refuses to act once fewer than ``margin``
        remain.  A lease renewed in the store less than ``margin / 2`` ago is
        not renewed again: nobody can take it before the expiry that renewal
        wrote, so a second write would prove nothing new (a recovery of a
        thousand servers confirmed 3,100 times, one write transaction each).
        """
        if self.lease is not None and self.is_leader:
            renewed_at = self.lease.expires_at - self.ttl
            if 0.0 <= self.clock.now() - renewed_at <= self.margin / 2:
                return self.lease
        if self.lease is None or not self.renew():
            raise NotLeader(f"{self.holder!r} does not hold the leadership of {self.role!r}")
        assert self.lease is not None
        return self.lease

    def release(self) -> None:
        """Give the lease up (clean shutdown)."""
        if self.lease is not None:
            self.store.release(self.lease.fence)
            self.lease = None

    async def campaign(self, *, every: float | None = None) -> Lease:
        """Wait until this process leads the role; returns the lease."""
        every = every if every is not None else self.renew_every
        while True:
            attempt_at = self.clock.now()
            if self.try_acquire():
                break
            await sleep_until(self.clock, attempt_at + every)
        assert self.lease is not None
        return self.lease

    async def keep(self) -> None:
        """Renew the lease forever; raises :class:`NotLeader` the moment it is lost."""
        while True:
            if self.lease is None:
                raise NotLeader(f"{self.holder!r} lost the leadership of {self.role!r}")
            # Renew `renew_every` after the last renewal (a deadline, see sleep_until).
            await sleep_until(self.clock, self.lease.expires_at - self.ttl + self.renew_every)
            if not self.renew():
                raise NotLeader(f"{self.holder!r} lost the leadership of {self.role!r}")
