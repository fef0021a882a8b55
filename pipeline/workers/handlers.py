"""`pipeline handlers run`: provisioning, queue and recovery (EVENTS) and telemetry (TELEMETRY)
reactors with the configured pod provider, one leader per deployment."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import psycopg
from faststream.nats import NatsBroker
from psycopg_pool import ConnectionPool

from domain.values import ArtifactRef
from handlers.evaluation import fetch_bytes
from handlers.pods import local
from handlers.provisioning import AgentSettings, Provisioner, QueuePolicy
from handlers.telemetry import TelemetryHandler
from infra import bus, db, envelope, staging
from infra.bus import TELEMETRY_STREAM
from infra.consumers import add_consumer
from infra.eventstore import EventStore
from infra.logs import Outage
from infra.natsauth import NatsAuthority
from infra.objectstore import ObjectStore
from infra.relay import acquire_leadership
from infra.settings import Settings
from infra.telemetry import ALL_TELEMETRY
from pipeline.workers.common import close_all, quiet_broker, stop_on_signals
from projections import jobs

log = logging.getLogger(__name__)

HANDLERS_LOCK_KEY = 7_305_101_904
SPEND_EVERY_S = 30.0
LOOP_EVERY_S = 0.5


async def run_handlers(settings: Settings, database_url: str, nats_url: str) -> None:
    stop = stop_on_signals()
    worker = HandlersWorker(settings, database_url, nats_url)
    await worker.open()
    try:
        if await acquire_leadership(worker.lock_conn, stop, HANDLERS_LOCK_KEY):
            await worker.start()
            await worker.loop(stop)
    finally:
        await worker.close()


class HandlersWorker:
    """The handlers' resources, built in `open()`, and the steps of their life."""

    def __init__(self, settings: Settings, database_url: str, nats_url: str) -> None:
        self.settings, self.database_url, self.nats_url = settings, database_url, nats_url
        self.store = EventStore.open(database_url, pool_size=4, policy=settings.budget_policy())
        self.pool = ConnectionPool(database_url, min_size=1, max_size=4, open=True)
        self.lock_conn = psycopg.connect(database_url, autocommit=True)
        self.provider: Any = pod_provider(settings)
        self.telemetry = TelemetryHandler(self.store.app, read_object=self.read_object)
        self.broker: NatsBroker = quiet_broker(settings, nats_url)

    async def open(self) -> None:
        """Connects to the object store and builds the provisioner and the subscriptions."""
        self.objects_nc = await bus.connect(self.nats_url, "handlers-objects", self.settings.runtime.connect_timeout_s)
        self.objects, self.event_loop = ObjectStore(self.objects_nc.jetstream()), asyncio.get_running_loop()
        self.provisioner = self.build_provisioner(self.objects)
        self.subscribe()

    def build_provisioner(self, objects: ObjectStore) -> Provisioner:
        runtime, pods, loop = self.settings.runtime, self.settings.agent, asyncio.get_running_loop()

        def stage(job_id: UUID, refs: list[ArtifactRef]) -> list[ArtifactRef]:
            return asyncio.run_coroutine_threadsafe(staging.stage(objects, str(job_id), refs), loop).result(600)

        authority = NatsAuthority(runtime.nats_auth_dir, self.nats_url) if runtime.nats_auth_dir else None
        if authority is None:
            log.warning("handlers: PIPELINE_NATS_AUTH_DIR is not set: pods get this worker's NATS credentials")
        agent = AgentSettings(nats_url=pods.pod_nats_url or self.nats_url, base_model=pods.base_model,
                              max_steps=pods.max_steps, checkpoint_every=pods.checkpoint_every,
                              first_attempt_fault=self.settings.faults.agent)
        policy = QueuePolicy(pods.max_running, pods.provisioning_retry_s, pods.provisioning_window_s)
        return Provisioner(self.store.app, self.provider, agent, policy,
                           queued_jobs=lambda: self.job_ids(jobs.queued_jobs()), stage=stage, authority=authority)

    def read_object(self, ref: ArtifactRef) -> bytes:
        """An evaluation's results for the telemetry reactor (it runs in a consumer thread)."""
        return asyncio.run_coroutine_threadsafe(fetch_bytes(self.objects, ref), self.event_loop).result(120)

    def subscribe(self) -> None:
        provisioner, max_deliver = self.provisioner, self.settings.runtime.consumer_max_deliver

        def on_job_event(body: bytes) -> None:
            stored = envelope.decode(body).stored_event
            provisioner.on_event(stored.topic, stored.originator_id)

        add_consumer(self.broker, self.pool, durable="handler-provisioning", subject="events.TrainingJob.>",
                     handle=each(on_job_event), max_deliver=max_deliver)
        add_consumer(self.broker, self.pool, durable="handler-telemetry", subject=ALL_TELEMETRY,
                     stream=TELEMETRY_STREAM, handle=each(self.telemetry.handle), max_deliver=max_deliver,
                     with_subjects=True)

        @self.broker.subscriber("control.pods")
        async def pod_control(body: dict) -> dict:
            """Fault injection (local provider): {"job_id"?, "action": preempt|kill|…, "count"?}."""
            job_id = UUID(body["job_id"]) if body.get("job_id") else None
            try:
                pods = await asyncio.to_thread(provisioner.fault, job_id, body["action"], int(body.get("count", 1)))
            except (ValueError, KeyError) as exc:
                return {"ok": False, "error": str(exc)}
            return {"ok": True, "pods": pods}

    def job_ids(self, query: str, params: tuple = ()) -> list[UUID]:
        with self.pool.connection() as conn:
            return [row[0] for row in conn.execute(query, params)]

    async def start(self) -> None:
        """As leader: the pods a previous leader left are adopted (those of active jobs) or ended,
        then messages flow."""
        bus.probe(self.nats_url, self.settings.runtime.connect_timeout_s)
        await asyncio.to_thread(self.provisioner.adopt, self.job_ids(*jobs.active_jobs()), [])
        if reaped := await asyncio.to_thread(self.provider.reap_orphans):
            log.info("handlers: ended %d pod(s) of jobs no longer active", reaped)
        await self.broker.start()
        log.info("handlers: provisioning and telemetry, %s pod provider", self.settings.agent.pod_provider)

    async def loop(self, stop: asyncio.Event) -> None:
        """The clock: exits, reports, heartbeats, retries, promotions, and spend every 30 s."""
        provisioner, last_charge = self.provisioner, time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            await guarded(provisioner.record_exits)
            await guarded(provisioner.check_reports, now)
            await guarded(provisioner.watchdog, self.telemetry.heartbeats, self.settings.agent.heartbeat_timeout_s, now,
                          self.connected())
            await guarded(provisioner.retry_waiting, now)
            await guarded(provisioner.promote)
            if now - last_charge >= SPEND_EVERY_S:
                await guarded(provisioner.charge_running)
                last_charge = now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), LOOP_EVERY_S)

    def connected(self) -> bool:
        connection = getattr(getattr(self.broker.config, "connection_state", None), "connection", None)
        return bool(connection is not None and connection.is_connected)

    async def close(self) -> None:
        """Every step runs whatever failed before (NATS or PostgreSQL may be down). The pods keep
        running: the next handlers worker adopts them; a stack shutdown ends them
        (pipeline/supervisor.py)."""
        await close_all("handlers", ("the broker", self.broker.stop), ("NATS", self.objects_nc.close),
                        ("the pool", self.pool.close), ("the lock connection", self.lock_conn.close),
                        ("the event store", self.store.close))


def pod_provider(settings: Settings) -> Any:
    if settings.agent.pod_provider == "runpod":
        from handlers.pods.runpod import runpod_provider_from_settings  # the runpod SDK only where it is used

        return runpod_provider_from_settings(settings)
    return local.LocalProvider(settings.runtime.state_dir.resolve() / "pods", threads=settings.agent.threads)


def end_pods(settings: Settings) -> int:
    """A stack shutdown: every pod of this deployment, whichever handlers worker started or adopted
    it, is ended (the workers themselves leave their pods to the next one). Returns how many ran."""
    return pod_provider(settings).reap_orphans()


STEP_OUTAGES: dict[str, Outage] = {}


async def guarded(step: Callable[..., object], *args: object) -> None:
    """One step of the handlers' loop in a thread; an error is logged, never fatal to the loop.
    PostgreSQL away is one line when the step first fails and one when it works again."""
    name = getattr(step, "__name__", str(step))
    outage = STEP_OUTAGES.setdefault(name, Outage(log, lost=f"handlers: {name} waits for PostgreSQL",
                                                  back=f"handlers: {name} works again"))
    try:
        await asyncio.to_thread(step, *args)
    except db.UNAVAILABLE as exc:
        outage.failed(exc)
    except Exception:  # noqa: BLE001 - the next round retries; the worker must keep running
        log.exception("handlers: %s failed", name)
    else:
        outage.recovered()


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
                if not isinstance(exc, db.UNAVAILABLE):  # an outage: the consumer says it once
                    log.warning("handler failed on a message: %s", exc)
                outcomes.append(exc)
        return outcomes

    return run
