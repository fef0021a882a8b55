"""Read-model rebuild throughput and live lag.

    python bench/rebuild_throughput.py [--events 100000] [--telemetry 1000000] [--repeats 3]
                                       [--lag-seconds 30] [--lag-jobs 50] [--profile] [--workers N]
                                       [--embedded-pg]

Standalone script (not a pytest test); services as in bench/relay_throughput.py (a scratch database
on 127.0.0.1:5432 or an embedded PostgreSQL, a private nats-server), removed at the end.

1. History (untimed): `--events` domain events made by the real domain objects and saved through
   the application: jobs queued on the budget, provisioned, training with progress every step,
   checkpoints, epochs, one preemption and recovery each, spend charged, completion, release.
   `--telemetry` agent `step` messages (an `eval` every 100 steps) published to TELEMETRY.
2. Rebuild, median of `--repeats`, each against a baseline measured in the same run:
     scan     `select_notifications` over the whole store, 1,000 rows a page (what a rebuild reads);
     rebuild  every event-store read model emptied and rebuilt in one pass and one transaction
              (`runner.rebuild_all`: projections/replay.py, the live consumers' folds and rows,
              built in worker processes, one per core up to 4);
   and, for the metric history, a plain read of the stream (ephemeral consumer, no acks) against
   `metrics.rebuild`. Target: rebuild ≥ 25 % of scan. Also each projection rebuilt on its own.
3. Live lag: `pipeline relay` and `pipeline projections run` as processes; `--lag-jobs` jobs in
   training, each publishing a `step` message 5 times a second for `--lag-seconds`, the telemetry
   reactor's throttle (a ProgressRecorded every 25 steps or 30 s) played in this process. Lag =
   stored (commit returned) or published (ack returned) → first seen by a 5 ms poller in `jobs`,
   `event_log` and `job_costs` (domain events) or `job_metrics` (telemetry). Target: p99 < 500 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import json
import math
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

import psycopg  # noqa: E402

from bench.relay_throughput import Services  # noqa: E402
from domain.aggregates.training_job import TrainingJob  # noqa: E402
from domain.applications import BudgetPolicy, Pipeline  # noqa: E402
from domain.job_status import JobStatus  # noqa: E402
from domain.values import ArtifactRef  # noqa: E402
from infra import bus, db, telemetry  # noqa: E402
from infra.eventstore import EventStore  # noqa: E402
from projections import metrics, runner  # noqa: E402
from projections.partition import END  # noqa: E402
from projections.replay import default_workers  # noqa: E402
from projections.runner import PROJECTIONS, rebuild  # noqa: E402
from tests.factories import configuration, job_fields  # noqa: E402

TARGET_RATIO = 0.25
TARGET_P99_MS = 500.0
POLICY = BudgetPolicy(team="bench", default_limit=Decimal(10**9))
CHECKPOINT = ArtifactRef("checkpoints", "bench/checkpoint.tar", "c" * 64, 1_000)
ADAPTER = ArtifactRef("adapters", "bench/adapter.tar", "d" * 64, 1_000)
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
JOBS = 50
STEPS_PER_ROUND = 20


# --------------------------------------------------------------------------- history

def fill_store(app: Pipeline, events: int, jobs: int = JOBS) -> int:
    """Jobs advance together, STEPS_PER_ROUND steps per round, each round saved in one transaction
    (jobs and budget), so events of different jobs interleave as they do live."""
    ids = [app.create_job(**job_fields(name=f"bench job {i:03d}", at=T0)) for i in range(jobs)]
    for job_id in ids:
        app.configure_job(job_id, **configuration(at=T0))
        app.start_job(job_id, "bench", "member", T0)
    budget = app.budget("2026-11")
    running = [app.get_job(job_id) for job_id in ids]
    per_round = jobs * (STEPS_PER_ROUND * 1.011 + 0.1)  # progress, checkpoints, epochs, spend every 10 rounds
    rounds = max(2, math.ceil((events - app.recorder.max_notification_id()) / per_round))
    total = rounds * STEPS_PER_ROUND
    for r in range(rounds):
        at = T0 + timedelta(minutes=5 + r)
        for i, job in enumerate(running):
            advance(job, r, rounds, total, at + timedelta(seconds=i))
            if r % 10 == 9 or r == rounds - 1:
                budget.record_spend(job.id, job.cost(at + timedelta(seconds=i)).total_cost, at + timedelta(seconds=i))
        if r == rounds - 1:
            for job in running:
                budget.release(job.id, at + timedelta(minutes=1))
        app.save(*running, budget)
    return app.recorder.max_notification_id()


def advance(job: TrainingJob, r: int, rounds: int, total: int, at: datetime) -> None:
    """One round of a job's life: start on a pod, train, a preemption half-way, the end."""
    attempt = job.attempt
    if r == 0:
        attempt = job.start_provisioning("spot", at)
        job.pod_started(f"{job.id}-1", attempt, Decimal("2.49"), at)
        job.change_stage(JobStatus.PREPROCESSING, attempt, at)
        job.change_stage(JobStatus.TRAINING, attempt, at)
    if r == rounds // 2:
        job.interrupt("spot instance preempted", job.last_step, attempt, at)
        job.pod_stopped(f"{job.id}-{attempt}", at)
        job.begin_recovery(at)
        attempt = job.start_provisioning("spot", at)
        job.pod_started(f"{job.id}-{attempt}", attempt, Decimal("2.61"), at)
        job.change_stage(JobStatus.TRAINING, attempt, at)
    for s in range(r * STEPS_PER_ROUND + 1, (r + 1) * STEPS_PER_ROUND + 1):
        job.record_progress(s, total, s / 1000, 2.0 / s, attempt, at)
        if s % 100 == 0:
            job.record_checkpoint(s, CHECKPOINT, attempt, at)
        if s % 1000 == 0:
            job.complete_epoch(s // 1000, 1.0 / s, attempt, at)
    if r == rounds - 1:
        job.complete(ADAPTER, {"final_loss": 2.0 / total}, attempt, at)
        job.pod_stopped(f"{job.id}-{attempt}", at)


def telemetry_messages(jobs: int, steps: int) -> Iterator[tuple[str, bytes, dict[str, str]]]:
    ids = [str(uuid.uuid4()) for _ in range(jobs)]
    for n in range(1, steps + 1):
        at = (T0 + timedelta(seconds=n)).isoformat()
        for job in ids:
            step = {"step": n, "total_steps": steps, "epoch": n / 1000, "loss": 2.0 / n, "learning_rate": 2e-4,
                    "grad_norm": 0.5, "tokens_per_s": 1234.5, "gpu_utilization": 87.0, "gpu_memory_used_gb": 61.5}
            kinds = [("step", step)] + ([("eval", {"step": n, "epoch": n / 1000, "eval_loss": 1.0 / n})]
                                        if n % 100 == 0 else [])
            for kind, data in kinds:
                body = json.dumps({"job_id": job, "attempt": 1, "seq": n, "kind": kind, "at": at, "data": data})
                yield telemetry.subject(job, kind), body.encode(), {"Nats-Msg-Id": f"{job}:{kind}:{n}"}


async def publish_all(nats_url: str, items: Iterator[tuple[str, bytes, dict[str, str]]]) -> int:
    """Publishes with publish_async, 20,000 acks awaited at a time; returns how many."""
    nc = await bus.connect(nats_url, "bench-agent")
    count = 0
    try:
        js = nc.jetstream(publish_async_max_pending=4000)
        while chunk := list(itertools.islice(items, 20_000)):
            await asyncio.gather(*[await js.publish_async(s, b, headers=h) for s, b, h in chunk])
            count += len(chunk)
    finally:
        await nc.close()
    return count


# --------------------------------------------------------------------------- rebuild

def settle(database_url: str, idle: float = 0.9, longest: float = 90.0) -> str:
    """Waits until the machine is quiet before timing: PostgreSQL's dirty pages written out
    (CHECKPOINT) and the cores ≥ `idle` idle over a second (nats-server goes on storing a million
    published messages for a while after the last ack), `longest` seconds at most."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    started = time.monotonic()
    share = 0.0
    while time.monotonic() - started < longest:
        before = cpu_times()
        time.sleep(1.0)
        after = cpu_times()
        busy, total = after[0] - before[0], after[1] - before[1]
        share = 1 - busy / total if total else 1.0
        if share >= idle:
            break
    return f"{100 * share:.0f} % idle after {time.monotonic() - started:.0f} s"


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all cores, from /proc/stat (Linux); (0, 0) elsewhere."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def scan(app: Pipeline) -> tuple[int, float]:
    started, count, start = time.perf_counter(), 0, 1
    while page := app.recorder.select_notifications(start, 1000):
        count += len(page)
        start = page[-1].id + 1
    return count, time.perf_counter() - started


def rebuild_all(database_url: str, app: Pipeline, workers: int | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its workers; PostgreSQL's not included)."""
    with psycopg.connect(database_url) as conn:
        started, cpu = time.perf_counter(), process_cpu()
        runner.rebuild_all(conn, {app.name: app}, workers=workers)
        return time.perf_counter() - started, process_cpu() - cpu


def process_cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def rebuild_each(database_url: str, app: Pipeline) -> dict[str, tuple[int, float]]:
    out = {}
    with psycopg.connect(database_url) as conn:
        for name, projection in PROJECTIONS.items():
            started = time.perf_counter()
            count = rebuild(conn, projection, {app.name: app})
            out[name] = (count, time.perf_counter() - started)
    return out


async def read_stream(nats_url: str) -> tuple[int, float]:
    nc = await bus.connect(nats_url, "bench-read")
    try:
        started, count = time.perf_counter(), 0
        async for batch in metrics.stream_batches(nc.jetstream()):
            count += len(batch)
        return count, time.perf_counter() - started
    finally:
        await nc.close()


def rebuild_metrics(database_url: str, nats_url: str) -> tuple[int, float]:
    with psycopg.connect(database_url) as conn:
        started = time.perf_counter()
        count = asyncio.run(metrics.rebuild(conn, nats_url))
        return count, time.perf_counter() - started


def median_rate(count: int, seconds: list[float]) -> float:
    return statistics.median(count / s for s in seconds)


# --------------------------------------------------------------------------- live lag

class Poller(threading.Thread):
    """Notes when each (job, version) first shows in jobs / event_log / job_costs and each
    (job, step) in job_metrics, reading only the watched jobs' rows (by index)."""

    QUERIES = {
        "jobs": "SELECT id, version FROM jobs WHERE id = ANY(%(jobs)s)",
        "job_costs": "SELECT job_id, version FROM job_costs WHERE job_id = ANY(%(jobs)s)",
        "event_log": "SELECT j, (SELECT max(originator_version) FROM event_log WHERE originator_id = j)"
                     " FROM unnest(%(jobs)s::uuid[]) j",
        "job_metrics": "SELECT j, (SELECT max(step) FROM job_metrics WHERE job_id = j) FROM unnest(%(jobs)s::uuid[]) j",
    }

    def __init__(self, database_url: str, jobs: list[uuid.UUID]) -> None:
        super().__init__(daemon=True)
        self.conn = psycopg.connect(database_url, autocommit=True)
        self.jobs = jobs
        self.seen: dict[tuple[str, uuid.UUID], list[tuple[int, float]]] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for model, query in self.QUERIES.items():
                now = time.perf_counter()
                for key, value in self.conn.execute(query, {"jobs": self.jobs}):
                    history = self.seen.setdefault((model, key), [])
                    if value is not None and (not history or value > history[-1][0]):
                        history.append((value, now))
            time.sleep(0.005)

    def first_seen(self, model: str, key: uuid.UUID, value: int) -> float | None:
        """When `model` first showed `key` at `value` or beyond."""
        return next((t for v, t in list(self.seen.get((model, key), [])) if v >= value), None)


def start_workers(env: dict[str, str], logs: Path) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-m", "pipeline", *args], env=os.environ | env,
                             stdout=(logs / f"{args[0]}.log").open("wb"), stderr=subprocess.STDOUT,
                             start_new_session=True)
            for args in (["relay"], ["projections", "run"])]


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


async def stream_telemetry(store: EventStore, nats_url: str, jobs: list[uuid.UUID], seconds: float,
                           stored: list[tuple[uuid.UUID, int, float]],
                           published: list[tuple[uuid.UUID, int, float]]) -> None:
    """5 steps a second per job; a ProgressRecorded when the telemetry reactor's throttle says so."""
    nc = await bus.connect(nats_url, "bench-pods")
    js = nc.jetstream()
    last_progress = {job: (0, time.monotonic()) for job in jobs}
    started, tick = time.monotonic(), 0
    try:
        while time.monotonic() - started < seconds:
            tick += 1
            at = datetime.now(UTC)
            futures = []
            for job in jobs:
                data = {"step": tick, "total_steps": 100_000, "epoch": tick / 1000, "loss": 2.0 / tick}
                body = json.dumps({"job_id": str(job), "attempt": 1, "seq": tick, "kind": "step",
                                   "at": at.isoformat(), "data": data}).encode()
                futures.append((job, await js.publish_async(telemetry.subject(job, "step"), body,
                                                            headers={"Nats-Msg-Id": f"{job}:{tick}"})))
            for job, future in futures:
                await future
                published.append((job, tick, time.perf_counter()))
            due = [job for job in jobs if tick - last_progress[job][0] >= 25
                   or time.monotonic() - last_progress[job][1] >= 30]
            for job in due:
                last_progress[job] = (tick, time.monotonic())
                version = await asyncio.to_thread(store.app.update_job, job, lambda j, t=tick, a=at: (
                    j.record_progress(t, 100_000, t / 1000, 2.0 / t, 1, a), j.version)[1])
                stored.append((job, version, time.perf_counter()))
            await asyncio.sleep(max(0.0, started + tick * 0.2 - time.monotonic()))
    finally:
        await nc.close()


def percentiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return pick(0.50), pick(0.99), ordered[-1]


def live_lag(services: Services, args: argparse.Namespace, tmp: Path) -> bool:
    env = {"DATABASE_URL": services.database_url, "NATS_URL": services.nats_url}
    store = EventStore.open(services.database_url, pool_size=2, policy=POLICY)
    jobs = []
    for i in range(args.lag_jobs):
        job = TrainingJob.create(uuid.uuid4(), **job_fields(name=f"live job {i:03d}", at=datetime.now(UTC)))
        job.configure(**configuration(at=datetime.now(UTC)))
        job.queue(datetime.now(UTC))
        job.start_provisioning("spot", datetime.now(UTC))
        job.pod_started(f"live-pod-{i}", 1, Decimal("2.49"), datetime.now(UTC))
        job.change_stage(JobStatus.TRAINING, 1, datetime.now(UTC))
        store.app.save(job)
        jobs.append(job.id)
    with psycopg.connect(services.database_url, autocommit=True) as conn:  # the relay starts from now
        conn.execute("INSERT INTO relay_positions (application, notification_id) VALUES (%s, %s)"
                     " ON CONFLICT (application) DO UPDATE SET notification_id = EXCLUDED.notification_id",
                     (store.app.name, store.app.recorder.max_notification_id() - len(jobs) * 6))
    asyncio.run(purge_telemetry(services.nats_url))  # and the metric consumer from the live telemetry
    workers = start_workers(env, tmp)
    poller = Poller(services.database_url, jobs)
    poller.start()
    stored: list[tuple[uuid.UUID, int, float]] = []
    published: list[tuple[uuid.UUID, int, float]] = []
    try:
        wait_until(lambda: all(poller.first_seen("jobs", j, 6) for j in jobs), 120, "the jobs projected")
        asyncio.run(stream_telemetry(store, services.nats_url, jobs, args.lag_seconds, stored, published))
        last_job, last_version, _ = stored[-1]
        wait_until(lambda: poller.first_seen("job_costs", last_job, last_version)
                   and poller.first_seen("job_metrics", published[-1][0], published[-1][1]), 60, "the last events")
        time.sleep(0.5)
    finally:
        poller.stop.set()
        for worker in workers:
            worker.terminate()
            worker.wait(30)
        store.close()
    rows = []
    ok = True
    for model, samples in (("jobs", stored), ("event_log", stored), ("job_costs", stored),
                           ("job_metrics", published)):
        lags = [1000 * (seen - t) for job, value, t in samples
                if (seen := poller.first_seen(model, job, value)) is not None]
        p50, p99, worst = percentiles(lags)
        rows.append((model, len(lags), len(samples), p50, p99, worst))
        ok = ok and p99 < TARGET_P99_MS and len(lags) == len(samples)
    print(f"\nlive lag: {args.lag_jobs} jobs × 5 steps/s for {args.lag_seconds:.0f} s"
          f" ({len(published)} telemetry messages, {len(stored)} ProgressRecorded events)")
    for model, n, expected, p50, p99, worst in rows:
        print(f"  {model:12s} {n:>6}/{expected:<6} p50 {p50:6.0f} ms   p99 {p99:6.0f} ms   max {worst:6.0f} ms")
    print(f"  target p99 < {TARGET_P99_MS:.0f} ms: {'PASS' if ok else 'FAIL'}")
    return ok


# --------------------------------------------------------------------------- main

def bench(args: argparse.Namespace, services: Services, tmp: Path) -> None:
    print(f"services: {services.where}; nats-server {services.nats_url}")
    db.migrate(services.database_url)
    asyncio.run(declare(services.nats_url))
    store = EventStore.open(services.database_url, pool_size=2, policy=POLICY)
    app = store.app
    try:
        started = time.perf_counter()
        n = fill_store(app, args.events)
        print(f"history: {n:,} domain events in {time.perf_counter() - started:.0f} s (untimed)")
        if args.telemetry:
            started = time.perf_counter()
            steps = math.ceil(args.telemetry / args.telemetry_jobs)
            published = asyncio.run(publish_all(services.nats_url, telemetry_messages(args.telemetry_jobs, steps)))
            print(f"telemetry: {published:,} messages ({args.telemetry_jobs} jobs × {steps:,} steps, an eval"
                  f" every 100) in {time.perf_counter() - started:.0f} s (untimed)")

        print(f"settled: {settle(services.database_url)}")
        scans, rebuilds = [], []
        workers = default_workers(app, END) if args.workers is None else args.workers
        print(f"rebuild: {workers or 'no'} worker process(es) on {os.cpu_count()} core(s)")
        for rep in range(1, args.repeats + 1):
            count, seconds = scan(app)
            scans.append(seconds)
            seconds, cpu = rebuild_all(services.database_url, app, workers)
            rebuilds.append(seconds)
            print(f"  rep {rep}: scan {count / scans[-1]:>9,.0f} ev/s   rebuild (all) {n / rebuilds[-1]:>9,.0f} ev/s"
                  f"   ({seconds:.2f} s, {cpu:.2f} s CPU in Python)")
        scan_rate, rebuild_rate = median_rate(n, scans), median_rate(n, rebuilds)
        ratio = rebuild_rate / scan_rate
        print(f"\nevent store: {n:,} events, median of {args.repeats}")
        print(f"  scan (select_notifications)   {scan_rate:>9,.0f} events/s")
        print(f"  rebuild, all read models      {rebuild_rate:>9,.0f} events/s   {100 * ratio:.1f} % of scan"
              f"   (target ≥ {100 * TARGET_RATIO:.0f} %)  {'PASS' if ratio >= TARGET_RATIO else 'FAIL'}")
        for name, (count, seconds) in rebuild_each(services.database_url, app).items():
            rate = count / seconds if count else 0
            print(f"    {name:12s} alone: {count:>8,} events in {seconds:6.2f} s = {rate:>9,.0f}/s")

        if args.telemetry:
            reads, writes = [], []
            print(f"\nsettled: {settle(services.database_url)}")
            for rep in range(1, args.repeats + 1):
                count, seconds = asyncio.run(read_stream(services.nats_url))
                reads.append(seconds)
                rebuilt, seconds = rebuild_metrics(services.database_url, services.nats_url)
                writes.append(seconds)
                print(f"  rep {rep}: stream read {count / reads[-1]:>9,.0f} msg/s   metrics rebuild"
                      f" {rebuilt / writes[-1]:>9,.0f} msg/s")
            read_rate, write_rate = median_rate(count, reads), median_rate(count, writes)
            print(f"\ntelemetry: {count:,} messages, median of {args.repeats}")
            print(f"  stream read                   {read_rate:>9,.0f} msg/s")
            print(f"  metrics rebuild               {write_rate:>9,.0f} msg/s   {100 * write_rate / read_rate:.1f} % of"
                  f" the read   (target ≥ {100 * TARGET_RATIO:.0f} %)"
                  f"  {'PASS' if write_rate / read_rate >= TARGET_RATIO else 'FAIL'}")

        if args.profile:  # in this process: a profile of the workers' parent would show it waiting
            profiler = cProfile.Profile()
            profiler.enable()
            rebuild_all(services.database_url, app, workers=0)
            profiler.disable()
            print("\nprofile of one rebuild of all read models, without workers (internal time, top 30):")
            pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(30)
    finally:
        store.close()
    if args.lag_seconds > 0:
        live_lag(services, args, tmp)


async def purge_telemetry(nats_url: str) -> None:
    nc = await bus.connect(nats_url, "bench-setup")
    try:
        await nc.jetstream().purge_stream(bus.TELEMETRY_STREAM)
    finally:
        await nc.close()


async def declare(nats_url: str) -> None:
    nc = await bus.connect(nats_url, "bench-setup")
    try:
        await bus.declare(nc.jetstream())
    finally:
        await nc.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="domain events in the history (default 100000)")
    parser.add_argument("--telemetry", type=int, default=1_000_000, help="telemetry steps (default 1000000; 0: none)")
    parser.add_argument("--telemetry-jobs", type=int, default=100, help="jobs the telemetry is spread over (100)")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--lag-seconds", type=float, default=30.0, help="live lag run length (default 30; 0: skip)")
    parser.add_argument("--lag-jobs", type=int, default=50, help="jobs streaming telemetry in the lag run (50)")
    parser.add_argument("--profile", action="store_true", help="also profile one rebuild of all read models")
    parser.add_argument("--workers", type=int, help="rebuild worker processes (default: as the rebuild picks)")
    parser.add_argument("--embedded-pg", action="store_true", help="embedded PostgreSQL even if 5432 answers")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-rebuild-"))
    services = Services(tmp)
    try:
        services.start(args.embedded_pg)
        bench(args, services, tmp)
    finally:
        services.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
