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


@dataclass(frozen=True)
class AgentSettings:
    nats_url: str
    base_model: str = "tiny"
    qlora: bool = False
    checkpoint_every: int = 100
    max_steps: int = -1
    heartbeat_s: float = 5.0


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
                "heartbeat_s": self.agent.heartbeat_s, "seed": 42}
        env = {"PIPELINE_JOB_ID": str(job.id), "PIPELINE_ATTEMPT": str(attempt), "NATS_URL": self.agent.nats_url,
               "PIPELINE_JOB_CONFIG": encode_spec(spec)}
        if job.latest_checkpoint is not None:
            env["PIPELINE_RESUME_FROM"] = encode_spec(job.latest_checkpoint.as_dict())
        return env

    def record_exits(self) -> list[PodExit]:
        """Pods that stopped: their lifetime closes in the job's ledger and the spend is charged."""
        exits = self.provider.exited()
        for gone in exits:
            job_id = self.pods.pop(gone.pod_id, None)
            if job_id is None:
                continue
            self.app.update_job(job_id, lambda job, g=gone: job.pod_stopped(g.pod_id, g.at))
            self.app.record_job_spend(job_id, gone.at)
            log.info("job %s: pod %s exited with %s", job_id, gone.pod_id, gone.exit_code)
        return exits
