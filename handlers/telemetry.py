"""Telemetry reactor: the agent's milestones become TrainingJob commands (steps throttled).
Every command is idempotent in the aggregate, so redelivery changes nothing."""

from __future__ import annotations

import json
import time
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.applications import Pipeline
from domain.job_status import FailureType, JobStatus
from domain.values import ArtifactRef
from handlers.evaluation import PROGRESS_EVERY_S as EVALUATION_PROGRESS_EVERY_S
from handlers.evaluation import ReadObject, read_evaluation
from infra.consumers import PoisonMessageError
from infra.telemetry import Telemetry


class ForgedTelemetryError(PoisonMessageError):
    """A telemetry message whose subject and body name different jobs."""

PROGRESS_EVERY_STEPS = 25
PROGRESS_EVERY_S = 30.0
# A pod stepping fast (a small model: tens of steps a second) is not recorded every 25 steps: at most every
# 5 s. The jobs list, cost and ETA need no more; the loss curve has every step from the stream itself.
PROGRESS_AT_MOST_EVERY_S = 5.0


class TelemetryHandler:
    def __init__(self, app: Pipeline, read_object: ReadObject | None = None) -> None:
        """`read_object`: the object store's bytes of a ref (the evaluation results, handlers/evaluation.py)."""
        self.app = app
        self.read_object = read_object
        self.last_evaluation_progress: dict[str, float] = {}
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
            follow_up = self.app.update_job(job_id, command)
            if callable(follow_up):  # a re-evaluation's results, recorded on the job it evaluated too
                follow_up()

    def command(self, message: Telemetry, data: dict[str, Any], at: datetime) -> Any:
        attempt, kind = message.attempt, message.kind
        if kind == "stage":
            data_figures, memory_figures = training_setup(data)
            download = model_download(data)

            def stage(job: Any) -> None:
                if data_figures is not None:
                    job.record_data_measurement(attempt, at, **data_figures)
                if memory_figures is not None:
                    job.record_memory_guard(attempt, at, **memory_figures)
                if download is not None and (pod := job.attempt_pods.get(attempt)) is not None:
                    job.record_model_download(pod, attempt, at=at, **download)
                job.change_stage(JobStatus(data["stage"]), attempt, at)

            return stage
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
        if kind == "evaluation" and self.evaluation_progress_due(message.job_id, data):
            return lambda job: job.record_evaluation_progress(str(data["part"])[:200], int(data["done"]),
                                                              int(data["total"]), attempt, at)
        if kind == "completed":
            return self.completed(message, data, at)
        return None

    def completed(self, message: Telemetry, data: dict[str, Any], at: datetime) -> Any:
        """The evaluation (read outside the job's update: I/O) is recorded, then the completion, in
        one save; a re-evaluation job's adapter is the one it evaluated."""
        attempt = message.attempt
        ref = ArtifactRef(**data["adapter"]) if data.get("adapter") else None
        evaluation = read_evaluation(data, message.job_id, attempt, self.read_object)
        metrics = json.loads(json.dumps(data.get("metrics") or {}))

        def complete(job: Any) -> Any:
            if evaluation is not None and attempt == job.attempt:
                evaluation.record(job, attempt, at)
            adapter = ref or job.evaluates_adapter
            if adapter is None:  # a training job's completion names its adapter: a malformed message
                raise PoisonMessageError("a completed message without an adapter")
            job.complete(adapter, metrics, attempt, at)
            original = job.evaluates
            if evaluation is None or original is None:
                return None
            return lambda: self.app.update_job(original, lambda o: evaluation.record_for_original(o, attempt, at,
                                                                                                  job.id))

        return complete

    def evaluation_progress_due(self, job_id: str, data: dict[str, Any]) -> bool:
        """Every EVALUATION_PROGRESS_EVERY_S seconds, and each part's end."""
        if not {"part", "done", "total"} <= data.keys():
            return False
        now = time.monotonic()
        if data["done"] == data["total"] or now - self.last_evaluation_progress.get(job_id, 0.0) >= \
                EVALUATION_PROGRESS_EVERY_S:
            self.last_evaluation_progress[job_id] = now
            return True
        return False

    def progress_due(self, job_id: str, step: int, total: int | None) -> bool:
        """Every PROGRESS_EVERY_STEPS steps (but not more often than every PROGRESS_AT_MOST_EVERY_S) or every
        PROGRESS_EVERY_S, the first step this worker sees and the last step: enough for cost and ETA, while the
        full curve goes to the metrics table from the stream itself."""
        last_step, last_time = self.last_progress.get(job_id, (0, 0.0))
        now = time.monotonic()
        due = (step - last_step >= PROGRESS_EVERY_STEPS and now - last_time >= PROGRESS_AT_MOST_EVERY_S
               or now - last_time >= PROGRESS_EVERY_S or step == total or job_id not in self.last_progress)
        if due:
            self.last_progress[job_id] = (step, now)
        return due


DATA_FIELDS = {"examples": int, "longest": int, "seq_len": int, "decided_by": str, "truncated_examples": int,
               "truncated_tokens": int, "most_cut": int, "masked_share": float}
MEMORY_FIELDS = {"gpu_memory_gb": float, "estimate_gb": float, "micro_batch": int, "gradient_accumulation_steps": int,
                 "gradient_checkpointing": bool, "seq_len": int, "changes": list}


def training_setup(data: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The training stage's `data` (the sequence length and its cuts) and `memory` (the memory guard, when it
    planned for a GPU) figures as the job's commands take them; None for what is absent or malformed (the stage
    change itself still counts)."""
    memory = data.get("memory")
    guarded = isinstance(memory, dict) and memory.get("guarded") is True
    return _figures(data.get("data"), DATA_FIELDS), _figures(memory, MEMORY_FIELDS) if guarded else None


DOWNLOAD_FIELDS = {"model": str, "seconds": Decimal, "size_bytes": int, "cached": bool}


def model_download(data: dict[str, Any]) -> dict[str, Any] | None:
    """The model loading stage's `download` (gpu_agent/weights.py): how long fetching the base model took."""
    figures = _figures(data.get("download"), DOWNLOAD_FIELDS)
    if figures is None or not figures["seconds"].is_finite() or figures["seconds"] < 0:
        return None
    figures["model"] = figures["model"][:200]
    figures["seconds"] = figures["seconds"].quantize(Decimal("0.001"))
    return figures


def _figures(raw: Any, fields: dict[str, type]) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    try:
        figures = {name: kind(str(raw[name])) if kind is Decimal else kind(raw[name]) for name, kind in fields.items()}
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None
    if "changes" in figures:
        figures["changes"] = [str(change) for change in figures["changes"]]
    return figures
