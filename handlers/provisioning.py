"""Provisioning reactor: a queued job gets a pod running the GPU agent; pod exits are recorded
and costed (FR1.3.2 start workflow, FR3.1.3)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from domain.applications import Pipeline
from domain.job_status import JobStatus
from gpu_agent.config import encode_spec
from handlers.pods.provider import NoCapacityError, PodExit, PodProvider

log = logging.getLogger(__name__)
PROVISIONABLE = {JobStatus.QUEUED, JobStatus.QUEUED_WAITING_FOR_GPU, JobStatus.RECOVERING}
# gpu_agent exit codes after which it has already said why on TELEMETRY (docs/gpu-agent.md).
REPORTED_EXITS = {0, 1, 2, 143}


@dataclass(frozen=True)
class AgentSettings:
    nats_url: str
    base_model: str = "tiny"
    qlora: bool = False
    checkpoint_every: int = 100
    max_steps: int = -1
    heartbeat_s: float = 5.0
    first_attempt_fault: str = ""  # test-only: injected into attempt 1 only (see docs/operations.md)


class Provisioner:
    def __init__(self, app: Pipeline, provider: PodProvider, agent: AgentSettings) -> None:
        self.app, self.provider, self.agent = app, provider, agent
        self.pods: dict[str, UUID] = {}

    def provision(self, job_id: UUID) -> None:
        """Starts a pod attempt for a job that needs one; a repeated event finds nothing to do."""
        now = datetime.now(timezone.utc)

        def start(job: Any) -> tuple[int, dict[str, str]] | None:
            if job.status not in PROVISIONABLE:
                return None
            attempt = job.start_provisioning(job.configuration["gpu_tier"], now)
            return attempt, self.agent_env(job, attempt)

        started = self.app.update_job(job_id, start)
        if started is None:
            return
        attempt, env = started
        gpu_tier = self.app.get_job(job_id).configuration["gpu_tier"]
        try:
            pod = self.provider.create_pod(str(job_id), attempt, gpu_tier, env)
        except NoCapacityError as exc:
            log.warning("job %s: no capacity (%s)", job_id, exc)
            self.app.update_job(job_id, lambda job: job.provisioning_failed(attempt, str(exc), datetime.now(timezone.utc)))
            return
        self.pods[pod.pod_id] = job_id
        self.app.update_job(job_id, lambda job: job.pod_started(pod.pod_id, attempt, pod.hourly_rate, pod.started_at))
        log.info("job %s: attempt %d on pod %s", job_id, attempt, pod.pod_id)

    def agent_env(self, job: Any, attempt: int) -> dict[str, str]:
        config = job.configuration
        spec = {"training_file": job.training_file.as_dict(), "hyperparameters": config["hyperparameters"],
                "base_model": self.agent.base_model, "qlora": self.agent.qlora,
                "checkpoint_every": self.agent.checkpoint_every, "max_steps": self.agent.max_steps,
                "heartbeat_s": self.agent.heartbeat_s, "seed": 42,
                "fault": self.agent.first_attempt_fault if attempt == 1 else ""}
        env = {"PIPELINE_JOB_ID": str(job.id), "PIPELINE_ATTEMPT": str(attempt), "NATS_URL": self.agent.nats_url,
               "PIPELINE_JOB_CONFIG": encode_spec(spec)}
        if job.latest_checkpoint is not None:
            env["PIPELINE_RESUME_FROM"] = encode_spec(job.latest_checkpoint.as_dict())
        return env

    def record_exits(self) -> list[PodExit]:
        """Pods that stopped: their lifetime closes in the job's ledger and the spend is charged. A
        pod that died while its job still needed it (SIGKILL, host lost) interrupts the job, which
        the recovery reactor then resumes elsewhere."""
        exits = self.provider.exited()
        for gone in exits:
            job_id = self.pods.pop(gone.pod_id, None)
            if job_id is None:
                continue
            self.app.update_job(job_id, lambda job, g=gone: self._pod_gone(job, g))
            self.app.record_job_spend(job_id, gone.at)
            log.info("job %s: pod %s exited with %s", job_id, gone.pod_id, gone.exit_code)
        return exits

    @staticmethod
    def _pod_gone(job: Any, gone: PodExit) -> None:
        job.pod_stopped(gone.pod_id, gone.at)
        if gone.exit_code in REPORTED_EXITS:
            return  # the agent reported its own outcome (completed, failed, interrupted) before exiting
        attempt = next((a for a, pod in job.attempt_pods.items() if pod == gone.pod_id), None)
        if attempt is not None:
            job.interrupt(f"pod exited with {gone.exit_code}", job.last_step, attempt, gone.at)

    def recover(self, job_id: UUID, max_attempts: int = 3) -> None:
        """After an interruption: stop what is left of the old pod, start a new one that resumes from
        the latest checkpoint (FR3.2.1); after `max_attempts` failed recoveries: recovery_exhausted."""
        for pod_id in self.app.get_job(job_id).running_pods():
            self.provider.terminate(pod_id)
        now = datetime.now(timezone.utc)
        started = self.app.update_job(
            job_id, lambda job: job.status == JobStatus.INTERRUPTED and job.begin_recovery(now, max_attempts))
        if started:
            self.provision(job_id)

    def on_event(self, topic: str, job_id: UUID) -> None:
        """The job events this reactor acts on."""
        if topic == "TrainingJob.Queued":
            self.provision(job_id)
        elif topic == "TrainingJob.Interrupted":
            self.recover(job_id)
        elif topic in ("TrainingJob.Cancelled", "TrainingJob.Failed", "TrainingJob.Completed"):
            self.stop_pods(job_id)

    def fault(self, job_id: UUID | None, action: str, count: int = 1) -> list[str]:
        """Fault injection on the local provider: preempt (SIGTERM), kill (SIGKILL), no_capacity."""
        if action == "no_capacity":
            self.provider.no_capacity(count)
            return []
        pods = [p for p, j in self.pods.items() if j == job_id]
        for pod_id in pods:
            getattr(self.provider, {"preempt": "preempt", "kill": "kill"}[action])(pod_id)
        return pods

    def stop_pods(self, job_id: UUID) -> None:
        """A cancelled (or otherwise ended) job: its pods are terminated (SIGTERM, then SIGKILL)."""
        for pod_id in self.app.get_job(job_id).running_pods():
            self.provider.terminate(pod_id)

    def watchdog(self, last_heard: dict[str, float], timeout_s: float, now_monotonic: float) -> None:
        """No telemetry from a running pod for `timeout_s`: the job is interrupted (the pod may be
        stopped, lost, or hung) and its pod terminated."""
        for pod_id, job_id in list(self.pods.items()):
            heard = last_heard.setdefault(str(job_id), now_monotonic)
            if now_monotonic - heard > timeout_s:
                log.warning("job %s: no heartbeat for %.0fs from pod %s", job_id, now_monotonic - heard, pod_id)
                now = datetime.now(timezone.utc)
                self.app.update_job(job_id, lambda job: job.interrupt("heartbeat lost", job.last_step, job.attempt, now))
                self.provider.terminate(pod_id)
                last_heard[str(job_id)] = now_monotonic
