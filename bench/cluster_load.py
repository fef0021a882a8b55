"""Sustained telemetry at rising rates, with 1 and with 2 instances of each worker (issue #21).

    python bench/cluster_load.py [--rates 250,500,1000,2000,3000,5000,7000,10000] [--seconds 15]
                                 [--pods 100] [--instances 1,2] [--embedded-pg] [--tries 2]

Per instance count N, on fresh services (a scratch database on 127.0.0.1:5432 or an embedded
PostgreSQL, a private nats-server; bench/relay_throughput.py's): N relays, N projections workers
and N handlers workers (`bench.instant_pods`: the real handlers worker with pods that start at
once), the instances sharing the work as in production (infra/leadership.py). `--pods` jobs are
queued through the application and get their instant pods; then simulated pods publish `step`
telemetry (the agent's subject, body and message ids): a warm-up, not measured, takes job i to step
1 + i mod 25 (each job's first step is a progress point, a burst of `--pods` at once; the next ones
then come spread over the jobs, as real pods' do), then each rate in turn for `--seconds`.

Live read-model lag per message: publish acknowledged → first seen by a 50 ms poller in
`job_metrics` (its step's row: TELEMETRY → metrics projection) and, for the steps the telemetry reactor
recorded progress at (every 25 steps of a job, at most every 5 s: read back from the event store), in
`jobs` (telemetry reactor → ProgressRecorded stored → relay → EVENTS → jobs projection). The knee is the
highest rate whose p99 lag stays within 1 s in both, and whose messages were all published at the
asked rate; a rate past it is tried once more (`--tries`: a shared machine's load spikes) before
it counts. Prints the knee for each N and the 2-vs-1 ratio, with the load average."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

import psycopg  # noqa: E402
from psycopg.conninfo import conninfo_to_dict  # noqa: E402

from bench.reaction_time import queue_job  # noqa: E402
from bench.relay_throughput import Services  # noqa: E402
from domain.applications import BudgetPolicy  # noqa: E402
from infra import bus, db, telemetry  # noqa: E402
from infra.eventstore import EventStore  # noqa: E402
from infra.objectstore import ObjectStore  # noqa: E402
from tests.agent_helpers import small_training_file  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TEAM, LIMIT = "bench", 10**9
TARGET_LAG_S = 1.0
TARGET_KNEE = 5000
PROGRESS_EVERY = 25  # the telemetry reactor's throttle (handlers/telemetry.py)


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


class Poller(threading.Thread):
    """When each job's newest step first shows in job_metrics and in jobs."""

    QUERY = ("SELECT j::text, (SELECT max(step) FROM job_metrics WHERE job_id = j),"
             " (SELECT step FROM jobs WHERE id = j) FROM unnest(%s::uuid[]) AS j")

    def __init__(self, database_url: str, jobs: list[str]) -> None:
        super().__init__(daemon=True)
        self.conn = psycopg.connect(database_url, autocommit=True)
        self.jobs = jobs
        self.seen: dict[str, dict[str, list[tuple[int, float]]]] = {"job_metrics": {}, "jobs": {}}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            now = time.perf_counter()
            for job, metric_step, job_step in self.conn.execute(self.QUERY, (self.jobs,)):
                for model, value in (("job_metrics", metric_step), ("jobs", job_step)):
                    history = self.seen[model].setdefault(job, [])
                    if value is not None and (not history or value > history[-1][0]):
                        history.append((value, now))
            time.sleep(0.05)

    def first_seen(self, model: str, job: str, step: int) -> float | None:
        for value, at in self.seen[model].get(job, []):
            if value >= step:
                return at
        return None


@dataclass
class Pods:
    """The simulated pods: each job's next step and its message ids."""

    jobs: list[str]
    step: dict[str, int] = field(default_factory=dict)
    nonce: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    published: list[tuple[str, int, float]] = field(default_factory=list)

    def message(self, job: str, kind: str, data: dict) -> tuple[str, bytes, dict[str, str]]:
        seq = self.step.get(job, 0) + 1_000_000 if kind != "step" else data["step"]
        body = json.dumps({"job_id": job, "attempt": 1, "seq": seq, "kind": kind,
                           "at": datetime.now(UTC).isoformat(), "data": data}).encode()
        return telemetry.subject(job, kind), body, {"Nats-Msg-Id": f"{job}:1:{self.nonce}:{kind}:{seq}"}


async def publish_at(nats_url: str, pods: Pods, rate: int, seconds: float) -> tuple[int, float]:
    """`rate` step messages a second, round-robin over the jobs, in 10 ms slices; returns how many
    were published and the rate achieved (acknowledged)."""
    nc = await bus.connect(nats_url, "bench-pods")
    js = nc.jetstream(publish_async_max_pending=20_000)
    slice_s, sent, started = 0.01, 0, time.perf_counter()
    pending: list[tuple[str, int, asyncio.Future]] = []
    i = 0
    try:
        while (elapsed := time.perf_counter() - started) < seconds:
            due = int(rate * min(seconds, elapsed + slice_s)) - sent
            for _ in range(max(0, due)):
                job = pods.jobs[i % len(pods.jobs)]
                i += 1
                step = pods.step[job] = pods.step.get(job, 0) + 1
                subject, body, headers = pods.message(job, "step", {"step": step, "total_steps": 10**7,
                                                                    "epoch": step / 10**4, "loss": 2.0 / step})
                pending.append((job, step, await js.publish_async(subject, body, headers=headers)))
                sent += 1
            done = [p for p in pending if p[2].done()]
            now = time.perf_counter()
            pods.published.extend((job, step, now) for job, step, _ in done)
            pending = [p for p in pending if not p[2].done()]
            await asyncio.sleep(max(0.0, started + elapsed + slice_s - time.perf_counter()))
        for job, step, future in pending:
            await future
            pods.published.append((job, step, time.perf_counter()))
        achieved = sent / (time.perf_counter() - started)
    finally:
        await nc.close()
    return sent, achieved


async def warm_up(nats_url: str, pods: Pods) -> None:
    """Not measured: job i's steps 1 … 1 + i mod 25. Every job's first step is a progress point (a
    burst of as many ProgressRecorded as jobs, whatever the rate), and the next ones (26, 51, …)
    then come spread over the jobs, as real pods' do, instead of all at once."""
    nc = await bus.connect(nats_url, "bench-pods")
    js = nc.jetstream(publish_async_max_pending=20_000)
    try:
        futures = []
        for i, job in enumerate(pods.jobs):
            for step in range(1, 2 + i % PROGRESS_EVERY):
                pods.step[job] = step
                subject, body, headers = pods.message(job, "step", {"step": step, "total_steps": 10**7,
                                                                    "epoch": step / 10**4, "loss": 2.0 / step})
                futures.append(await js.publish_async(subject, body, headers=headers))
        await asyncio.gather(*futures)
    finally:
        await nc.close()


async def announce_training(nats_url: str, pods: Pods) -> None:
    nc = await bus.connect(nats_url, "bench-pods")
    js = nc.jetstream()
    try:
        for job in pods.jobs:
            subject, body, headers = pods.message(job, "stage", {"stage": "training", "status": "Training..."})
            await js.publish(subject, body, headers=headers)
    finally:
        await nc.close()


async def reactor_caught_up(nats_url: str) -> bool:
    """Whether the telemetry reactor has handled every message of its partitions."""
    nc = await bus.connect(nats_url, "bench-check")
    try:
        js = nc.jetstream()
        for domain in telemetry.PARTITION_DOMAINS:
            info = await js.consumer_info(bus.TELEMETRY_PARTS_STREAM, f"handler-{domain}")
            if info.num_pending or info.num_ack_pending:
                return False
        return True
    finally:
        await nc.close()


def recorded_progress(database_url: str, samples: list[tuple[str, int, float]]) -> list[tuple[str, int, float]]:
    """The published steps the telemetry reactor recorded a ProgressRecorded for."""
    published = {(job, step): at for job, step, at in samples}
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT originator_id::text, state FROM pipeline_events"
                            " WHERE topic = 'TrainingJob.ProgressRecorded'").fetchall()
    steps = [(job, json.loads(state)["step"]) for job, state in rows]
    return [(job, step, published[job, step]) for job, step in steps if (job, step) in published]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("inf")


def lags(poller: Poller, samples: list[tuple[str, int, float]], model: str) -> tuple[list[float], int]:
    found, missing = [], 0
    for job, step, acked in samples:
        seen = poller.first_seen(model, job, step)
        if seen is None:
            missing += 1
        else:
            found.append(max(0.0, seen - acked))
    return found, missing


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuMeter:
    """CPU used per part of the deployment while a rate runs: our workers by kind, nats-server, the
    PostgreSQL backends serving this database, this publisher. Independent of how busy the machine is."""

    parts: dict[str, list[int]]
    database_url: str
    database: str

    def pids(self) -> dict[str, list[int]]:
        found = dict(self.parts)
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            found["postgresql"] = [r[0] for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (self.database,))]
        found["publisher"] = [os.getpid()]
        return found

    def sample(self) -> dict[str, dict[int, float]]:
        return {part: {pid: cpu_seconds(pid) for pid in pids} for part, pids in self.pids().items()}

    @staticmethod
    def used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
        return {part: sum(now - before.get(part, {}).get(pid, 0.0) for pid, now in pids.items())
                for part, pids in after.items()}


@dataclass
class Step:
    rate: int
    achieved: float
    metrics_p99: float
    jobs_p99: float
    missing: int
    cpu_us: dict[str, float] = field(default_factory=dict)  # per message, by part

    @property
    def ok(self) -> bool:
        return (self.metrics_p99 <= TARGET_LAG_S and self.jobs_p99 <= TARGET_LAG_S and self.missing == 0
                and self.achieved >= 0.95 * self.rate)


def start_workers(n: int, env: dict[str, str], logs: Path) -> list[subprocess.Popen]:
    kinds = {"relay": ["-m", "pipeline", "relay"], "projections": ["-m", "pipeline", "projections", "run"],
             "handlers": ["-m", "bench.instant_pods"]}
    children = []
    for i in range(1, n + 1):
        for kind, argv in kinds.items():
            own = {"PIPELINE_INSTANCE": f"{kind}-{i}", "BENCH_PODS_LOG": str(logs / f"pods-{i}.jsonl")}
            child = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env | own,
                                     stdout=(logs / f"{kind}-{i}.log").open("wb"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
            child.kind = kind  # type: ignore[attr-defined] - which part of the deployment it is
            children.append(child)
    return children


def wait_until(predicate, timeout: float, what: str) -> None:  # noqa: ANN001 - a callable of no arguments
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def one_deployment(n: int, args: argparse.Namespace, tmp: Path) -> list[Step]:
    services = Services(tmp)
    services.start(args.embedded_pg)
    children: list[subprocess.Popen] = []
    try:
        db.migrate(services.database_url)
        policy = BudgetPolicy(TEAM, default_limit=Decimal(LIMIT))
        store = EventStore.open(services.database_url, pool_size=2, policy=policy)

        async def prepare() -> object:
            nc = await bus.connect(services.nats_url, "bench-setup")
            try:
                await bus.declare(nc.jetstream())
                path = tmp / "train.json"
                path.write_bytes(small_training_file(40))
                return await ObjectStore(nc.jetstream()).put_file("files", "bench/train.json", path)
            finally:
                await nc.close()

        training_file = asyncio.run(prepare())
        env = os.environ | {"DATABASE_URL": services.database_url, "NATS_URL": services.nats_url,
                            "PIPELINE_TEAM": TEAM, "PIPELINE_BUDGET_LIMIT": str(LIMIT),
                            "PIPELINE_MAX_RUNNING": str(args.pods + 10), "PIPELINE_MAX_QUEUED": str(args.pods + 10)}
        for name in ("PIPELINE_NATS_AUTH_DIR", "PIPELINE_FAULT", "PIPELINE_INSTANCE"):
            env.pop(name, None)
        children = start_workers(n, env, tmp)
        jobs = [str(queue_job(store.app, training_file, f"load job {i:03d}")) for i in range(args.pods)]
        with psycopg.connect(services.database_url, autocommit=True) as conn:
            pods_started = "SELECT count(*) FROM pipeline_events WHERE topic = 'TrainingJob.PodStarted'"
            wait_until(lambda: conn.execute(pods_started).fetchone()[0] >= len(jobs), 300, "every job's pod")
        pods = Pods(jobs)
        asyncio.run(announce_training(services.nats_url, pods))
        with psycopg.connect(services.database_url, autocommit=True) as conn:
            wait_until(lambda: conn.execute("SELECT count(*) FROM jobs WHERE status = 'training'").fetchone()[0]
                       == len(jobs), 120, "every job training")
        asyncio.run(warm_up(services.nats_url, pods))
        with psycopg.connect(services.database_url, autocommit=True) as conn:
            wait_until(lambda: conn.execute("SELECT count(*) FROM jobs WHERE step >= 1").fetchone()[0] == len(jobs)
                       and conn.execute("SELECT count(*) FROM job_metrics").fetchone()[0] == sum(pods.step.values()),
                       120, "the warm-up's steps in the read models")
        log(f"{n} instance(s) of each worker; {len(jobs)} jobs training on instant pods; load average {load()}")
        poller = Poller(services.database_url, jobs)
        poller.start()
        kinds: dict[str, list[int]] = {}
        for child in children:
            kinds.setdefault(child.kind, []).append(child.pid)  # type: ignore[attr-defined]
        assert services._nats is not None and services._nats.process is not None
        kinds["nats-server"] = [services._nats.process.pid]
        database = str(conninfo_to_dict(services.database_url).get("dbname"))
        meter = CpuMeter(kinds, services.database_url, database)
        steps: list[Step] = []
        try:
            def one_rate(rate: int) -> Step:
                pods.published.clear()
                before = meter.sample()
                sent, achieved = asyncio.run(publish_at(services.nats_url, pods, rate, args.seconds))
                samples = list(pods.published)
                drained = time.monotonic() + 30
                while time.monotonic() < drained and not (
                        all(poller.first_seen("job_metrics", j, n) for j, n, _ in samples[-len(jobs):])
                        and asyncio.run(reactor_caught_up(services.nats_url))):
                    time.sleep(0.1)
                # The steps the telemetry reactor recorded progress at (every 25 steps, at most every 5 s a job:
                # handlers/telemetry.py), and when each was published.
                progress = recorded_progress(services.database_url, samples)
                while time.monotonic() < drained and not all(poller.first_seen("jobs", j, n) for j, n, _ in progress):
                    time.sleep(0.1)
                used = CpuMeter.used(before, meter.sample())
                metric_lags, missing = lags(poller, samples, "job_metrics")
                job_lags, job_missing = lags(poller, progress, "jobs")
                step = Step(rate, achieved, percentile(metric_lags, 0.99), percentile(job_lags, 0.99),
                            missing + job_missing, {part: 1e6 * cpu / sent for part, cpu in used.items()})
                log(f"  {rate:>6} msg/s asked, {achieved:>8,.0f} published: lag p50/p99 job_metrics"
                    f" {1000 * statistics.median(metric_lags or [0]):5.0f}/{1000 * step.metrics_p99:6.0f} ms,"
                    f" jobs {1000 * statistics.median(job_lags or [0]):5.0f}/{1000 * step.jobs_p99:6.0f} ms"
                    f" ({len(progress)} progress points), unseen {step.missing}; load average {load()}"
                    f"  {'ok' if step.ok else 'PAST THE KNEE'}")
                total, cores = sum(step.cpu_us.values()), os.cpu_count() or 2
                parts = sorted(step.cpu_us.items(), key=lambda x: -x[1])
                log("           CPU per message: " + ", ".join(f"{part} {us:.0f} µs" for part, us in parts)
                    + f"; total {total:.0f} µs: {cores} idle cores would hold ~{cores * 1e6 / total:,.0f} msg/s")
                return step

            for rate in args.rates:
                for attempt in range(1, args.tries + 1):
                    step = one_rate(rate)
                    steps.append(step)
                    if step.ok or attempt == args.tries:
                        break
                    log("           (a shared machine: this rate once more)")
                if not step.ok:
                    break
                for child in children:
                    if child.poll() is not None:
                        raise RuntimeError(f"{child.args} exited with {child.returncode} (logs in {tmp})")
        finally:
            poller.stop.set()
            poller.join(5)
        store.close()
        return steps
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
        services.stop()


def knee(steps: list[Step]) -> int:
    good = [s.rate for s in steps if s.ok]
    return max(good) if good else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=lambda s: [int(x) for x in s.split(",")],
                        default=[250, 500, 1000, 2000, 3000, 5000, 7000, 10000])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--instances", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    parser.add_argument("--embedded-pg", action="store_true")
    parser.add_argument("--tries", type=int, default=2,
                        help="tries of a rate before it counts as past the knee (2: a shared machine's spikes)")
    args = parser.parse_args()
    log(f"load average before: {load()} ({os.cpu_count()} cores)")
    knees = {}
    for n in args.instances:
        tmp = Path(tempfile.mkdtemp(prefix=f"cluster-load-{n}-"))
        try:
            knees[n] = knee(one_deployment(n, args, tmp))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log(f"knee with {n} instance(s) of each worker: {knees[n]:,} telemetry msg/s ")
    print()
    for n, value in knees.items():
        target = f"   (target ≥ {TARGET_KNEE:,}: {'PASS' if value >= TARGET_KNEE else 'FAIL'})" if n == 1 else ""
        print(f"knee, {n} instance(s) of each worker: {value:>7,} msg/s{target}")
    if 1 in knees and 2 in knees:
        ratio = f"{knees[2] / knees[1]:.2f}×" if knees[1] else "n/a (one instance held not even the lowest rate)"
        print(f"2 vs 1 instances: {ratio}")
    print(f"load average after: {load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
