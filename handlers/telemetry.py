"""Telemetry reactor: the agent's milestones become TrainingJob commands (steps throttled).
Every command is idempotent in the aggregate, so redelivery changes nothing."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.applications import Pipeline
from domain.job_status import FailureType, JobStatus
from domain.values import ArtifactRef
from infra.consumers import PoisonMessageError
from infra.telemetry import Telemetry


class ForgedTelemetryError(PoisonMessageError):
    """A telemetry message whose subject and body name different jobs."""

PROGRESS_EVERY_STEPS = 25
PROGRESS_EVERY_S = 30.0


class TelemetryHandler:
    def __init__(self, app: Pipeline) -> None:
        self.app = app
        self.last_progress: dict[str, tuple[int, float]] = {}
        self.heartbeats: dict[str, float] = {}

    def handle(self, subject: str, body: bytes) -> None:
        """`subject` is where the pod published: its credentials allow only its own job's
        subjects, so a body naming another job is forged and refused (dead-lettered, recorded)."""
        message = Telemetry.model_validate_json(body)
        if subject != message.subject:
            raise ForgedTelemetryError(f"message on {subject} claims to be {message.subject}: refused")
        job_id, data = UUID(message.job_id), message.data
        at = datetime.fromisoformat(message.at)
        self.heartbeats[message.job_id] = time.monotonic()
        command = self.command(message, data, at)
        if command is not None:
            self.app.update_job(job_id, command)

    def command(self, message: Telemetry, data: dict[str, Any], at: datetime) -> Any:
        attempt, kind = message.attempt, message.kind
        if kind == "stage":
            return lambda job: job.change_stage(JobStatus(data["stage"]), attempt, at)
        if kind == "step" and self.progress_due(message.job_id, data["step"], data.get("total_steps")):
            return lambda job: job.record_progress(data["step"], data.get("total_steps") or 0,
                                                   float(data.get("epoch") or 0), data.get("loss"), attempt, at)
        if kind == "checkpoint":
            ref = ArtifactRef(**data["checkpoint"])
            return lambda job: job.record_checkpoint(data["step"], ref, attempt, at)
        if kind == "eval" and float(data.get("epoch") or 0).is_integer():
            return lambda job: job.complete_epoch(int(data["epoch"]), data.get("eval_loss"), attempt, at)
        if kind == "interrupted":
            return lambda job: job.interrupt(data.get("reason") or "interrupted", data.get("step") or job.last_step,
                                             attempt, at)
        if kind == "failed":
            return lambda job: attempt == job.attempt and job.fail(
                FailureType(data.get("failure_type", "unknown")), data.get("message", ""), data.get("details") or {},
                at)
        if kind == "completed":
            ref = ArtifactRef(**data["adapter"])
            return lambda job: job.complete(ref, json.loads(json.dumps(data.get("metrics") or {})), attempt, at)
        return None

    def progress_due(self, job_id: str, step: int, total: int | None) -> bool:
        """Every PROGRESS_EVERY_STEPS steps or seconds, and the last step: enough for cost and ETA,
        while the full curve goes to the metrics table from the stream itself."""
        last_step, last_time = self.last_progress.get(job_id, (0, 0.0))
        now = time.monotonic()
        due = step - last_step >= PROGRESS_EVERY_STEPS or now - last_time >= PROGRESS_EVERY_S or step == total
        if due:
            self.last_progress[job_id] = (step, now)
        return due
