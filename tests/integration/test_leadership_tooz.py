"""Leadership through tooz on a real Redis server, with the store's epoch as the fencing token.

Each contender is a real process (this module run as ``python -m
tests.integration.test_leadership_tooz``) holding a
:class:`~liferaft.engine.leadership_tooz.ToozLeadership` on a shared SQLite
store and a ``redis-server`` started for the test (``tests/support/redis.py``),
on the real clock.  While it leads it writes a fenced note every ``TICK``
seconds and renews every ``ttl/3``.  It prints one line per event:
``leading <epoch> <t>``, ``wrote <epoch> <n>``, ``pausing <epoch>``,
``fenced <epoch>`` (the store refused a write), ``stale-write <epoch>`` (it
did not: a bug), ``lost <epoch>``.

- two contenders: exactly one leads, and the Redis lock is what decided it;
- the leader killed (``SIGKILL``): the other takes over once the lock and the
  lease have run out (about ``TTL`` after the last renewal), under the next epoch;
- the leader frozen (``SIGSTOP``, as a paused VM or a GC pause would) right
  after a write: the other takes over; resumed, the old leader writes with
  the fence it held -- refused by the store's epoch check, nothing written --
  then finds its lock gone and never leads again while the other does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROLE = "tooz-test"
TTL = 2.0
RENEW = TTL / 3
TICK = 0.1


# -- the contender process ------------------------------------------------------------------------
async def contend(args: argparse.Namespace) -> None:
    from liferaft.engine.clock import RealClock
    from liferaft.engine.leadership_tooz import ToozLeadership
    from liferaft.errors import FencedOff, NotLeader
    from liferaft.store import Store

    def say(line: str) -> None:
        print(line, flush=True)

    clock = RealClock()
    store = Store(args.store, migrate=False)
    lead = ToozLeadership(
        store, ROLE, clock=clock, coordination_url=args.url, holder=args.holder, ttl=args.ttl
    )
    paused = False
    say("ready")
    while True:
        lease = await lead.campaign()
        say(f"leading {lease.epoch} {clock.now():.3f}")
        n = 0
        while True:
            try:
                fence = lead.fence()
            except NotLeader:
                say(f"lost {lease.epoch}")
                break
            store.add_note(fence, now=clock.now(), detail={"holder": args.holder, "n": n})
            n += 1
            say(f"wrote {fence.epoch} {n}")
            if args.pause_after and n == args.pause_after and not paused:
                paused = True
                say(f"pausing {fence.epoch}")
                os.kill(os.getpid(), signal.SIGSTOP)
                # Resumed: a paused leader goes on with the fence it held before the pause.
                try:
                    store.add_note(fence, now=clock.now(), detail={"holder": args.holder})
                    say(f"stale-write {fence.epoch}")
                except FencedOff:
                    say(f"fenced {fence.epoch}")
            await asyncio.sleep(TICK)
            due = lead.lease is not None and clock.now() >= lead.lease.expires_at - TTL + RENEW
            if due and not lead.renew():
                say(f"lost {lease.epoch}")
                break


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--store", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--holder", required=True)
    p.add_argument("--ttl", type=float, default=TTL)
    p.add_argument("--pause-after", type=int, default=0)
    asyncio.run(contend(p.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))


# -- the tests --------------------------------------------------------------------------------------
from liferaft.store import Store, sqlite_url  # noqa: E402
from tests.support.redis import RedisServer  # noqa: E402


class Contender:
    """One contender process; :meth:`expect` waits for its next line with a given first word."""

    def __init__(self, store: str, url: str, holder: str, log_dir: Path, **opts: int) -> None:
        self.holder = holder
        cmd = [
            sys.executable,
            "-m",
            "tests.integration.test_leadership_tooz",
            "--store",
            store,
            "--url",
            url,
            "--holder",
            holder,
            "--ttl",
            str(TTL),
        ]
        for k, v in opts.items():
            cmd += [f"--{k.replace('_', '-')}", str(v)]
        self.stderr = (log_dir / f"{holder}.err").open("wb")
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.stderr, text=True
        )
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.seen: list[tuple[float, str]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.time(), line.strip()))

    def expect(self, word: str, timeout: float = 20.0) -> tuple[float, list[str]]:
        """The time and the words of the next line starting with ``word``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                at, line = self.lines.get(timeout=max(0.01, left))
            except queue.Empty:
                raise AssertionError(
                    f"{self.holder}: no {word!r} within {timeout}s; saw {self.seen[-10:]}"
                ) from None
            self.seen.append((at, line))
            words = line.split()
            if words and words[0] == word:
                return at, words[1:]
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.holder}: no {word!r} within {timeout}s")

    def drain(self) -> list[str]:
        """Every line printed since the last look."""
        out: list[str] = []
        while True:
            try:
                at, line = self.lines.get_nowait()
            except queue.Empty:
                return out
            self.seen.append((at, line))
            out.append(line)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.stderr.close()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = sqlite_url(tmp_path)
    Store(url).close()  # migrated once, before the contenders open it
    return url


@pytest.fixture
def contenders(tmp_path: Path) -> Iterator[list[Contender]]:
    started: list[Contender] = []
    yield started
    for c in started:
        c.stop()


def lock_key_exists(server: RedisServer) -> bool:
    import redis

    client = redis.Redis(host="127.0.0.1", port=server.port)
    try:
        return any(ROLE.encode() in k for k in client.keys("*"))
    finally:
        client.close()


def notes(url: str) -> list[tuple[int, str, float]]:
    with Store(url, migrate=False) as store:
        return [(e.epoch, e.detail.get("holder", ""), e.at) for e in store.events(limit=100000)]


def test_two_contenders_only_one_leads(
    redis_server: RedisServer, store_url: str, contenders: list[Contender], tmp_path: Path
) -> None:
    a = Contender(store_url, redis_server.url, "a", tmp_path)
    contenders.append(a)
    a.expect("leading")
    b = Contender(store_url, redis_server.url, "b", tmp_path)
    contenders.append(b)
    b.expect("ready")
    time.sleep(2 * TTL)  # several campaign periods of b, several renewals of a
    assert not [line for line in b.drain() if line.startswith("leading")]
    assert not [line for line in a.drain() if line.startswith("lost")]
    with Store(store_url, migrate=False) as store:
        lease = store.get_lease(ROLE)
    assert lease is not None and lease.holder == "a" and lease.epoch == 1
    assert lock_key_exists(redis_server)
    assert {holder for _, holder, _ in notes(store_url)} == {"a"}


def test_killed_leader_is_replaced_after_the_ttl(
    redis_server: RedisServer, store_url: str, contenders: list[Contender], tmp_path: Path
) -> None:
    a = Contender(store_url, redis_server.url, "a", tmp_path)
    contenders.append(a)
    _, (epoch, _) = a.expect("leading")
    b = Contender(store_url, redis_server.url, "b", tmp_path)
    contenders.append(b)
    b.expect("ready")
    a.expect("wrote")
    killed_at = time.time()
    a.signal(signal.SIGKILL)
    a.proc.wait(timeout=10)
    at, (new_epoch, _) = b.expect("leading", timeout=4 * TTL)
    assert int(new_epoch) == int(epoch) + 1
    # Not before the old lease could have run out (renewed at most RENEW before the kill) ...
    assert at - killed_at >= TTL - RENEW - 0.1, at - killed_at
    # ... and soon after it did (one campaign period, a whole-second lock TTL, process slack).
    assert at - killed_at <= TTL + 1.0 + RENEW + 1.5, at - killed_at
    b.expect("wrote")


def test_frozen_leader_resumed_is_refused_by_the_store_epoch(
    redis_server: RedisServer, store_url: str, contenders: list[Contender], tmp_path: Path
) -> None:
    a = Contender(store_url, redis_server.url, "a", tmp_path, pause_after=3)
    contenders.append(a)
    _, (epoch, _) = a.expect("leading")
    b = Contender(store_url, redis_server.url, "b", tmp_path)
    contenders.append(b)
    b.expect("ready")
    frozen_at, _ = a.expect("pausing")  # (stamped when the line arrived)
    at, (new_epoch, _) = b.expect("leading", timeout=4 * TTL)
    assert int(new_epoch) == int(epoch) + 1
    assert at - frozen_at >= TTL - RENEW - 0.1, at - frozen_at
    b.expect("wrote")
    with Store(store_url, migrate=False) as store:
        lease = store.get_lease(ROLE)
    assert lease is not None and lease.holder == "b"
    taken_at = lease.expires_at  # (renewed since; an upper bound of the takeover time)
    before = notes(store_url)

    a.signal(signal.SIGCONT)
    a.expect("fenced")  # the write with the old fence: refused by the store, nothing written
    a.expect("lost")  # and its lock is gone: it stops acting
    time.sleep(2 * TTL)  # it campaigns again, but b holds the lock and the lease
    assert not [line for line in a.drain() if line.startswith(("leading", "stale-write"))]
    b.expect("wrote")
    assert not [line for line in b.drain() if line.startswith("lost")]

    after = notes(store_url)
    old = [n for n in after if n[1] == "a"]
    assert all(e == int(epoch) for e, _, _ in old)
    assert len(old) == len([n for n in before if n[1] == "a"]) == 3  # nothing after the freeze
    assert all(at < taken_at for _, _, at in old)
    assert {e for e, h, _ in after if h == "b"} == {int(new_epoch)}
