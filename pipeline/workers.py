"""Entry points of the long-running workers: relay and projections (one process each)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import psycopg
from faststream.nats import NatsBroker
from psycopg_pool import ConnectionPool

from pipeline import bus, envelope
from pipeline.eventstore import EventStore
from pipeline.relay import RELAY_LOCK_KEY, Relay, acquire_leadership
from pipeline.settings import Settings
from projections.runner import NAMES, add_live

log = logging.getLogger(__name__)

PROJECTIONS_LOCK_KEY = 7_305_101_903
# FastStream logs each task restart and each message at INFO; we keep its warnings and errors.
FASTSTREAM_LOG = logging.getLogger("pipeline.faststream")
FASTSTREAM_LOG.setLevel(logging.WARNING)


def stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def run_relay(settings: Settings, database_url: str, nats_url: str) -> None:
    stop = stop_on_signals()
    store = EventStore.open(database_url, pool_size=2)
    conn = psycopg.connect(database_url, autocommit=True)
    nc = await bus.connect(nats_url, "relay", settings.connect_timeout_s)
    try:
        if await acquire_leadership(conn, stop, RELAY_LOCK_KEY):
            log.info("relay: leader, publishing from the event store")
            relay = Relay(conn, nc.jetstream(publish_async_max_pending=4000), store.applications(),
                          settings.relay_batch, settings.fault)
            await relay.run(stop, settings.relay_idle_poll_s)
    finally:
        await nc.close()
        conn.close()
        store.close()


HANDLERS_LOCK_KEY = 7_305_101_904


async def run_handlers(settings: Settings, database_url: str, nats_url: str) -> None:
    """Provisioning (EVENTS) and telemetry (TELEMETRY) reactors with the local pod provider."""
    from handlers.pods.local import LocalProvider
    from domain.job_status import ACTIVE
    from handlers.provisioning import AgentSettings, Provisioner, QueuePolicy
    from handlers.telemetry import TelemetryHandler
    from domain.values import ArtifactRef
    from pipeline import staging
    from pipeline.natsauth import NatsAuthority
    from pipeline.objectstore import ObjectStore
    from pipeline.bus import TELEMETRY_STREAM
    from pipeline.consumers import add_consumer

    stop = stop_on_signals()
    store = EventStore.open(database_url, pool_size=4, policy=settings.budget_policy())
    pool = ConnectionPool(database_url, min_size=1, max_size=4, open=True)
    lock_conn = psycopg.connect(database_url, autocommit=True)
    if settings.pod_provider == "runpod":
        from handlers.pods.runpod import runpod_provider_from_settings

        provider: Any = runpod_provider_from_settings(settings)
    else:
        provider = LocalProvider(settings.state_dir.resolve() / "pods", threads=settings.agent_threads)
    def job_ids(query: str, params: tuple = ()) -> list[UUID]:
        with pool.connection() as conn:
            return [row[0] for row in conn.execute(query, params)]

    loop = asyncio.get_running_loop()
    objects_nc = await bus.connect(nats_url, "handlers-objects", settings.connect_timeout_s)
    objects = ObjectStore(objects_nc.jetstream())

    def stage(job_id: UUID, refs: list[ArtifactRef]) -> list[ArtifactRef]:
        return asyncio.run_coroutine_threadsafe(staging.stage(objects, str(job_id), refs), loop).result(600)

    authority = NatsAuthority(settings.nats_auth_dir, nats_url) if settings.nats_auth_dir else None
    if authority is None:
        log.warning("handlers: PIPELINE_NATS_AUTH_DIR is not set: pods get this worker's NATS credentials")
    provisioner = Provisioner(
        store.app, provider,
        AgentSettings(nats_url=settings.agent_nats_url or nats_url, base_model=settings.agent_base_model, max_steps=settings.agent_max_steps,
                      checkpoint_every=settings.agent_checkpoint_every, first_attempt_fault=settings.agent_fault),
        QueuePolicy(settings.max_running, settings.provisioning_retry_s, settings.provisioning_window_s),
        queued_jobs=lambda: job_ids("SELECT id FROM jobs WHERE status = 'queued'"
                                    " ORDER BY promoted_at DESC NULLS LAST, queued_at, id"),
        stage=stage, authority=authority)

    telemetry = TelemetryHandler(store.app)
    broker = NatsBroker(nats_url, log_level=logging.DEBUG, connect_timeout=int(settings.connect_timeout_s),
                        max_reconnect_attempts=-1, logger=FASTSTREAM_LOG)
    def on_job_event(body: bytes) -> None:
        stored = envelope.decode(body).stored_event
        provisioner.on_event(stored.topic, stored.originator_id)

    add_consumer(broker, pool, durable="handler-provisioning", subject="events.TrainingJob.>",
                 handle=each(on_job_event), max_deliver=settings.consumer_max_deliver)

    @broker.subscriber("control.pods")
    async def pod_control(body: dict) -> dict:
        """Fault injection (local provider): {"job_id"?, "action": preempt|kill|no_capacity|slow_start, "count"?}."""
        job_id = UUID(body["job_id"]) if body.get("job_id") else None
        try:
            pods = await asyncio.to_thread(provisioner.fault, job_id, body["action"], int(body.get("count", 1)))
        except (ValueError, KeyError) as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True, "pods": pods}

    add_consumer(broker, pool, durable="handler-telemetry", subject="telemetry.>", stream=TELEMETRY_STREAM,
                 handle=each(telemetry.handle), max_deliver=settings.consumer_max_deliver, with_subjects=True)
    try:
        if await acquire_leadership(lock_conn, stop, HANDLERS_LOCK_KEY):
            bus.probe(nats_url, settings.connect_timeout_s)
            provider.reap_orphans()
            active = job_ids("SELECT id FROM jobs WHERE status = ANY(%s)", ([status.value for status in ACTIVE],))
            await asyncio.to_thread(provisioner.adopt, active, [])
            await broker.start()
            log.info("handlers: provisioning and telemetry, %s pod provider", settings.pod_provider)
            last_charge = time.monotonic()
            while not stop.is_set():
                now = time.monotonic()
                connection = getattr(getattr(broker.config, "connection_state", None), "connection", None)
                connected = bool(connection is not None and connection.is_connected)
                await guarded(provisioner.record_exits)
                await guarded(provisioner.check_reports, now)
                await guarded(provisioner.watchdog, telemetry.heartbeats, settings.heartbeat_timeout_s, now, connected)
                await guarded(provisioner.retry_waiting, now)
                await guarded(provisioner.promote)
                if now - last_charge >= SPEND_EVERY_S:
                    await guarded(provisioner.charge_running)
                    last_charge = now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
    finally:
        await broker.stop()
        provider.stop_all()
        await objects_nc.close()
        pool.close()
        lock_conn.close()
        store.close()


SPEND_EVERY_S = 30.0


async def guarded(step: Callable[..., object], *args: object) -> None:
    """One step of the handlers' loop in a thread; an error is logged, never fatal to the loop."""
    try:
        await asyncio.to_thread(step, *args)
    except Exception:  # noqa: BLE001 - the next round retries; the worker must keep running
        log.exception("handlers: %s failed", getattr(step, "__name__", step))


def each(handle: Callable[..., None]) -> Callable[[Sequence[Any]], list[Exception | None]]:
    """A batch handler from a per-message one: every message settled on its own outcome. Items
    are bodies, or (subject, body) pairs passed as two arguments."""

    def run(items: Sequence[Any]) -> list[Exception | None]:
        outcomes: list[Exception | None] = []
        for item in items:
            try:
                handle(*item) if isinstance(item, tuple) else handle(item)
                outcomes.append(None)
            except Exception as exc:  # noqa: BLE001 - settled per message by the consumer
                log.warning("handler failed on a message: %s", exc)
                outcomes.append(exc)
        return outcomes

    return run


async def run_projections(settings: Settings, database_url: str, nats_url: str,
                          names: list[str] | None = None) -> None:
    stop = stop_on_signals()
    store = EventStore.open(database_url, pool_size=2)
    applications = {app.name: app for app in store.applications()}
    pool = ConnectionPool(database_url, min_size=1, max_size=4, open=True)
    lock_conn = psycopg.connect(database_url, autocommit=True)
    # FastStream logs every message at INFO by default: that costs ~30 % of its throughput.
    broker = NatsBroker(nats_url, log_level=logging.DEBUG, connect_timeout=int(settings.connect_timeout_s),
                        max_reconnect_attempts=-1, logger=FASTSTREAM_LOG)
    for name in names or NAMES:
        add_live(broker, pool, name, applications, settings.consumer_max_deliver)
    try:
        if await acquire_leadership(lock_conn, stop, PROJECTIONS_LOCK_KEY):
            bus.probe(nats_url, settings.connect_timeout_s)
            await broker.start()
            log.info("projections: consuming %s", ", ".join(names or NAMES))
            await stop.wait()
    finally:
        await broker.stop()
        pool.close()
        lock_conn.close()
        store.close()


NOTIFICATIONS_LOCK_KEY = 7_305_101_908


async def run_notifications(settings: Settings, database_url: str, nats_url: str) -> None:
    """The notifier (handlers/notifications): EVENTS → email, Slack and in-app banners."""
    from handlers.notifications.worker import run

    await run(settings, database_url, nats_url, NOTIFICATIONS_LOCK_KEY)
