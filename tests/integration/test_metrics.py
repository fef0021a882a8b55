"""Metric history (FR2.1.1) from the TELEMETRY stream: merges per (job, step), live consumer on a
real nats-server, rebuild from the stream equal to the live table, downsampled reads."""

import asyncio
import json
import math
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest

from infra import bus
from infra.consumers import PoisonMessageError
from projections import metrics
from projections.queries import metric_history
from tests.helpers import pipeline_process, stop_process, wait_for

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)


def body(job: uuid.UUID, kind: str, seq: int, data: dict[str, Any], attempt: int = 1) -> bytes:
    """As the agent's publisher writes it (json.dumps: a diverged loss is the literal NaN)."""
    at = (T0 + timedelta(seconds=seq)).isoformat()
    return json.dumps({"job_id": str(job), "attempt": attempt, "seq": seq, "kind": kind, "at": at,
                       "data": data}).encode()


def step(job: uuid.UUID, n: int, attempt: int = 1, **extra: Any) -> tuple[str, bytes]:
    data = {"step": n, "total_steps": 1000, "epoch": n / 100, "loss": 2.0 / n, "learning_rate": 2e-4,
            "grad_norm": 0.5, "tokens_per_s": 1234.5, "gpu_utilization": 87.0, "gpu_memory_used_gb": 61.5}
    return f"telemetry.{job}.step", body(job, "step", n * 10 + attempt, data | extra, attempt)


def evaluation(job: uuid.UUID, n: int, loss: float, attempt: int = 1) -> tuple[str, bytes]:
    data = {"step": n, "epoch": n / 100, "eval_loss": loss, "perplexity": math.exp(loss)}
    return f"telemetry.{job}.eval", body(job, "eval", n * 10 + 5, data, attempt)


def table(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT * FROM job_metrics ORDER BY job_id, step").fetchall()


def apply(conn: psycopg.Connection, items: list[tuple[str, bytes]]) -> list[Exception | None]:
    points, outcomes = metrics.parse(items)
    with conn.transaction():
        metrics.write(conn, points)
    return outcomes


def test_steps_and_evaluations_merge_per_step_whatever_the_order_or_repetition(migrated: str) -> None:
    job = uuid.uuid4()
    messages = [step(job, n) for n in range(1, 21)] + [evaluation(job, 10, 0.9), evaluation(job, 20, 0.8)]
    shuffled = random.Random(7).sample(messages, len(messages))
    with psycopg.connect(migrated) as conn:
        assert apply(conn, messages) == [None] * len(messages)
        in_order = table(conn)
        conn.execute("TRUNCATE job_metrics")
        apply(conn, shuffled + shuffled[:5])  # out of order, then some again
        assert table(conn) == in_order
        ten = metric_history(conn, job)[9]
        assert (ten.step, ten.loss, ten.eval_loss, ten.gpu_util, ten.gpu_memory_gb) == (10, 0.2, 0.9, 87.0, 61.5)
        assert ten.perplexity == pytest.approx(math.exp(0.9))
        assert ten.at == T0 + timedelta(seconds=101)  # the step's time, not the evaluation's
        assert metric_history(conn, job)[10].eval_loss is None


def test_a_resumed_attempt_replaces_the_steps_it_retrained_and_a_late_older_report_changes_nothing(
    migrated: str,
) -> None:
    job = uuid.uuid4()
    with psycopg.connect(migrated) as conn:
        apply(conn, [step(job, n, loss=1.0) for n in (1, 2, 3)])
        apply(conn, [step(job, n, attempt=2, loss=0.5) for n in (3, 4)])
        apply(conn, [step(job, 3, loss=1.5), step(job, 4, loss=1.5)])  # attempt 1, delivered late
        assert [(p.step, p.loss) for p in metric_history(conn, job)] == [(1, 1.0), (2, 1.0), (3, 0.5), (4, 0.5)]
        assert conn.execute("SELECT array_agg(attempt ORDER BY step) FROM job_metrics").fetchone()[0] == [1, 1, 2, 2]


def test_a_diverged_loss_is_kept_and_other_kinds_are_ignored(migrated: str) -> None:
    job = uuid.uuid4()
    heartbeat = (f"telemetry.{job}.heartbeat", body(job, "heartbeat", 1, {"stage": "training"}))
    with psycopg.connect(migrated) as conn:
        assert apply(conn, [heartbeat, step(job, 1, loss=float("nan"))]) == [None, None]
        [point] = metric_history(conn, job)
        assert math.isnan(point.loss)


def test_malformed_and_forged_messages_are_poison_and_the_rest_of_the_batch_is_written(migrated: str) -> None:
    job, victim = uuid.uuid4(), uuid.uuid4()
    forged = (f"telemetry.{job}.step", step(victim, 5)[1])  # a pod of `job` writing `victim`'s curve
    items = [step(job, 1), (f"telemetry.{job}.step", b"{not json"), forged,
             (f"telemetry.{job}.step", body(job, "step", 9, {"loss": 1.0})),  # no step number
             (f"telemetry.{job}.step", body(job, "step", 9, {"step": 2**31})), step(job, 2)]
    with psycopg.connect(migrated) as conn:
        outcomes = apply(conn, items)
        assert [type(o) for o in outcomes] == [type(None), *[PoisonMessageError] * 4, type(None)]
        assert "claims to be" in str(outcomes[2])
        assert [(r[0], r[1]) for r in table(conn)] == [(job, 1), (job, 2)]


def test_a_long_history_is_downsampled_keeping_every_evaluation_and_the_last_step(migrated: str) -> None:
    job, other = uuid.uuid4(), uuid.uuid4()
    messages = [step(job, n) for n in range(1, 12_001)] + [evaluation(job, n, 1.0) for n in range(1000, 12_001, 1000)]
    with psycopg.connect(migrated) as conn:
        apply(conn, messages + [step(other, 1)])
        started = time.perf_counter()
        thinned = metric_history(conn, job, max_points=500)
        elapsed = time.perf_counter() - started
        steps = [p.step for p in thinned]
        assert steps == sorted(steps) and steps[0] == 1 and steps[-1] == 12_000
        assert {p.step for p in thinned if p.eval_loss is not None} == set(range(1000, 12_001, 1000))
        assert 500 <= len(thinned) <= 500 + 12 + 1
        assert len(metric_history(conn, job)) == 12_000
        assert metric_history(conn, job, max_points=20_000) == metric_history(conn, job)
        print(f"12,000 steps thinned to {len(thinned)} points in {elapsed * 1000:.0f} ms")


async def _declare(url: str) -> None:
    nc = await bus.connect(url, "test-setup")
    await bus.declare(nc.jetstream())
    await nc.close()


async def _publish(url: str, items: list[tuple[str, bytes]], prefix: str) -> None:
    nc = await bus.connect(url, "test-agent")
    js = nc.jetstream()
    for i, (subject, data) in enumerate(items):
        await js.publish(subject, data, headers={"Nats-Msg-Id": f"{prefix}-{i}"})
    await nc.close()


def rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return table(conn)


def dead_letters(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT consumer, msg_id FROM dead_letters ORDER BY msg_id").fetchall()


def test_the_live_consumer_follows_telemetry_and_a_rebuild_from_the_stream_gives_the_same_rows(
    migrated: str, nats_server, tmp_path: Path
) -> None:
    asyncio.run(_declare(nats_server.url))
    env = {"DATABASE_URL": migrated, "NATS_URL": nats_server.url}
    jobs = [uuid.uuid4(), uuid.uuid4()]
    messages = [step(job, n) for job in jobs for n in range(1, 101)] + [evaluation(jobs[0], 50, 0.7)]
    stream = random.Random(3).sample(messages, len(messages))
    stream += stream[:20]  # re-sent after the duplicate window: new ids, same content
    stream += [(f"telemetry.{jobs[0]}.heartbeat", body(jobs[0], "heartbeat", 1, {})),
               (f"telemetry.{jobs[0]}.step", b"{not json"), (f"telemetry.{jobs[0]}.step", step(jobs[1], 7)[1])]
    projections = pipeline_process(["projections", "run"], env, tmp_path / "projections.log")
    try:
        asyncio.run(_publish(nats_server.url, stream, "live"))
        wait_for(lambda: len(rows(migrated)) == 200, message="200 metric rows")
        dead = wait_for(lambda: len(d := dead_letters(migrated)) == 2 and d, message="two dead letters")
        assert dead == [("projection-metrics", f"live-{len(stream) - 2}"),
                        ("projection-metrics", f"live-{len(stream) - 1}")]
        live = rows(migrated)
        assert [r[5] for r in live if r[0] == jobs[0] and r[1] == 50] == [0.7]  # the eval merged into step 50
    finally:
        assert stop_process(projections) == 0

    rebuilt = subprocess.run([sys.executable, "-m", "pipeline", "projections", "rebuild", "metrics"],
                             env=os.environ | env, capture_output=True, text=True, timeout=120)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert f"rebuilt metrics from {len(stream) - 1} message(s)" in rebuilt.stdout  # all but the heartbeat
    assert rows(migrated) == live


def test_a_rebuild_merges_a_stream_as_the_live_upserts_do_message_by_message(migrated: str) -> None:
    """The rebuild stages every point and merges them in one statement (`metrics.merged`): the same
    rows as the live consumer's upserts, for a stream with resumed attempts, late older reports,
    evaluations before and after their step, repeats, missing figures and a diverged loss."""
    rng = random.Random(11)
    jobs = [uuid.uuid4() for _ in range(3)]
    items: list[tuple[str, bytes]] = []
    for job in jobs:
        for n in range(1, 41):
            items.append(step(job, n, loss=rng.choice([2.0 / n, None, float("nan")]) if n % 7 == 0 else 2.0 / n))
            if n % 10 == 0:
                items.append(evaluation(job, n, 1.0 / n))
        for n in range(25, 46):  # resumed from the checkpoint at step 24
            items.append(step(job, n, attempt=2, loss=0.5 / n, grad_norm=None if n % 3 else 0.25))
        items += [step(job, 30, loss=9.9), evaluation(job, 30, 9.9)]  # attempt 1, arriving late
        items.append(evaluation(job, 50, 0.1, attempt=2))  # before its step
        items.append(step(job, 50, attempt=2))
        items += [(f"telemetry.{job}.eval", body(job, "eval", 600 + k, {"step": 60, "eval_loss": 0.3 / k}, 2))
                  for k in (1, 2)]  # a step no step message reached: dated by its first evaluation
    stream = rng.sample(items, len(items)) + items[:15]
    points = metrics.parse(stream)[0]
    with psycopg.connect(migrated) as conn:
        with conn.transaction():
            conn.execute("TRUNCATE job_metrics")
        for start in range(0, len(points), 37):  # live: batches, each its own transaction
            with conn.transaction():
                metrics.write(conn, points[start:start + 37])
        live = table(conn)
        with conn.transaction():
            conn.execute("TRUNCATE job_metrics")
            with metrics.merged(conn) as add:
                for start in range(0, len(points), 100):
                    add(points[start:start + 100])
        rebuilt = table(conn)
    assert len(live) == 3 * 47
    assert repr(rebuilt) == repr(live)  # repr: NaN equals NaN there
    assert {r[2] for r in live} == {1, 2}


def test_a_batch_merged_before_it_is_written_leaves_the_rows_that_its_messages_upserted_one_by_one_leave(
        migrated: str) -> None:
    """The live consumer merges a batch's points per (job, step) and writes them with one statement
    (`metrics.write`); message by message (`metrics.UPSERT`, one statement each) must give the same rows,
    whatever the batch holds: one step's step, evaluation and repeats, attempts mixed in one batch after
    the row of either, missing figures, a diverged loss, an evaluation before its step."""
    rng = random.Random(5)
    job = uuid.uuid4()
    items: list[tuple[str, bytes]] = []
    for n in range(1, 31):
        items.append(step(job, n, loss=rng.choice([None, float("nan"), 2.0 / n]), grad_norm=rng.choice([None, 0.3])))
        if n % 4 == 0:
            items.append(evaluation(job, n, 1.0 / n, attempt=rng.choice([1, 2])))
        if n % 5 == 0:
            items.append(step(job, n, attempt=2, loss=0.5 / n, tokens_per_s=None))
        if n % 6 == 0:
            items.append(step(job, n, attempt=1, loss=7.0, gpu_utilization=None))  # the older attempt, late
    items += [evaluation(job, 40, 0.4), step(job, 40), evaluation(job, 41, 0.41), evaluation(job, 41, 0.42, 2)]
    points = metrics.parse(items)[0]
    with psycopg.connect(migrated) as conn:
        for size in (1, 7, 50, len(points)):  # some steps' points split over batches, some in one
            for seed in (1, 2):
                order = random.Random(seed).sample(points, len(points))
                with conn.transaction():
                    conn.execute("TRUNCATE job_metrics")
                    for p in order:
                        conn.execute(metrics.UPSERT[p.kind], (p.job_id, p.step, p.attempt, *p.values, p.at))
                one_by_one = repr(table(conn))
                with conn.transaction():
                    conn.execute("TRUNCATE job_metrics")
                for start in range(0, len(order), size):
                    with conn.transaction():
                        metrics.write(conn, order[start:start + size])
                assert repr(table(conn)) == one_by_one, (size, seed)
