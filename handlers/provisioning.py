"""Provisioning reactor: queued jobs get pods running the GPU agent (FIFO, at most `max_running` at
once), no capacity is retried (FR3.1.3), interrupted jobs resume on a new pod from their latest
checkpoint (FR3.2.1), ended jobs lose their pods, and pod lifetimes are costed as they run."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import nats.errors

from domain.applications import Pipeline
from domain.gpu_memory.job_check import InsufficientGpuMemoryError, MemoryCheck
from domain.job_status import FailureType, JobStatus
from domain.preset_choice import DEFAULT_SEED
from domain.values import ArtifactRef
from handlers.billing import BillingReconciler
from handlers.evaluation import evaluation_inputs, evaluation_spec
from handlers.pods.provider import NoCapacityError, PodExit, PodProvider
from infra import bus, db
from infra.nats_tls import check_pod_url
from infra.natsauth import NatsAuthority
from infra.objectstore import StoredCheckpoint
from infra.pod_env import encode_json

Stager = Callable[[UUID, list[ArtifactRef]], list[ArtifactRef]]
"""Copies a job's input objects into the job's own bucket (infra/staging.py); returns their refs there."""
CheckpointFinder = Callable[[UUID, int], StoredCheckpoint | None]
"""The newest checkpoint an attempt's pod finished uploading (infra/objectstore.newest_checkpoint)."""

log = logging.getLogger(__name__)
PROVISIONABLE = {JobStatus.QUEUED, JobStatus.QUEUED_WAITING_FOR_GPU, JobStatus.RECOVERING}
ENDED = ("TrainingJob.Cancelled", "TrainingJob.Failed", "TrainingJob.Completed")
PAUSED = JobStatus.PAUSED
# gpu_agent exit codes after which it should have said why on TELEMETRY (docs/gpu-agent.md);
# if its report does not arrive within REPORT_GRACE_S the job is interrupted all the same.
REPORTED_EXITS = {0, 1, 2, 143}
REPORT_GRACE_S = 60.0
# A provider that cannot tell the exit code (RunPod: the container EXITED) gets a shorter grace: the
# agent reports before it exits, so a report that is coming is here within seconds.
UNTOLD_EXIT_GRACE_S = 15.0
REPORTED_CAUSES = {"exited", "ended_by_us"}  # the container stopped, or we ended it (SIGTERM): the agent had its say
EARLY_EXIT_KEEP_S = 60.0  # an exit reported before its pod was recorded is kept this long
# Our own NATS or PostgreSQL away for a moment (a cluster node lost, a restart) while a pod's inputs
# were staged or its credentials issued: no lack of GPUs, so tried again in seconds, not minutes.
HICCUP_RETRY_S = 5.0
HICCUPS: tuple[type[Exception], ...] = (nats.errors.Error, TimeoutError, ConnectionError, bus.BusUnavailableError,
                                        *db.UNAVAILABLE)


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class AgentSettings:
    nats_url: str
    base_model: str = "tiny"
    qlora: bool = False
    checkpoint_every: int = 100
    max_steps: int = -1
    heartbeat_s: float = 5.0
    first_attempt_fault: str = ""  # test-only: injected into attempt 1 only (see docs/operations.md)
    hf_token: str = field(default="", repr=False)  # reads gated hub models; to the pod's env only
    nats_ca: str = ""  # PEM: the CA pods verify NATS's certificate with (infra/nats_tls.py)
    gpu_memory_gb: float = 80.0

    def memory_check(self) -> MemoryCheck:
        return MemoryCheck(self.base_model, self.qlora, self.gpu_memory_gb)


@dataclass(frozen=True)
class QueuePolicy:
    max_running: int = 3          # FR2.3.2: at most this many jobs hold a pod (or are getting one)
    retry_every_s: float = 300.0  # FR3.1.3: no capacity → try again every 5 minutes…
    retry_window_s: float = 3600.0  # …for up to an hour, then the job waits for the user's choice


class Provisioner:
    """A singleton per deployment (the handlers worker holds an advisory lock). Its operations run
    under one lock: the consumer thread and the worker's loop both call in."""

    def __init__(self, app: Pipeline, provider: PodProvider, agent: AgentSettings,
                 queue: QueuePolicy = QueuePolicy(), queued_jobs: Callable[[], list[UUID]] = list,
                 stage: Stager | None = None, authority: NatsAuthority | None = None,
                 billing: BillingReconciler | None = None, find_checkpoint: CheckpointFinder | None = None) -> None:
        self.app, self.provider, self.agent, self.queue = app, provider, agent, queue
        self.find_checkpoint = find_checkpoint
        self.billing = billing
        self.early_exits: list[tuple[PodExit, float]] = []  # reported before their pod was recorded
        self.queued_jobs = queued_jobs
        self.stage: Stager = stage or (lambda job_id, refs: refs)
        self.authority = authority
        self.pods: dict[str, UUID] = {}
        self.pod_attempts: dict[str, int] = {}
        self.pod_started_at: dict[str, float] = {}
        self.active: set[UUID] = set()
        self.waiting: dict[UUID, tuple[float, float]] = {}  # job → (first failure, next try), monotonic
        self.awaiting_report: dict[UUID, tuple[int, float]] = {}  # job → (attempt, deadline), monotonic
        self.lock = threading.RLock()

    # --- events ---------------------------------------------------------------------------------

    def on_event(self, topic: str, job_id: UUID) -> None:
        # A paused job gives its slot back as an ended one does (a Paused redelivered after a resume does not)
        released = topic in ENDED or (topic == "TrainingJob.Paused" and self.app.get_job(job_id).status == PAUSED)
        with self.lock:
            if topic in ("TrainingJob.Queued", "TrainingJob.ResumeRequested"):
                self.admit(job_id)
            elif topic == "TrainingJob.Interrupted":
                self.recover(job_id)
            elif topic == "TrainingJob.GpuTierChanged":
                self.switched(job_id)
            elif topic == "TrainingJob.PauseRequested":
                self.pause(job_id)
            elif released:
                self.stop_pods(job_id)
                self.revoke(job_id)
                self.active.discard(job_id)
                self.waiting.pop(job_id, None)
                self.awaiting_report.pop(job_id, None)
        if released:  # outside the lock: charging reads the month's budget, other jobs need not wait
            self.app.record_job_spend(job_id, now())  # releases what is left once no pod runs
            self.promote()

    def admit(self, job_id: UUID) -> None:
        """A newly queued job: provisioned now if a slot is free, else it waits its turn (FIFO)."""
        with self.lock:
            if job_id in self.active or len(self.active) < self.queue.max_running:
                self.provision(job_id)

    def promote(self) -> None:
        """Fills free slots with the oldest queued jobs."""
        with self.lock:
            for job_id in self.queued_jobs():
                if len(self.active) >= self.queue.max_running:
                    return
                if job_id not in self.active:
                    self.provision(job_id)

    def switched(self, job_id: UUID) -> None:
        """Switched to another GPU tier while waiting for one: tried again at once, the retry
        window starting afresh (a queued job simply keeps its place)."""
        with self.lock:
            if job_id in self.waiting or self.app.get_job(job_id).status == JobStatus.QUEUED_WAITING_FOR_GPU:
                self.waiting.pop(job_id, None)
                self.provision(job_id)

    # --- pods -----------------------------------------------------------------------------------

    def provision(self, job_id: UUID) -> None:
        """Starts a pod attempt for a job that needs one; a repeated event finds nothing to do."""
        with self.lock:
            started = self.app.update_job(job_id, lambda job: self._start(job))
            if started is None:
                return
            self.active.add(job_id)
            attempt, gpu_tier, job = started
            if self.refused_before_renting(job_id, job):
                return
            try:
                check_pod_url(self.agent.nats_url, "the pods' NATS URL (PIPELINE_AGENT_NATS_URL)")
                env = self.pod_env(job, attempt)
                pod = self.provider.create_pod(str(job_id), attempt, gpu_tier, env)
            except Exception as exc:  # noqa: BLE001 - no capacity, or any provider error: retried
                reason = str(exc) if isinstance(exc, NoCapacityError) else f"{type(exc).__name__}: {exc}"
                hiccup = isinstance(exc, HICCUPS) and not isinstance(exc, NoCapacityError)
                retry_s = HICCUP_RETRY_S if hiccup else self.queue.retry_every_s
                log.warning("job %s: no pod (%s%s); retrying in %.0fs", job_id, reason,
                            ": the control plane's NATS or PostgreSQL, not the GPUs" if hiccup else "", retry_s)
                self.revoke(job_id, attempt)
                self.app.update_job(job_id, lambda job: job.provisioning_failed(attempt, reason, now()))
                if getattr(exc, "final", False):  # waiting cannot help (no spot at all): the user's choice now
                    self.app.update_job(job_id, lambda job: job.provisioning_timed_out(Decimal(0), now()))
                    return
                first = self.waiting.get(job_id, (time.monotonic(), 0.0))[0]
                self.waiting[job_id] = (first, time.monotonic() + retry_s)
                return
            self.waiting.pop(job_id, None)
            self.pods[pod.pod_id] = job_id
            self.pod_attempts[pod.pod_id] = attempt
            self.pod_started_at[pod.pod_id] = time.monotonic()
            ended = self.app.update_job(job_id, lambda job: self._pod_started(job, pod, attempt))
            if ended:  # cancelled while the pod was being created
                self.provider.terminate(pod.pod_id)
            log.info("job %s: attempt %d on pod %s", job_id, attempt, pod.pod_id)

    def refused_before_renting(self, job_id: UUID, job: Any) -> bool:
        """The pre-flight memory check (domain/gpu_memory/job_check.py): a configuration that cannot fit
        the GPU fails its job now, with the figure and the fixes, before a pod is rented."""
        try:
            self.agent.memory_check().check(job.configuration["hyperparameters"])
        except InsufficientGpuMemoryError as exc:
            log.warning("job %s: refused before renting a pod: %s", job_id, exc)
            message, details = str(exc), exc.details()
            self.app.update_job(job_id, lambda j: j.fail(FailureType.OOM, message, details, now()))
            return True
        return False

    @staticmethod
    def _start(job: Any) -> tuple[int, str, Any] | None:
        if job.status not in PROVISIONABLE:
            return None
        tier = job.configuration["gpu_tier"]
        return job.start_provisioning(tier, now()), tier, job

    @staticmethod
    def _pod_started(job: Any, pod: Any, attempt: int) -> bool:
        job.pod_started(pod.pod_id, attempt, pod.hourly_rate, pod.started_at)
        return job.is_terminal

    def pod_env(self, job: Any, attempt: int) -> dict[str, str]:
        """The agent's environment: its job's objects staged into the job's bucket, and NATS
        credentials that reach nothing else (when the server's users are ours to manage)."""
        resume = job.latest_checkpoint
        evaluation = evaluation_inputs(job)  # FR6.3 suites, a re-evaluation's adapter (handlers/evaluation.py)
        validation = [job.validation_file] if getattr(job, "validation_file", None) else []  # /v1 validation_file
        staged = self.stage(job.id, [job.training_file, *validation, *([resume] if resume else []), *evaluation])
        config = job.configuration
        spec = {"training_file": staged[0].as_dict(), "hyperparameters": config["hyperparameters"],
                **({"validation_file": staged[1].as_dict()} if validation else {}),
                "base_model": self.agent.base_model, "qlora": self.agent.qlora,
                # a template's or a cloned job's checkpoint frequency (FR5.2.2), else the deployment's
                "checkpoint_every": int(config["hyperparameters"].get("save_steps") or self.agent.checkpoint_every),
                "max_steps": self.agent.max_steps,
                "heartbeat_s": self.agent.heartbeat_s,
                "seed": int(config["hyperparameters"].get("seed", DEFAULT_SEED)),  # one asked for through /v1
                "fault": self.agent.first_attempt_fault if attempt == 1 else "",
                **evaluation_spec(job, staged[len(staged) - len(evaluation):])}
        env = {"PIPELINE_JOB_ID": str(job.id), "PIPELINE_ATTEMPT": str(attempt), "NATS_URL": self.agent.nats_url,
               "PIPELINE_JOB_CONFIG": encode_json(spec), "PIPELINE_POD_NONCE": secrets.token_hex(8)}
        if resume is not None:
            env["PIPELINE_RESUME_FROM"] = encode_json(staged[1 + len(validation)].as_dict())
        if self.authority is not None:
            env |= self.authority.grant(str(job.id), attempt).env()
            env["NATS_URL"] = bus.shown(self.agent.nats_url)
        if self.agent.nats_ca:
            env["PIPELINE_NATS_CA"] = self.agent.nats_ca
        if self.agent.hf_token:  # the pod's own environment only: never an event, a log line or a page
            env["HF_TOKEN"] = self.agent.hf_token
        return env

    def revoke(self, job_id: UUID, attempt: int | None = None) -> None:
        """The pod's NATS user goes with the pod (or all the job's users, once the job ended)."""
        if self.authority is not None:
            self.authority.revoke(str(job_id), attempt)

    def record_exits(self) -> list[PodExit]:
        """Pods that stopped: their lifetime closes in the job's ledger and the spend is charged. A
        pod that died without its agent reporting (SIGKILL, crash, a RunPod pod in ERROR or gone) interrupts
        its job; one whose agent should have reported gets REPORT_GRACE_S (UNTOLD_EXIT_GRACE_S when the
        provider cannot tell the exit code) for the report to arrive. The provider is asked outside the
        lock (RunPod: one HTTP call); an exit seen before its pod was recorded waits for the record."""
        exits = self.provider.exited()
        charges: list[tuple[UUID, datetime]] = []
        with self.lock:
            kept, self.early_exits = self.early_exits, []
            for gone, seen in [*kept, *((g, time.monotonic()) for g in exits)]:
                job_id = self.pods.pop(gone.pod_id, None)
                self.pod_started_at.pop(gone.pod_id, None)
                if job_id is None:
                    if time.monotonic() - seen < EARLY_EXIT_KEEP_S:
                        self.early_exits.append((gone, seen))
                    continue
                if (pod_attempt := self.pod_attempts.pop(gone.pod_id, None)) is not None:
                    self.revoke(job_id, pod_attempt)
                attempt = self.app.update_job(job_id, lambda job, g=gone: self._pod_gone(job, g))
                if attempt is not None:
                    grace = REPORT_GRACE_S if gone.exit_code in REPORTED_EXITS else UNTOLD_EXIT_GRACE_S
                    self.awaiting_report[job_id] = (attempt, time.monotonic() + grace)
                charges.append((job_id, gone.at))
                if self.billing is not None:
                    self.billing.schedule(job_id, gone.pod_id, gone.at)
                log.info("job %s: pod %s exited with %s%s", job_id, gone.pod_id, gone.exit_code,
                         f" ({gone.cause})" if gone.cause else "")
        for job_id, at in charges:  # outside the lock, as in on_event
            self.app.record_job_spend(job_id, at)
        return exits

    @staticmethod
    def _pod_gone(job: Any, gone: PodExit) -> int | None:
        """Records the stop; returns the attempt whose report is still awaited, if any."""
        job.pod_stopped(gone.pod_id, gone.at)
        attempt = next((a for a, pod in job.attempt_pods.items() if pod == gone.pod_id), None)
        if attempt is None or attempt != job.attempt:
            return None
        if gone.exit_code in REPORTED_EXITS or (gone.exit_code is None and gone.cause in REPORTED_CAUSES):
            return attempt
        said = f"pod exited with {gone.exit_code}" if gone.exit_code is not None or not gone.cause else \
            f"pod {gone.cause}"
        job.interrupt(said, job.last_step, attempt, gone.at)
        return None

    def check_reports(self, now_monotonic: float) -> None:
        """An agent that exited 'having reported' but whose report never came: interrupted."""
        with self.lock:
            for job_id, (attempt, deadline) in list(self.awaiting_report.items()):
                if now_monotonic >= deadline:
                    del self.awaiting_report[job_id]
                    self.app.update_job(job_id, lambda job, a=attempt: job.interrupt(
                        "pod exited without a report", job.last_step, a, now()))

    # --- recovery, cancellation, watchdog --------------------------------------------------------

    def recover(self, job_id: UUID, max_attempts: int = 3) -> None:
        """After an interruption: stop what is left of the old pod, start a new one that resumes from
        the latest checkpoint (FR3.2.1); after `max_attempts` failed recoveries: recovery_exhausted.
        A redelivered Interrupted finds the job no longer interrupted and does nothing."""
        with self.lock:
            job = self.app.get_job(job_id)
            if job.status != JobStatus.INTERRUPTED:
                return
            for pod_id in job.running_pods():
                self.provider.terminate(pod_id)
            self.adopt_stored_checkpoint(job)
            started = self.app.update_job(
                job_id, lambda j: j.status == JobStatus.INTERRUPTED and j.begin_recovery(now(), max_attempts))
            if started:
                self.provision(job_id)
            else:
                self.active.discard(job_id)

    def adopt_stored_checkpoint(self, job: Any) -> None:
        """A pod killed right after a checkpoint's upload (SIGKILL, a lost host) may die before the control plane
        reads that checkpoint's telemetry: the object store says what is durable, so the recovery resumes from
        the newest checkpoint the dead attempt stored, recorded now as that attempt's CheckpointSaved (its
        telemetry, when it comes, is then old news). One stored after the interruption is refused as its
        telemetry would be (TrainingJob.record_checkpoint)."""
        if self.find_checkpoint is None:
            return
        try:
            stored = self.find_checkpoint(job.id, job.attempt)
        except Exception as exc:  # noqa: BLE001 - resuming from the recorded checkpoint is still right
            log.warning("job %s: could not list its stored checkpoints (%s); resuming from the recorded one",
                        job.id, exc)
            return
        if stored is not None and stored.step > job.last_checkpoint_step:
            log.info("job %s: checkpoint of step %d was stored before its telemetry was read; resuming from it",
                     job.id, stored.step)
            self.app.update_job(job.id, lambda j, a=job.attempt, c=stored: j.record_checkpoint(
                c.step, c.ref, a, c.stored_at))

    def pause(self, job_id: UUID) -> None:
        """FR2.2.2: a pausing job's pods are stopped as a preemption would stop them (SIGTERM: the agent
        saves a checkpoint at the next step boundary and exits 143); their end pauses the job
        (TrainingJob.interrupt). A redelivered request for a job no longer pausing does nothing."""
        with self.lock:
            if self.app.get_job(job_id).status == JobStatus.PAUSING:
                self.stop_pods(job_id)

    def stop_pods(self, job_id: UUID) -> None:
        """A cancelled (or otherwise ended) job: its pods are terminated (SIGTERM, then SIGKILL)."""
        for pod_id in self.app.get_job(job_id).running_pods():
            self.provider.terminate(pod_id)

    def watchdog(self, last_heard: dict[str, float], timeout_s: float, now_monotonic: float,
                 bus_connected: bool = True) -> None:
        """No telemetry from a running pod for `timeout_s` (counted from the pod's start at the
        earliest): the job is interrupted and the pod terminated. Paused while this worker itself
        is cut off from NATS, when silence says nothing about the pods."""
        if not bus_connected:
            for job in list(last_heard):
                last_heard[job] = now_monotonic
            return
        with self.lock:
            for pod_id, job_id in list(self.pods.items()):
                heard = max(last_heard.get(str(job_id), 0.0), self.pod_started_at.get(pod_id, now_monotonic))
                if now_monotonic - heard > timeout_s:
                    log.warning("job %s: no telemetry for %.0fs from pod %s", job_id, now_monotonic - heard, pod_id)
                    self.app.update_job(job_id, lambda job: job.interrupt("heartbeat lost", job.last_step,
                                                                          job.attempt, now()))
                    self.provider.terminate(pod_id)
                    last_heard[str(job_id)] = now_monotonic

    def retry_waiting(self, now_monotonic: float) -> None:
        with self.lock:
            for job_id, (first, next_try) in list(self.waiting.items()):
                if now_monotonic < next_try:
                    continue
                if now_monotonic - first > self.queue.retry_window_s:
                    log.warning("job %s: no GPU within %.0fs; waiting for the user to switch or cancel",
                                job_id, self.queue.retry_window_s)
                    del self.waiting[job_id]
                    waited = Decimal(round(now_monotonic - first))
                    self.app.update_job(job_id, lambda job, w=waited: job.provisioning_timed_out(w, now()))
                    continue
                self.provision(job_id)

    def reconcile_billing(self) -> int:
        """Bills of ended pods that are due, read back and recorded (handlers/billing.py)."""
        return self.billing.run_due() if self.billing is not None else 0

    def charge_running(self) -> None:
        """Spend of running jobs charged as they run, so budgets and alerts stay current."""
        with self.lock:
            jobs = set(self.pods.values())
        for job_id in jobs:
            self.app.record_job_spend(job_id, now())

    def adopt(self, active_jobs: list[UUID], waiting_jobs: list[UUID]) -> None:
        """At start (after a restart of this worker): pods recorded as running that the provider still
        knows are watched again (their exits, telemetry and spend as before: no interruption, no new
        pod); those it does not know are gone: recorded as stopped and their jobs interrupted (then
        recovered); jobs waiting for a GPU are retried at once."""
        with self.lock:
            self.active = set(active_jobs)
            if self.authority is not None:
                self.authority.retain({str(job_id) for job_id in active_jobs})
            jobs = {job_id: self.app.get_job(job_id) for job_id in active_jobs}
            known = self._adopt_pods(jobs)
            for job_id, job in jobs.items():
                lost = [p for p in job.running_pods() if p not in known]
                current_kept = job.attempt_pods.get(job.attempt) in known
                if lost:
                    self.app.update_job(job_id, lambda j, pods=lost, keep=current_kept: self._lost(j, pods, keep))
                if lost or current_kept:  # kept: it trains on; lost: its Interrupted event starts the recovery
                    continue
                if job.status == JobStatus.PROVISIONING and self._adopt_named(job_id, job):
                    continue
                if job.status == JobStatus.PROVISIONING:  # died between asking and getting a pod
                    self.app.update_job(job_id, lambda j: j.provisioning_failed(j.attempt, "worker restarted", now()))
                    waiting_jobs = [*waiting_jobs, job_id]
                elif job.status == JobStatus.RECOVERING or (
                        job.status == JobStatus.QUEUED_WAITING_FOR_GPU and not job.awaiting_gpu_decision):
                    waiting_jobs = [*waiting_jobs, job_id]
                elif job.status == JobStatus.INTERRUPTED:
                    self.recover(job_id)
            for job_id in waiting_jobs:
                self.waiting[job_id] = (time.monotonic(), 0.0)

    def _adopt_pods(self, jobs: dict[UUID, Any]) -> set[str]:
        """The jobs' running pods the provider still knows (running, or ended unwatched: then its
        next `exited()` reports them), watched from now on as if this worker had started them."""
        recorded = {pod_id: (job_id, attempt) for job_id, job in jobs.items()
                    for attempt, pod_id in job.attempt_pods.items() if pod_id in job.running_pods()}
        adopt = getattr(self.provider, "adopt", None)  # a provider without it knows no pod it did not start
        known = set(adopt(list(recorded)) if adopt is not None and recorded else [])
        for pod_id in known:
            job_id, attempt = recorded[pod_id]
            self.pods[pod_id], self.pod_attempts[pod_id] = job_id, attempt
            self.pod_started_at[pod_id] = time.monotonic()
            log.info("job %s: adopted pod %s (attempt %d)", job_id, pod_id, attempt)
        return known

    def _adopt_named(self, job_id: UUID, job: Any) -> bool:
        """A worker that died between renting a pod and recording it: the provider finds the attempt's
        pod by its name (RunPod: lora-<job>-a<attempt>); it is recorded and watched, not rented again."""
        find = getattr(self.provider, "find_pod", None)
        pod = find(str(job_id), job.attempt) if find is not None else None
        if pod is None:
            return False
        attempt = job.attempt
        self.pods[pod.pod_id], self.pod_attempts[pod.pod_id] = job_id, attempt
        self.pod_started_at[pod.pod_id] = time.monotonic()
        self.app.update_job(job_id, lambda j: self._pod_started(j, pod, attempt))
        log.info("job %s: adopted pod %s (attempt %d) found by its name", job_id, pod.pod_id, attempt)
        return True

    @staticmethod
    def _lost(job: Any, pods: list[str], current_kept: bool = False) -> None:
        at = now()
        for pod_id in pods:
            job.pod_stopped(pod_id, at)
        if not current_kept:  # the current attempt's pod is gone too (else only older ones: it trains on)
            job.interrupt("pod lost while the handlers restarted", job.last_step, job.attempt, at)

    def fault(self, job_id: UUID | None, action: str, count: int = 1) -> list[str]:
        """Fault injection on the local provider: preempt (SIGTERM), kill (SIGKILL), freeze (SIGSTOP),
        no_capacity for the next `count` requests, slow_start (`count` seconds per pod start)."""
        if not hasattr(self.provider, "preempt"):
            raise ValueError("fault injection needs the local pod provider")
        if action == "no_capacity":
            self.provider.no_capacity(count)
            return []
        if action == "slow_start":
            self.provider.start_delay_s = float(count)
            return []
        pods = [p for p, j in self.pods.items() if j == job_id]
        for pod_id in pods:
            getattr(self.provider, {"preempt": "preempt", "kill": "kill", "freeze": "freeze"}[action])(pod_id)
        return pods
