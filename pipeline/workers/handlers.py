"""`pipeline handlers run`: provisioning, queue and recovery (EVENTS) and telemetry (TELEMETRY)
reactors with the configured pod provider. Decision domains, each led by one instance
(infra/leadership.py), a standby taking over: `provisioning` (the queue, pods, recovery, spend: one
decision per job and attempt) and the telemetry's partitions `telemetry-0` … (the agents'
milestones, shared out by job: TELEMETRY_PARTS holds each job's messages in one partition, in
order, since order within a job matters: a checkpoint before the interruption that resumes from
it; infra/telemetry.py). The telemetry leaders tell the provisioning leader's watchdog when each
job was last heard of through `pod_heartbeats`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from faststream.nats import NatsBroker
from psycopg_pool import ConnectionPool

from domain.values import ArtifactRef
from handlers.billing import BillingReconciler
from handlers.evaluation import fetch_bytes
from handlers.judge_client import JudgeClient, JudgeConfig
from handlers.judging import JudgingReactor, JudgingRounds
from handlers.pods import local
from handlers.provisioning import AgentSettings, Provisioner, QueuePolicy
from handlers.telemetry import TelemetryHandler
from infra import bus, db, envelope, staging
from infra.bus import TELEMETRY_PARTS_STREAM
from infra.consumers import PROJECTION_ACK_WAIT_S, BatchHandler, add_consumer
from infra.eventstore import EventStore
from infra.leadership import NotLeaderError
from infra.logs import Outage
from infra.nats_tls import pod_ca_pem
from infra.natsauth import NatsAuthority
from infra.objectstore import ObjectStore, StoredCheckpoint, newest_checkpoint
from infra.settings import Settings
from infra.telemetry import PARTITION_DOMAINS, PARTITIONS, partition_subjects, published_subject
from pipeline.workers.common import (
    close_all,
    connected,
    exit_code,
    halted,
    quiet_broker,
    stop_on_signals,
    until_database_answers,
    worker_leases,
)
from projections import job_costs, jobs
from projections.job_quality import judging_pending

log = logging.getLogger(__name__)

PROVISIONING = "provisioning"
DOMAINS = (PROVISIONING, *PARTITION_DOMAINS)
SPEND_EVERY_S = 30.0
LOOP_EVERY_S = 0.5
HEARTBEATS_EVERY_S = 1.0


async def run_handlers(settings: Settings, database_url: str, nats_url: str) -> int:
    stop = stop_on_signals()
    worker = HandlersWorker(settings, database_url, nats_url)
    await worker.open()
    beating = asyncio.create_task(worker.leases.run(stop))
    halt = halted(stop, worker.leases)
    try:
        started: set[str] = set()
        tasks = []
        while not halt.is_set() and started != set(DOMAINS):
            taken = await worker.leases.wait_for_any(halt, set(DOMAINS) - started)
            if partitions := sorted(taken & set(PARTITION_DOMAINS)):
                await worker.start_telemetry(partitions)
                if not started & set(PARTITION_DOMAINS):
                    tasks.append(asyncio.create_task(worker.share_heartbeats(halt)))
            if PROVISIONING in taken:
                await until_database_answers("handlers", worker.start, halt)  # it may have just restarted
                tasks.append(asyncio.create_task(worker.loop(halt)))
                if worker.judging is not None:  # the model judge (handlers/judging.py), led with provisioning
                    tasks.append(asyncio.create_task(worker.judge(halt)))
            started |= taken
        await halt.wait()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        await worker.close()
    return exit_code(worker.leases)


class HandlersWorker:
    """The handlers' resources, built in `open()`, and the steps of their life."""

    def __init__(self, settings: Settings, database_url: str, nats_url: str) -> None:
        self.settings, self.database_url, self.nats_url = settings, database_url, nats_url
        self.store = EventStore.open(database_url, pool_size=4, policy=settings.budget_policy())
        self.pool = ConnectionPool(database_url, min_size=1, max_size=4, open=True)
        self.provider: Any = pod_provider(settings)
        self.telemetry = TelemetryHandler(self.store.app, read_object=self.read_object)
        self.broker: NatsBroker = quiet_broker(settings, nats_url)  # provisioning's
        self.telemetry_brokers: list[NatsBroker] = []  # one per take of telemetry partitions
        self.leases = worker_leases(settings, database_url, "handlers", DOMAINS,
                                    nats_ok=lambda: self.objects_nc.is_connected)
        self.heard: dict[str, float] = {}  # job → monotonic time it was last heard of (the watchdog's view)
        self.judging = judging_rounds(settings, self.store.app, self.read_object, self.job_ids,
                                      lambda: self.leases.valid(PROVISIONING))

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

        def find_checkpoint(job_id: UUID, attempt: int) -> StoredCheckpoint | None:
            return asyncio.run_coroutine_threadsafe(newest_checkpoint(objects, str(job_id), attempt), loop).result(60)

        authority = NatsAuthority(runtime.nats_auth_dir, self.nats_url) if runtime.nats_auth_dir else None
        if authority is None:
            log.warning("handlers: PIPELINE_NATS_AUTH_DIR is not set: pods get this worker's NATS credentials")
        agent = AgentSettings(nats_url=pods.pod_nats_url or self.nats_url, base_model=pods.base_model,
                              qlora=pods.quantized, max_steps=pods.max_steps, checkpoint_every=pods.checkpoint_every,
                              first_attempt_fault=self.settings.faults.agent,
                              hf_token=pods.hf_token.get_secret_value(), gpu_memory_gb=pods.gpu_memory_gb,
                              nats_ca=pod_ca_pem(runtime.nats_ca_file, runtime.nats_auth_dir))
        policy = QueuePolicy(pods.max_running, pods.provisioning_retry_s, pods.provisioning_window_s)
        return Provisioner(self.store.app, self.provider, agent, policy,
                           queued_jobs=lambda: self.job_ids(jobs.queued_jobs()), stage=stage, authority=authority,
                           billing=billing_reconciler(self.settings, self.store.app, self.provider),
                           find_checkpoint=find_checkpoint)

    def read_object(self, ref: ArtifactRef) -> bytes:
        """An evaluation's results for the telemetry reactor (it runs in a consumer thread)."""
        return asyncio.run_coroutine_threadsafe(fetch_bytes(self.objects, ref), self.event_loop).result(120)

    def subscribe(self) -> None:
        provisioner, max_deliver = self.provisioner, self.settings.runtime.consumer_max_deliver

        def on_job_event(body: bytes) -> None:
            stored = envelope.decode(body).stored_event
            provisioner.on_event(stored.topic, stored.originator_id)

        # What a leader that died held comes back to its successor after ack_wait: 10 s, as for the read models.
        add_consumer(self.broker, self.pool, durable="handler-provisioning", subject="events.TrainingJob.>",
                     handle=self.led(PROVISIONING, each(on_job_event)), max_deliver=max_deliver,
                     ack_wait_s=PROJECTION_ACK_WAIT_S)

        @self.broker.subscriber("control.pods")
        async def pod_control(body: dict) -> dict:
            """Fault injection (local provider): {"job_id"?, "action": preempt|kill|…, "count"?}."""
            job_id = UUID(body["job_id"]) if body.get("job_id") else None
            try:
                pods = await asyncio.to_thread(provisioner.fault, job_id, body["action"], int(body.get("count", 1)))
            except (ValueError, KeyError) as exc:
                return {"ok": False, "error": str(exc)}
            return {"ok": True, "pods": pods}

    def led(self, domain: str, handle: BatchHandler) -> BatchHandler:
        """A batch is handled only while this instance's lease on `domain` is confirmed; else it is
        handed back (NotLeaderError: retried, by the leader)."""

        def run(items: Sequence[Any]) -> list[Exception | None]:
            if not self.leases.valid(domain):
                return [NotLeaderError(f"{domain}: lease not confirmed") for _ in items]
            return handle(items)

        return run

    def job_ids(self, query: str, params: tuple = ()) -> list[UUID]:
        with self.pool.connection() as conn:
            return [row[0] for row in conn.execute(query, params)]

    async def start_telemetry(self, domains: list[str]) -> None:
        """As leader of these partitions of the telemetry: their consumers, on a broker of their own."""
        broker = quiet_broker(self.settings, self.nats_url)
        for domain in domains:
            add_consumer(broker, self.pool, durable=f"handler-{domain}",
                         subject=partition_subjects(PARTITION_DOMAINS.index(domain)), stream=TELEMETRY_PARTS_STREAM,
                         handle=self.led(domain, each(self.on_telemetry)), with_subjects=True,
                         max_deliver=self.settings.runtime.consumer_max_deliver, ack_wait_s=PROJECTION_ACK_WAIT_S)
        bus.probe(self.nats_url, self.settings.runtime.connect_timeout_s)
        self.telemetry_brokers.append(broker)
        await broker.start()
        log.info("handlers: telemetry %s", ", ".join(domains))

    def on_telemetry(self, subject: str, body: bytes) -> None:
        """A message of a partition, checked against the subject its pod published on."""
        self.telemetry.handle(published_subject(subject), body)

    async def share_heartbeats(self, halt: asyncio.Event) -> None:
        """Every second, when each job was last heard of, for the provisioning leader's watchdog."""
        sent: dict[str, float] = {}
        while not halt.is_set():
            fresh = {job: at for job, at in list(self.telemetry.heartbeats.items()) if sent.get(job) != at}
            if fresh and any(self.leases.valid(domain) for domain in PARTITION_DOMAINS):
                try:
                    await asyncio.to_thread(write_heartbeats, self.pool, fresh)
                    sent |= fresh
                except db.UNAVAILABLE:
                    pass  # the next round sends them; the lease says the outage once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(halt.wait(), HEARTBEATS_EVERY_S)

    def last_heard(self) -> tuple[dict[str, float], bool]:
        """The jobs' last telemetry (monotonic, merged into what the watchdog already knows), and whether
        every partition of the telemetry has a leader connected to NATS (else silence says nothing about
        the pods)."""
        with self.pool.connection() as conn:
            for job, age in conn.execute(HEARD):
                heard = time.monotonic() - float(age)
                self.heard[str(job)] = max(self.heard.get(str(job), 0.0), heard)
            row = conn.execute(TELEMETRY_LEADERS_CONNECTED, (self.settings.runtime.lease_s * 2,)).fetchone()
        return self.heard, bool(row and row[0] >= PARTITIONS)

    async def start(self) -> None:
        """As leader: the pods a previous leader left are adopted (those of active jobs) or ended,
        then messages flow."""
        bus.probe(self.nats_url, self.settings.runtime.connect_timeout_s)
        await asyncio.to_thread(self.provisioner.adopt, self.job_ids(*jobs.active_jobs()), [])
        if self.provisioner.billing is not None:  # bills that fell due while no worker watched
            await asyncio.to_thread(self.provisioner.billing.resume, self.job_ids(*job_costs.billing_pending()))
        if reaped := await asyncio.to_thread(self.provider.reap_orphans):
            log.info("handlers: ended %d pod(s) of jobs no longer active", reaped)
        await self.broker.start()
        log.info("handlers: provisioning, %s pod provider", self.settings.agent.pod_provider)

    async def loop(self, stop: asyncio.Event) -> None:
        """The clock: exits, reports, heartbeats, retries, promotions, and spend every 30 s; each step
        only while this instance's lease on provisioning is confirmed."""
        provisioner, last_charge = self.provisioner, time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if self.leases.valid(PROVISIONING):
                await guarded(provisioner.record_exits)
                await guarded(provisioner.check_reports, now)
                await guarded(self.watchdog, now)
                await guarded(provisioner.retry_waiting, now)
                await guarded(provisioner.promote)
                await guarded(provisioner.reconcile_billing)
                if now - last_charge >= SPEND_EVERY_S:
                    await guarded(provisioner.charge_running)
                    last_charge = now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), LOOP_EVERY_S)

    async def judge(self, stop: asyncio.Event) -> None:
        """The model judge's rounds (FR6.2.1, FR6.4.1): evaluated jobs whose replies are not judged yet,
        every PIPELINE_JUDGE_POLL_S, while this instance leads provisioning."""
        assert self.judging is not None
        every = self.settings.judge.poll_s
        while not stop.is_set():
            if self.leases.valid(PROVISIONING):
                await guarded(self.judging.round, time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

    def watchdog(self, now: float) -> None:
        heard, telemetry_connected = self.last_heard()
        self.provisioner.watchdog(heard, self.settings.agent.heartbeat_timeout_s, now,
                                  self.connected() and telemetry_connected)

    def connected(self) -> bool:
        return connected(self.broker)

    async def close(self) -> None:
        """Every step runs whatever failed before (NATS or PostgreSQL may be down). The pods keep
        running: the next handlers worker adopts them; a stack shutdown ends them
        (pipeline/supervisor.py)."""
        await close_all("handlers", ("the broker", self.broker.stop),
                        *(("a telemetry broker", broker.stop) for broker in self.telemetry_brokers),
                        ("NATS", self.objects_nc.close),
                        ("the pool", self.pool.close), ("the lease", self.leases.close),
                        ("the event store", self.store.close))


HEARD = ("SELECT job_id, extract(epoch FROM now() - heard_at) FROM pod_heartbeats"
         " WHERE heard_at > now() - interval '1 day'")
TELEMETRY_LEADERS_CONNECTED = (  # the partitions of the telemetry led by an instance connected to NATS
    "SELECT count(DISTINCT domain) FROM worker_instances, unnest(leads) AS domain WHERE kind = 'handlers'"
    " AND domain LIKE 'telemetry-%%' AND nats_ok AND seen_at > now() - make_interval(secs => %s)")


def write_heartbeats(pool: ConnectionPool, heard: dict[str, float]) -> None:
    """`heard`: job → monotonic time; stored as the database's time, so that any instance reads the same age."""
    now = time.monotonic()
    jobs, ages = list(heard), [max(0.0, now - at) for at in heard.values()]
    with pool.connection() as conn:
        conn.execute(WRITE_HEARD, (jobs, ages))


WRITE_HEARD = (
    "INSERT INTO pod_heartbeats (job_id, heard_at) SELECT job, now() - make_interval(secs => age)"
    " FROM unnest(%s::uuid[], %s::float8[]) AS h(job, age)"
    " ON CONFLICT (job_id) DO UPDATE SET heard_at = GREATEST(pod_heartbeats.heard_at, EXCLUDED.heard_at)")


def pod_provider(settings: Settings) -> Any:
    if settings.agent.pod_provider == "runpod":
        from handlers.pods.runpod import runpod_provider_from_settings  # RunPod's REST API v2 (docs/operations.md)

        return runpod_provider_from_settings(settings)
    return local.LocalProvider(settings.runtime.state_dir.resolve() / "pods", threads=settings.agent.threads)


def judging_rounds(settings: Settings, app: Any, read_object: Callable[[ArtifactRef], bytes],
                   job_ids: Callable[..., list[UUID]], leading: Callable[[], bool]) -> JudgingRounds | None:
    """The model judge's loop when PIPELINE_JUDGE_URL and _MODEL are set (its key stays in this process)."""
    judge = settings.judge
    if not judge.configured:
        return None
    client = JudgeClient(JudgeConfig(judge.url, judge.model, judge.api_key.get_secret_value(), judge.input_price,
                                     judge.output_price, judge.timeout_s, judge.max_attempts, judge.max_wait_s,
                                     judge.malformed_retries))
    reactor = JudgingReactor(app, read_object, client, still_leading=leading)
    return JudgingRounds(reactor, lambda: job_ids(judging_pending()), judge.retry_s)


def billing_reconciler(settings: Settings, app: Any, provider: Any) -> BillingReconciler | None:
    """For a provider that reports its own charges (RunPod): each ended pod's bill, read back."""
    if not hasattr(provider, "billing"):
        return None
    r = settings.runpod
    return BillingReconciler(app, provider, delay_s=r.billing_delay_s, every_s=300.0, reads=r.billing_reads)


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
