"""Helpers for tests that run the relay and the projections as processes: a busy history, telemetry,
and bounded waits until every live read model has caught up with its source."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

import psycopg
from nats.js.errors import NotFoundError

from domain.aggregates.training_job import TrainingJob
from domain.job_status import JobStatus
from infra import bus
from infra.eventstore import EventStore
from projections import metrics
from projections.runner import PROJECTIONS
from tests.factories import T0, configuration, job_fields
from tests.integration.test_metrics import evaluation, step


async def _declare(url: str) -> None:
    nc = await bus.connect(url, "test-setup")
    await bus.declare(nc.jetstream())
    await nc.close()


def declare(url: str) -> None:
    asyncio.run(_declare(url))


def training_jobs(store: EventStore, jobs: int, steps: int, name: str = "Busy") -> list[uuid.UUID]:
    """`jobs` jobs training on a pod, each with `steps` progress events, saved together (one
    transaction: the relay then publishes them as one burst)."""
    built = []
    for i in range(jobs):
        job = TrainingJob.create(uuid.uuid4(), **job_fields(name=f"{name} {i:03d}"))
        job.configure(**configuration())
        job.queue(T0)
        job.start_provisioning("spot", T0)
        job.pod_started(f"pod-{i}", 1, Decimal("2.49"), T0 + timedelta(minutes=1))
        job.change_stage(JobStatus.TRAINING, 1, T0 + timedelta(minutes=2))
        for n in range(1, steps + 1):
            job.record_progress(n, steps, n / steps, 2.0 / n, 1, T0 + timedelta(minutes=2, seconds=n))
        built.append(job)
    store.app.save(*built)
    return [job.id for job in built]


def telemetry(jobs: list[uuid.UUID], steps: range) -> list[tuple[str, bytes]]:
    """The agent's step messages (an evaluation every 100 steps) for these jobs, interleaved."""
    return [message for n in steps for job in jobs
            for message in ([step(job, n)] + ([evaluation(job, n, 1.0 / n)] if n % 100 == 0 else []))]


def publish(url: str, items: list[tuple[str, bytes]], prefix: str) -> None:
    async def run() -> None:
        nc = await bus.connect(url, "test-agent")
        js = nc.jetstream(publish_async_max_pending=2000)
        futures = [await js.publish_async(subject, data, headers={"Nats-Msg-Id": f"{prefix}-{i}"})
                   for i, (subject, data) in enumerate(items)]
        await asyncio.gather(*futures)
        await nc.close()

    asyncio.run(run())


def store_positions(store: EventStore) -> dict[str, int]:
    """Per projection, the notification id of the last stored event it reads."""
    out = {}
    for name, projection in PROJECTIONS.items():
        found = store.app.recorder.select_notifications(1, 10**9, topics=projection.topics)
        if found:
            out[name] = found[-1].id
    return out


def live_positions(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        return dict(conn.execute("SELECT projection, notification_id FROM projection_positions").fetchall())


def telemetry_progress(nats_url: str) -> tuple[int, int]:
    """(the metric consumer's ack floor, the TELEMETRY stream's last sequence)."""

    async def ask() -> tuple[int, int]:
        nc = await bus.connect(nats_url, "test-probe")
        try:
            js = nc.jetstream()
            last = (await js.stream_info(bus.TELEMETRY_STREAM)).state.last_seq
            try:
                info = await js.consumer_info(bus.TELEMETRY_STREAM, metrics.DURABLE)
            except NotFoundError:
                return 0, last
            return info.ack_floor.stream_seq, last
        finally:
            await nc.close()

    return asyncio.run(ask())


def consumers_idle(nats_url: str) -> bool:
    """Every projection consumer has nothing left to deliver and nothing delivered unacknowledged.
    After a worker dies, what it held unacknowledged comes back only after `ack_wait` (10 s), and
    the events behind it in their aggregates wait as out-of-order retries: positions alone would
    already look caught up."""

    async def ask() -> bool:
        nc = await bus.connect(nats_url, "test-probe")
        try:
            js = nc.jetstream()
            for stream in (bus.EVENTS_STREAM, bus.TELEMETRY_STREAM):
                for info in await js.consumers_info(stream):
                    if info.name.startswith("projection-") and (info.num_pending or info.num_ack_pending):
                        return False
            return True
        finally:
            await nc.close()

    return asyncio.run(ask())


def caught_up(store: EventStore, database_url: str, nats_url: str) -> bool:
    acked, last = telemetry_progress(nats_url)
    return live_positions(database_url) == store_positions(store) and acked == last and consumers_idle(nats_url)
