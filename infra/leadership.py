"""Leaders and standbys, for every worker run more than once (docs/operations.md, "Running on
several machines").

A decision domain (the relay, each event-store projection, provisioning, the telemetry reactor,
the notifications' clock) is led by the instance whose database session holds its PostgreSQL
advisory lock. That session is a lease: a thread of the instance's own heartbeats on it every
`tick` (neither a busy event loop nor a slow answer under load delays it or counts against it),
and PostgreSQL itself ends a session silent for `lease_s` (`idle_session_timeout`), which frees its
locks, so a frozen leader (SIGSTOP, a paused host) is replaced as surely as a dead one, whose
session ends with its connection. A leader acts only while its last heartbeat was sent less than
half a lease ago (`Leases.valid`): one that wakes from a freeze acts on nothing before a heartbeat
answers.

Each take of a domain counts a generation (`lease_generations`). A leader whose session ended (a
PostgreSQL restart, a freeze) holds its domains *suspended*: it opens a new session and takes them
again if their generation is still its own (nobody led them in between: what it holds in memory is
still true), so a database restart costs no worker a restart. If another instance led one
meanwhile, `lost` is set and the worker exits, for its supervisor to start it again as a standby
(nothing held in memory acts on a lock another instance has taken). The heartbeat also keeps the
instance's row in `worker_instances`, which /health lists."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field

import psycopg

from infra import db

log = logging.getLogger(__name__)

# A heartbeat that failed: PostgreSQL away, or the session ended.
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
TAKE = ("INSERT INTO lease_generations (domain, generation, holder) VALUES (%s, 1, %s) ON CONFLICT (domain)"
        " DO UPDATE SET generation = lease_generations.generation + 1, holder = EXCLUDED.holder, taken_at = now()"
        " RETURNING generation")
GENERATION = "SELECT generation FROM lease_generations WHERE domain = %s"
RESUME = ("UPDATE lease_generations SET generation = generation + 1, taken_at = now()"
          " WHERE domain = %s AND generation = %s AND holder = %s RETURNING generation")


@dataclass
class Leases:
    """One instance's lease session: its row in `worker_instances` and the locks of the domains it
    leads. `domains` are what it may lead; `run()` heartbeats and takes free domains, at most its
    fair share (the domains over the live instances of its kind, rounded up) so that instances
    started together split the work. There is no rebalancing while they run: an instance that
    joins later stands by until a leader goes away. Once past its start, an instance takes any
    domain it finds free (its leader is gone) at once: a take-over never waits for the fair share.
    After a database outage a standby waits a lease before taking free domains, so that the
    leaders from before the outage (reconnecting in their own time on a loaded machine) take theirs
    back first."""

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
    generations: dict[str, int] = field(default_factory=dict)  # domain → the generation this instance took
    suspended: set[str] = field(default_factory=set)  # held when the session ended: taken back, or lost
    suspended_at: float = 0.0
    loop: asyncio.AbstractEventLoop | None = None
    gone: bool = False  # lost, as the lease thread knows it at once (`lost` is set on the event loop)
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)  # one heartbeat, or the close

    @property
    def tick(self) -> float:
        return min(0.5, self.lease_s / 5)

    @property
    def is_lost(self) -> bool:
        return self.gone or self.lost.is_set()

    def valid(self, domain: str) -> bool:
        """Whether this instance may act for `domain` now: it holds the lock, and its last heartbeat
        was sent recently enough that PostgreSQL cannot have ended the session since."""
        return domain in self.held and not self.gone and time.monotonic() - self.last_ok < self.lease_s / 2

    async def run(self, stop: asyncio.Event, first_wait_s: float | None = None) -> None:
        """Until `stop` (or the lease is lost): the heartbeats, in a thread of their own. Waits
        `first_wait_s` (default: half a lease) before taking any domain, so that instances started
        together see each other first and split the domains."""
        wait = self.lease_s / 2 if first_wait_s is None else first_wait_s
        self.settled_after = wait + self.lease_s
        self.loop = asyncio.get_running_loop()
        halt = threading.Event()
        threading.Thread(target=self._heartbeats, args=(halt, wait), name=f"lease-{self.kind}", daemon=True).start()
        try:
            while not stop.is_set() and not self.lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.tick)
        finally:
            halt.set()  # a heartbeat stuck on a dead server is left behind: the thread is a daemon

    def _heartbeats(self, halt: threading.Event, wait: float) -> None:
        """The lease thread: a heartbeat every tick; a failed one ends the session (its domains
        suspended) and the next opens another."""
        may_take_at, outage = time.monotonic() + wait, None
        while not halt.is_set() and not self.gone:
            if outage is None and self.last_ok and (late := time.monotonic() - self.last_ok) > self.lease_s / 2:
                log.warning("%s: heartbeat %.1f s after the last one (lease %.0f s)", self.name, late, self.lease_s)
            try:
                with self.lock:
                    if self.closed:
                        return
                    taken = self._beat(time.monotonic() >= may_take_at)
                if outage is not None:
                    log.info("%s: PostgreSQL back after %.1f s; lease session open", self.name,
                             time.monotonic() - outage)
                    outage, may_take_at = None, max(may_take_at, time.monotonic() + self.lease_s)
                if taken:
                    self._signal(self.changed)
            except Exception as exc:  # noqa: BLE001 - any failure ends this session; the next beat opens one
                if outage is None:
                    log.warning("%s: lease heartbeat failed: %s", self.name, _first_line(exc),
                                exc_info=not isinstance(exc, LEASE_FAILURES))
                    outage = time.monotonic()
                self._session_ended()
            halt.wait(self.tick)

    def _beat(self, may_take: bool) -> bool:
        """One heartbeat; returns whether it took (or took back) a domain."""
        if self.conn is None or self.conn.closed:
            self._open()
            if self.closed:  # closed (without waiting any longer) while this heartbeat was connecting
                self._session_ended()
                return False
        conn = self.conn
        assert conn is not None
        sent = time.monotonic()
        resumed = self._resume(conn) if self.suspended else False
        conn.execute(BEAT, self._row())
        self.last_ok = sent
        return (self._take_free(conn) if may_take else False) or resumed

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
        free = [d for d in self.domains if d not in self.held and d not in self.suspended]
        if not free:
            return False
        share = len(self.domains)
        if time.monotonic() - self.started < self.settled_after:  # starting: its fair share of the free ones
            live = conn.execute(LIVE, (self.kind, 3 * self.tick)).fetchone()  # a dead one's row is soon stale
            share = math.ceil(len(self.domains) / max(1, live[0] if live else 1))
        taken: set[str] = set()
        for domain in free:
            if len(self.held) + len(self.suspended) + len(taken) >= share:
                break
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(domain),)).fetchone()
            if row is not None and row[0]:
                generation = conn.execute(TAKE, (domain, self.name)).fetchone()
                self.generations[domain] = generation[0] if generation else 0
                taken.add(domain)
                log.info("%s: leads %s", self.name, domain)
        if not taken:
            return False
        self.held = self.held | taken  # all at once: the worker starts what it took together
        conn.execute(BEAT, self._row())
        return True

    def _resume(self, conn: psycopg.Connection) -> bool:
        """Takes back, on this new session, the domains the ended one held, each only if nobody led
        it in between (its generation is still ours); else the lease is lost. A lock still held (by
        our old session, not yet ended on the server) is tried again, for at most two leases."""
        resumed: set[str] = set()
        for domain in sorted(self.suspended):
            row = conn.execute(GENERATION, (domain,)).fetchone()
            if row is None or row[0] != self.generations.get(domain):
                return self._lose(f"another instance led {domain} while its session was down")
            locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(domain),)).fetchone()
            if not (locked and locked[0]):
                if time.monotonic() - self.suspended_at > 2 * self.lease_s:
                    return self._lose(f"{domain} stayed locked by another session")
                continue
            row = conn.execute(RESUME, (domain, self.generations[domain], self.name)).fetchone()
            if row is None:
                conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(domain),))
                return self._lose(f"another instance took {domain} meanwhile")
            self.generations[domain] = row[0]
            resumed.add(domain)
            log.info("%s: leads %s again (nobody led it while its session was down)", self.name, domain)
        self.suspended -= resumed
        self.held = self.held | resumed
        return bool(resumed)

    def _lose(self, why: str) -> bool:
        log.error("%s: lost its lease (%s); stopping so that a standby leads", self.name, why)
        self.gone = True
        self._signal(self.lost)
        self._signal(self.changed)
        return False

    def _session_ended(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        if self.held:
            if not self.suspended:
                self.suspended_at = time.monotonic()
            self.suspended |= self.held
            self.held = set()
            log.warning("%s: its lease session ended while it led %s; it leads them again if nobody else does"
                        " meanwhile", self.name, ", ".join(sorted(self.suspended)))
            self._signal(self.changed)

    def _signal(self, event: asyncio.Event) -> None:
        """Sets an event of the worker's loop from the lease thread."""
        if self.loop is None:
            event.set()
            return
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
            self.loop.call_soon_threadsafe(event.set)

    async def wait_for_any(self, stop: asyncio.Event, domains: Iterable[str], timeout: float | None = None) -> set[str]:
        """Blocks until this instance leads one of `domains` (or stops, lost its lease, or `timeout`
        passed); returns them."""
        wanted = set(domains)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not stop.is_set() and not self.is_lost and (deadline is None or time.monotonic() < deadline):
            if led := wanted & self.held:
                return led
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), self.tick)
        return set()

    def close(self) -> None:
        """Leaves: the row goes, the locks with the session (after a heartbeat under way, if it ends soon)."""
        locked = self.lock.acquire(timeout=self.lease_s / 2)
        try:
            self.closed = True
            conn, self.conn = self.conn, None
            if conn is None or conn.closed:
                return
            with contextlib.suppress(Exception):
                conn.execute("DELETE FROM worker_instances WHERE instance = %s", (self.name,))
            with contextlib.suppress(Exception):
                conn.close()
        finally:
            if locked:
                self.lock.release()


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
