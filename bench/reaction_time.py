"""Reaction time of the control plane, and work lost per interruption (issue #5).

    python bench/reaction_time.py [--runs N] [--quick] [--agent-runs R] [--checkpoint-every K]
                                  [--budget-events E] [--aged-runs M] [--aggregate-cache N] [--embedded-pg]

Part 1, reaction time, through the real path: PostgreSQL (127.0.0.1:5432, user postgres, in a
scratch database `bench_reaction_<random>` dropped at the end; else an embedded one), a private
nats-server, the real relay (`python -m pipeline relay`) and the real handlers worker
(`python -m bench.instant_pods`: `pipeline handlers run` with pods that start at once, so what is
timed is the control plane, not a pod's boot). One job at a time goes through:
  queued → pod 1; Interrupted recorded through the application → pod 2; the agent's `interrupted`
  message on TELEMETRY → pod 3; pod 3 killed without a report → pod 4; Completed recorded
  through the application → budget charged (SpendRecorded) and reservation released (Released).
Between steps the bench plays the agent (stage `training` and a checkpoint on TELEMETRY) and waits
for their effects on EVENTS. Times are wall clock (`time.time()`) taken where things happen: the
bench when a save returns, the provider when `create_pod`/`kill` is called, a handler-side
event's own timestamp (set just before its save) for "stored". Baseline in the same run: the
relay's own latency, event saved → visible on EVENTS (an ordered JetStream consumer in the bench).
Then, with --budget-events E > 0, a few more jobs after E SpendRecorded events were added to this
month's Budget (what charging a running pod every 30 s leaves behind: ~20,000 a week per pod).

Part 2, work lost per interruption, with the real GPU agent (tiny model, CPU; bench/work_lost.py).

Targets: p99 reaction < 1 s; 0 steps lost after SIGTERM; <= checkpoint_every after SIGKILL.
Exits 0 whether the targets are met or not (non-zero only when something breaks).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TypeVar
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

from nats.aio.client import Client  # noqa: E402
from nats.js import JetStreamContext  # noqa: E402

from bench.reaction_rig import EventTap, FakeAgent, PodLog, Seen, Services, now  # noqa: E402
from bench.work_lost import run_work_lost  # noqa: E402
from domain.aggregates.budget import Budget  # noqa: E402
from domain.aggregates.training_job import TrainingJob  # noqa: E402
from domain.applications import Pipeline  # noqa: E402
from domain.budget_month import budget_month  # noqa: E402
from domain.values import ArtifactRef  # noqa: E402
from infra import bus, db  # noqa: E402
from infra.eventstore import EventStore  # noqa: E402
from infra.objectstore import ObjectStore  # noqa: E402
from tests.agent_helpers import small_training_file  # noqa: E402
from tests.factories import configuration, job_fields  # noqa: E402

TARGET_S = 1.0
WARMUP_JOBS = 3
RELAY_PHASES_S = 0.1   # two periods of the relay's idle poll (50 ms) and of a consumer's fetch (50 ms)
LOOP_PHASES_S = 1.0    # about two periods of the handlers' loop (0.5 s + its steps)
T = TypeVar("T")


# --------------------------------------------------------------------------- one job

@dataclass
class Rig:
    app: Pipeline
    tap: EventTap
    pods: PodLog
    nc: Client
    js: JetStreamContext
    training_file: ArtifactRef


# Each reaction, then its stages: (key, label, judged against the target).
REACTIONS = [
    ("queued", "Queued stored → first pod requested", False),
    ("interrupted", "Interrupted stored → new pod requested", True),
    ("interrupted.relay", "  stored → visible on EVENTS (relay)", False),
    ("interrupted.delivery", "  visible → Provisioner.on_event starts (consumer)", False),
    ("interrupted.handling", "  on_event → create_pod (provisioner)", False),
    ("reported", "agent's `interrupted` published → new pod requested", True),
    ("reported.telemetry", "  published → Interrupted stored (telemetry handler)", False),
    ("reported.relay", "  stored → visible on EVENTS (relay)", False),
    ("reported.delivery", "  visible → Provisioner.on_event starts (consumer)", False),
    ("reported.handling", "  on_event → create_pod (provisioner)", False),
    ("killed", "pod killed, no report → new pod requested", True),
    ("killed.noticed", "  killed → Interrupted stored (handlers loop, record_exits)", False),
    ("killed.relay", "  stored → visible on EVENTS (relay)", False),
    ("killed.delivery", "  visible → Provisioner.on_event starts (consumer)", False),
    ("killed.handling", "  on_event → create_pod (provisioner)", False),
    ("charged", "Completed stored → budget charged (SpendRecorded stored)", True),
    ("charged.relay", "  stored → visible on EVENTS (relay)", False),
    ("charged.delivery", "  visible → Provisioner.on_event starts (consumer)", False),
    ("charged.handling", "  on_event → SpendRecorded stored (provisioner)", False),
    ("released", "Completed stored → reservation released (Released stored)", False),
]


def stages(name: str, *times: float) -> dict[str, float]:
    """The reaction `name` from its first to last time, and the stages between consecutive times
    (named as in REACTIONS)."""
    keys = [key.split(".", 1)[1] for key, _, _ in REACTIONS if key.startswith(name + ".")]
    assert len(keys) == len(times) - 1, (name, keys)
    return {name: times[-1] - times[0]} | {f"{name}.{k}": b - a
                                           for k, a, b in zip(keys, times[:-1], times[1:], strict=True)}


async def saved(command: Callable[[], T]) -> tuple[T, float]:
    """Runs an application command in a thread; returns its result and when the save returned."""

    def run() -> tuple[T, float]:
        result = command()
        return result, time.time()

    return await asyncio.to_thread(run)


def queue_job(app: Pipeline, training_file: ArtifactRef, name: str) -> UUID:
    """tests.factories.queue_sample_job, with a training file that exists in the object store."""
    at = now()
    job_id = app.create_job(**job_fields(name=name, training_file=training_file, at=at))
    app.configure_job(job_id, **configuration(at=at))
    app.start_job(job_id, "alice", "member", at)
    return job_id


async def pod_training(rig: Rig, job_id: UUID, attempt: int, step: int) -> FakeAgent:
    """Waits for the attempt's pod, then reports training and a checkpoint; waits for their effect."""
    await rig.tap.first(job_id, TrainingJob.PodStarted, attempt=attempt)
    agent = FakeAgent(rig.js, job_id, attempt)
    await agent.training(step)
    await rig.tap.first(job_id, TrainingJob.CheckpointSaved, step=step)
    return agent


async def at_random_phase(period_s: float) -> None:
    """Waits U(0, period_s): the bench reacts to events the relay delivers, so without this its
    commands would land at a fixed phase of the relay's poll, the consumers' fetches and the
    handlers' loop (kills would always come just after a loop tick); in production they do not."""
    await asyncio.sleep(random.uniform(0, period_s))


def stored_at(seen: Seen) -> float:
    """When a handler-side event was stored: its timestamp, taken just before its save."""
    return seen.event.timestamp.timestamp()


async def one_job(rig: Rig, name: str) -> tuple[dict[str, float], list[float]]:
    """The job's reactions and their stages (seconds), and the relay latencies of the events the
    bench saved itself."""
    app, tap, pods, out, relay = rig.app, rig.tap, rig.pods, {}, []
    await at_random_phase(RELAY_PHASES_S)
    job_id, t = await saved(lambda: queue_job(app, rig.training_file, name))
    relay.append((await tap.first(job_id, TrainingJob.Queued)).t - t)
    out["queued"] = await pods.time_of("create", job_id, 1) - t

    await pod_training(rig, job_id, 1, 10)
    await at_random_phase(RELAY_PHASES_S)
    _, t = await saved(lambda: app.update_job(job_id,
                                              lambda j: j.interrupt("preempted (bench)", j.last_step, 1, now())))
    seen = await tap.first(job_id, TrainingJob.Interrupted)
    out |= stages("interrupted", t, seen.t, await pods.time_of("on_event:TrainingJob.Interrupted", job_id, after=t),
                  await pods.time_of("create", job_id, 2))
    relay.append(seen.t - t)

    agent = await pod_training(rig, job_id, 2, 20)
    await at_random_phase(RELAY_PHASES_S)
    t = time.time()
    await agent.interrupted(25)
    seen = await tap.first(job_id, TrainingJob.Interrupted, after=seen.notification_id)
    out |= stages("reported", t, stored_at(seen), seen.t,
                  await pods.time_of("on_event:TrainingJob.Interrupted", job_id, after=t),
                  await pods.time_of("create", job_id, 3))

    await pod_training(rig, job_id, 3, 30)
    await at_random_phase(LOOP_PHASES_S)
    reply = json.loads((await rig.nc.request("control.pods", json.dumps(
        {"job_id": str(job_id), "action": "kill"}).encode(), timeout=10)).data)
    if not reply.get("pods"):
        raise RuntimeError(f"control.pods killed nothing: {reply}")
    t = await pods.time_of("kill", job_id, 3)
    seen = await tap.first(job_id, TrainingJob.Interrupted, after=seen.notification_id)
    out |= stages("killed", t, stored_at(seen), seen.t,
                  await pods.time_of("on_event:TrainingJob.Interrupted", job_id, after=t),
                  await pods.time_of("create", job_id, 4))

    await pod_training(rig, job_id, 4, 40)
    adapter = ArtifactRef("adapters", f"{job_id}/adapter.tar", "a" * 64, 1)
    await at_random_phase(RELAY_PHASES_S)
    _, t = await saved(lambda: app.update_job(job_id, lambda j: j.complete(adapter, {"steps": 40}, 4, now())))
    seen = await tap.first(job_id, TrainingJob.Completed)
    relay.append(seen.t - t)
    charged = await tap.first(job_id, Budget.SpendRecorded, after=seen.notification_id)
    out |= stages("charged", t, seen.t, await pods.time_of("on_event:TrainingJob.Completed", job_id, after=t),
                  stored_at(charged))
    out["released"] = stored_at(await tap.first(job_id, Budget.Released)) - t
    return out, relay


async def run_jobs(rig: Rig, n: int, label: str, services: Services) -> tuple[dict[str, list[float]], list[float]]:
    samples: dict[str, list[float]] = defaultdict(list)
    relay: list[float] = []
    started = time.monotonic()
    for i in range(n):
        services.check_workers()
        out, lat = await one_job(rig, f"{label}-{i:04d}")
        for key, value in out.items():
            samples[key].append(value)
        relay += lat
        if (i + 1) % 25 == 0:
            print(f"  {label}: {i + 1}/{n} jobs ({time.monotonic() - started:.0f} s)", flush=True)
    return samples, relay


def age_budget(app: Pipeline, events: int, chunk: int = 5000) -> int:
    """Adds `events` SpendRecorded events to this month's Budget, as a pod charged every 30 s leaves
    them (for one job that stays under every alert threshold); returns the Budget's version."""
    budget = app.budget(budget_month(now(), app.policy.time_zone))
    assert budget is not None, "the budget exists once a job was queued"
    job_id, at = uuid.uuid4(), now()
    for i in range(1, events + 1):
        budget.record_spend(job_id, Decimal(i) / Decimal(100_000), at)
        if i % chunk == 0 or i == events:
            app.save(budget)
    return budget.version


# --------------------------------------------------------------------------- report

def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p99 of 100 samples is the 99th smallest)."""
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(len(ordered) * p / 100))) - 1]


def print_table(title: str, samples: dict[str, list[float]], relay: list[float]) -> list[str]:
    """Prints p50/p90/p99/max in ms; returns the failed rows' labels."""
    failed = []
    print(f"\n{title}")
    print(f"  {'':62s} {'n':>4s} {'p50':>7s} {'p90':>7s} {'p99':>7s} {'max':>7s}"
          f"   target p99 < {TARGET_S * 1000:.0f} ms")
    rows = [row for row in REACTIONS if samples.get(row[0])]
    rows.append(("relay", "baseline: event saved → visible on EVENTS (relay)", False))
    for key, label, judged in rows:
        values = relay if key == "relay" else samples[key]
        p99 = percentile(values, 99)
        verdict = ("PASS" if p99 < TARGET_S else "FAIL") if judged else ""
        if verdict == "FAIL":
            failed.append(label)
        figures = " ".join(f"{1000 * v:7.1f}"
                           for v in (statistics.median(values), percentile(values, 90), p99, max(values)))
        print(f"  {label:62s} {len(values):4d} {figures}   {verdict}")
    return failed


# --------------------------------------------------------------------------- main

async def reaction(args: argparse.Namespace, services: Services) -> list[str]:
    db.migrate(services.database_url)
    nc = await bus.connect(services.nats_url, "bench-reaction")
    store = EventStore.open(services.database_url, pool_size=2)
    try:
        js = nc.jetstream()
        await bus.declare(js)
        path = services.tmpdir / "train.json"
        path.write_bytes(small_training_file(40))
        training_file = await ObjectStore(js).put_file("files", "bench/train.json", path)
        rig = Rig(store.app, EventTap(store.app), PodLog(services.tmpdir / "pods.jsonl"), nc, js, training_file)
        await rig.tap.start(js)
        services.start_worker("pipeline", "relay")
        cache = {"AGGREGATE_CACHE_MAXSIZE": str(args.aggregate_cache)} if args.aggregate_cache else {}
        services.start_worker("bench.instant_pods", BENCH_PODS_LOG=str(rig.pods.path), **cache)
        print(f"services: {services.where}; nats-server {services.nats_url}; relay and handlers started"
              + (f" (handlers with AGGREGATE_CACHE_MAXSIZE={args.aggregate_cache})" if cache else ""), flush=True)

        await run_jobs(rig, WARMUP_JOBS, "warm-up", services)
        samples, relay = await run_jobs(rig, args.runs, "jobs", services)
        failed = print_table(f"reaction times, ms ({args.runs} jobs, one at a time, after {WARMUP_JOBS} warm-up jobs)",
                             samples, relay)
        if args.budget_events > 0:
            t0, seen_before = time.monotonic(), rig.tap.count
            version = await asyncio.to_thread(age_budget, store.app, args.budget_events)
            await rig.tap.caught_up(seen_before + args.budget_events)
            print(f"\nbudget aged: {args.budget_events} SpendRecorded added (Budget version {version}) "
                  f"in {time.monotonic() - t0:.1f} s (untimed)", flush=True)
            samples, relay = await run_jobs(rig, args.aged_runs, "aged", services)
            failed += [f"{label} (aged budget)" for label in print_table(
                f"reaction times, ms, with a Budget of {version} events ({args.aged_runs} jobs)", samples, relay)]
        return failed
    finally:
        await nc.close()
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100,
                        help="jobs through the reaction cycle (default 100; 0: skip part 1)")
    parser.add_argument("--quick", action="store_true",
                        help="CI smoke (~1.5 min): 15 jobs, 3 with a 5,000-event budget, 1 agent run per signal")
    parser.add_argument("--agent-runs", type=int, default=3, help="GPU agent runs per signal (default 3; 0: skip)")
    parser.add_argument("--checkpoint-every", type=int, default=10, help="agent checkpoint interval (default 10)")
    parser.add_argument("--budget-events", type=int, default=20_000,
                        help="SpendRecorded events added to the Budget before the last jobs (default 20000; 0: skip)")
    parser.add_argument("--aged-runs", type=int, default=10, help="jobs measured with the aged budget (default 10)")
    parser.add_argument("--aggregate-cache", type=int, default=0, metavar="N",
                        help="experiment: run the handlers worker with eventsourcing's aggregate cache "
                             "(AGGREGATE_CACHE_MAXSIZE=N), the fix proposed for the aged-budget slowdown")
    parser.add_argument("--embedded-pg", action="store_true", help="embedded PostgreSQL even if 127.0.0.1:5432 answers")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.agent_runs, args.budget_events, args.aged_runs = 15, 1, 5000, 3

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    tmpdir = Path(tempfile.mkdtemp(prefix="bench-reaction-"))
    services = Services(tmpdir)
    failed: list[str] = []
    try:
        if args.runs > 0:
            try:
                services.start(args.embedded_pg)
                failed += asyncio.run(reaction(args, services))
            finally:
                services.stop()
        if args.agent_runs > 0:
            failed += run_work_lost(tmpdir, args.agent_runs, args.checkpoint_every)
    except BaseException:
        print(f"kept {tmpdir} (worker and agent logs)", file=sys.stderr)
        raise
    shutil.rmtree(tmpdir, ignore_errors=True)
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("overall: " + ("PASS" if not failed else "FAIL (" + "; ".join(failed) + ")"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
