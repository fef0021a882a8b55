"""Leaders and standbys, for every worker run more than once (docs/operations.md, "Running on
several machines").

A decision domain (the relay, each event-store projection, provisioning, the telemetry reactor,
the notifications' clock) is led by the instance whose database session holds its PostgreSQL
advisory lock. That session is a lease: the instance heartbeats on it every `tick`, and PostgreSQL
itself ends a session silent for `lease_s` (`idle_session_timeout`), which frees its locks, so a
frozen leader (SIGSTOP, a paused host) is replaced as surely as a dead one, whose session ends with
its connection. A leader acts only while its last heartbeat is younger than half the lease
(`Leases.valid`): one that wakes from a freeze acts on nothing before its next heartbeat finds the
session gone; then `lost` is set and its worker exits, so that its supervisor starts it again as
a standby (nothing held in memory acts on a lock another instance has since taken).
The heartbeat also keeps the instance's row in `worker_instances`, which /health lists."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg

from infra import db

log = logging.getLogger(__name__)

# A heartbeat that failed: PostgreSQL away, or too slow to answer within half the lease.
LEASE_FAILURES: tuple[type[Exception], ...] = (TimeoutError, *db.UNAVAILABLE)
LOST_EXIT_CODE = 3  # a worker that lost its lease exits with this; its supervisor starts it again


def lock_key(domain: str) -> int:
    """A fixed signed 64-bit advisory-lock key per domain name."""
    return int.from_bytes(hashlib.sha256(f"lora-pipeline:{domain}".encode()).digest()[:8], "big", signed=True)


def instance_name(configured: str = "") -> str:
    return configured or f"{socket.gethostname()}:{os.getpid()}"


BEAT = ("INSERT INTO worker_instances (instance, kind, host, pid, leads, nats_ok) VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (instance) DO UPDATE SET kind = EXCLUDED.kind, host = EXCLUDED.host, pid = EXCLUDED.pid,"
        " seen_at = now(), leads = EXCLUDED.leads, nats_ok = EXCLUDED.nats_ok")
LIVE = ("SELECT count(*) FROM worker_instances WHERE kind = %s"
        " AND seen_at > now() - make_interval(secs => %s)")


@dataclass
class Leases:
    """One instance's lease session: its row in `worker_instances` and the locks of the domains it
    leads. `domains` are what it may lead; `run()` heartbeats and takes free domains, at most its
    fair share (the domains over the live instances of its kind, rounded up) so that instances
    started together split the work. There is no rebalancing while they run: an instance that
    joins later stands by until a leader goes away. Once past its start, an instance takes any
    domain it finds free (its leader is gone) at once: a take-over never waits for the fair share."""

    database_url: str
    kind: str
    name: str
    domains: tuple[str, ...] = ()
    lease_s: float = 5.0
    nats_ok: Callable[[], bool] = lambda: True
    held: set[str] = field(default_factory=set)
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    last_ok: float = 0.0
    conn: psycopg.Connection | None = None
    started: float = field(default_factory=time.monotonic)
    settled_after: float = 15.0

    @property
    def tick(self) -> float:
        return min(0.5, self.lease_s / 5)

    def valid(self, domain: str) -> bool:
        """Whether this instance may act for `domain` now: it holds the lock, and its last heartbeat
        is recent enough that PostgreSQL cannot have ended the session since."""
        return domain in self.held and not self.lost.is_set() and time.monotonic() - self.last_ok < self.lease_s / 2

    async def run(self, stop: asyncio.Event, first_wait_s: float | None = None) -> None:
        """Until `stop`: heartbeat, take free domains. Waits `first_wait_s` (default: half a lease)
        before taking any, so that instances started together see each other first and split the
        domains. Its own thread: a heartbeat never waits behind the worker's other blocking calls."""
        wait = self.lease_s / 2 if first_wait_s is None else first_wait_s
        started, loop = time.monotonic(), asyncio.get_running_loop()
        self.settled_after = wait + self.lease_s
        outage = False
        beats = ThreadPoolExecutor(1, thread_name_prefix="lease")
        try:
            while not stop.is_set() and not self.lost.is_set():
                may_take = time.monotonic() - started >= wait
                try:
                    taken = await asyncio.wait_for(loop.run_in_executor(beats, self._beat, may_take), self.lease_s / 2)
                    if outage:
                        log.info("%s: PostgreSQL back; lease session open", self.name)
                    outage = False
                    if taken:
                        self.changed.set()
                except LEASE_FAILURES as exc:
                    if not outage:
                        log.warning("%s: lease heartbeat failed: %s", self.name, _first_line(exc))
                    outage = True
                    self._drop_connection()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.tick)
        finally:
            beats.shutdown(wait=False, cancel_futures=True)  # a heartbeat stuck on a dead server is left behind

    def _beat(self, may_take: bool) -> bool:
        """One heartbeat (in the lease thread); returns whether it took a domain."""
        if self.conn is None or self.conn.closed:
            if self.held:  # the session that held them is gone, and its locks with it
                raise psycopg.OperationalError("the lease session ended")
            self._open()
        conn = self.conn
        assert conn is not None
        conn.execute(BEAT, self._row())
        self.last_ok = time.monotonic()
        return self._take_free(conn) if may_take else False

    def _row(self) -> tuple[object, ...]:
        return self.name, self.kind, socket.gethostname(), os.getpid(), sorted(self.held), self._nats_ok()

    def _nats_ok(self) -> bool:
        try:
            return bool(self.nats_ok())
        except Exception:  # noqa: BLE001 - a client not connected yet may raise instead of answering
            return False

    def _open(self) -> None:
        conn = psycopg.connect(self.database_url, autocommit=True, connect_timeout=max(1, math.ceil(self.lease_s)))
        # PostgreSQL ends the session once it is silent for the lease: its locks go with it.
        conn.execute(f"SET idle_session_timeout = {int(self.lease_s * 1000)}")
        self.conn = conn

    def _take_free(self, conn: psycopg.Connection) -> bool:
        free = [d for d in self.domains if d not in self.held]
        if not free:
            return False
        share = len(self.domains)
        if time.monotonic() - self.started < self.settled_after:  # starting: its fair share of the free ones
            live = conn.execute(LIVE, (self.kind, 3 * self.tick)).fetchone()  # a dead one's row is soon stale
            share = math.ceil(len(self.domains) / max(1, live[0] if live else 1))
        taken: set[str] = set()
        for domain in free:
            if len(self.held) + len(taken) >= share:
                break
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(domain),)).fetchone()
            if row is not None and row[0]:
                taken.add(domain)
                log.info("%s: leads %s", self.name, domain)
        if not taken:
            return False
        self.held = self.held | taken  # all at once: the worker starts what it took together
        conn.execute(BEAT, self._row())
        return True

    def _lose(self, why: str) -> None:
        log.error("%s: lost its lease (%s); stopping so that a standby leads", self.name, why)
        self.lost.set()
        self.changed.set()

    def _drop_connection(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        if self.held and not self.lost.is_set():
            self._lose(f"its PostgreSQL session ended while it led {', '.join(sorted(self.held))}")

    async def wait_for_any(self, stop: asyncio.Event, domains: Iterable[str], timeout: float | None = None) -> set[str]:
        """Blocks until this instance leads one of `domains` (or stops, lost its lease, or `timeout`
        passed); returns them."""
        wanted = set(domains)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not stop.is_set() and not self.lost.is_set() and (deadline is None or time.monotonic() < deadline):
            if led := wanted & self.held:
                return led
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), self.tick)
        return set()

    def close(self) -> None:
        """Leaves: the row goes, the locks with the session."""
        conn, self.conn = self.conn, None
        if conn is None or conn.closed:
            return
        with contextlib.suppress(Exception):
            conn.execute("DELETE FROM worker_instances WHERE instance = %s", (self.name,))
        with contextlib.suppress(Exception):
            conn.close()


@contextlib.asynccontextmanager
async def registered(database_url: str, kind: str, name: str, lease_s: float,
                     nats_ok: Callable[[], bool] = lambda: True) -> AsyncIterator[Leases]:
    """An instance that leads nothing (a web process): its row in worker_instances while it runs."""
    leases, stop = Leases(database_url, kind, name, (), lease_s, nats_ok), asyncio.Event()
    beating = asyncio.create_task(leases.run(stop))
    try:
        yield leases
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(beating, 2 * lease_s)
        await asyncio.to_thread(leases.close)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class NotLeaderError(Exception):
    """This instance may not act for the domain now (its lease is not confirmed): the message is
    handed back and the leader (this one once confirmed, or the standby) takes it."""
