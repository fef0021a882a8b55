"""A training job as OpenAI's `fine_tuning.job` object: every field the client's model has (null
where we have no value), statuses and failures in its vocabulary, and our own figures as extra
fields the client keeps (`job.model_extra`). One mapping, from the facts of the jobs read model's
row or of the aggregate (right after a command, before the read model has it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.aggregates.catalog_file import CatalogFile
from domain.aggregates.training_job import TrainingJob
from domain.budget_month import budget_month
from domain.job_status import JobStatus
from domain.money import cents
from domain.preset_choice import DEFAULT_SEED, effective_batch, learning_rate_multiplier
from domain.presets import UnknownPresetError, preset_named
from domain.queue import remaining
from projections.job_detail import spend_at

S = JobStatus
# Ours → OpenAI's (validating_files, queued, running, succeeded, failed, cancelled). A job created
# on the pages and not started yet reads as validating_files; every pod stage, an interruption and
# its recovery read as running (the job is under way; `interruptions` counts them). Pausing (its pod
# still saving and stopping) and paused are OpenAI's own words for them, though the client's status type
# does not list them (a client in strict mode refuses them: docs/web.md).
STATUS = {S.PENDING_CONFIGURATION: "validating_files", S.CONFIGURED: "validating_files", S.QUEUED: "queued",
          S.PROVISIONING: "queued", S.QUEUED_WAITING_FOR_GPU: "queued", S.COMPLETED: "succeeded",
          S.FAILED: "failed", S.CANCELLED: "cancelled", S.PAUSING: "pausing", S.PAUSED: "paused"}
RUNNING = "running"
# Our failure types (domain/job_status.FailureType) → the error's code, and the request field at fault.
FAILURE_CODES = {"dataset_format": ("invalid_training_file", "training_file"), "oom": ("out_of_memory", None),
                 "provisioning": ("provisioning_failed", None), "timeout": ("timeout", None),
                 "recovery_exhausted": ("recovery_exhausted", None), "unknown": ("internal_error", None)}


def openai_status(status: str) -> str:
    try:
        return STATUS.get(S(status), RUNNING)
    except ValueError:  # a status this mapping does not know yet: the job is under way
        return RUNNING


@dataclass(frozen=True)
class JobFacts:
    """What the job object is made of."""

    id: UUID
    name: str
    created_by: str
    status: str
    created_at: datetime
    ended_at: datetime | None
    training_file_sha256: str
    preset: str | None
    hyperparameters: dict[str, Any]
    gpu_tier: str | None
    estimated_cost_min: Decimal | None
    estimated_cost_max: Decimal | None
    estimated_duration_hours: Decimal | None
    cost: Decimal
    queued_at: datetime | None
    interruptions: int
    progress: float
    failure_type: str | None = None
    failure_message: str | None = None
    trained_tokens: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    suffix: str | None = None
    base_model: str | None = None
    validation_file_sha256: str | None = None  # None: validated on a hold-out of the training file

    @classmethod
    def of_row(cls, row: dict[str, Any], hyperparameters: dict[str, Any], metrics: dict[str, Any],
               now: datetime) -> JobFacts:
        """From the jobs read model's row (projections/cursor_pages.py JOB_COLUMNS), the job's last
        configured hyperparameters and its completion's metrics."""
        total = row["total_steps"] or 0
        return cls(
            row["id"], row["name"], row["created_by"], row["status"], row["created_at"], row["ended_at"],
            row["training_file"]["sha256"], row["preset"], hyperparameters, row["gpu_tier"],
            row["estimated_cost_min"], row["estimated_cost_max"], row["estimated_duration_hours"],
            spend_at(row["cost"], row["cost_as_of"], row["running_rate"], now), row["queued_at"],
            row["interruptions"], min(1.0, row["step"] / total) if total else 0.0, row["failure_type"],
            row["failure_message"], _tokens(metrics), row["labels"] or {}, row["suffix"], row["base_model"],
            (row["validation_file"] or {}).get("sha256"))

    @classmethod
    def of_job(cls, job: TrainingJob, now: datetime) -> JobFacts:
        """From the aggregate, right after a command (its end time is its last change then)."""
        config = job.configuration or {}
        failure = job.failure or {}
        return cls(
            job.id, job.name, job.created_by, job.status.value, job.created_at,
            job.updated_at if job.is_terminal else None, job.training_file.sha256, config.get("preset"),
            dict(config.get("hyperparameters") or {}), config.get("gpu_tier"), config.get("estimated_cost_min"),
            config.get("estimated_cost_max"), config.get("estimated_duration_hours"), job.cost(now).total_cost,
            job.queued_at, job.interruptions, min(1.0, job.last_step / job.total_steps) if job.total_steps else 0.0,
            failure.get("type"), failure.get("message"), _tokens(job.final_metrics), dict(job.labels), job.suffix,
            job.base_model, job.validation_file.sha256 if job.validation_file else None)


def _file_id(sha256: str | None) -> str | None:
    """A stored file's id in the catalog (the /v1/files id): its entry's id follows from its bytes."""
    return None if sha256 is None else str(CatalogFile.id_for(sha256))


def _tokens(metrics: dict[str, Any]) -> int | None:
    value = metrics.get("trained_tokens")
    return int(value) if isinstance(value, int | float) else None


def job_object(facts: JobFacts, *, default_model: str, organization: str, time_zone: str,
               now: datetime) -> dict[str, Any]:
    status = openai_status(facts.status)
    model = facts.base_model or default_model
    hyper = openai_hyperparameters(facts.preset, facts.hyperparameters)
    return {
        "object": "fine_tuning.job", "id": str(facts.id), "model": model, "created_at": _unix(facts.created_at),
        "finished_at": _unix(facts.ended_at) if status in ("succeeded", "failed", "cancelled") else None,
        "fine_tuned_model": model_name(model, facts.suffix, facts.id) if status == "succeeded" else None,
        "organization_id": organization, "result_files": [], "status": status,
        "validation_file": _file_id(facts.validation_file_sha256),
        "training_file": _file_id(facts.training_file_sha256),
        "hyperparameters": hyper, "trained_tokens": facts.trained_tokens,
        "error": _error(facts) if status == "failed" else None, "integrations": [],
        "seed": int(facts.hyperparameters.get("seed", DEFAULT_SEED)),
        "estimated_finish": _estimated_finish(facts, status, now), "metadata": facts.labels or None,
        "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
        # ours, which the client keeps as extra fields
        "suffix": facts.suffix, "name": facts.name, "created_by": facts.created_by, "pipeline_status": facts.status,
        "preset": facts.preset, "gpu_tier": facts.gpu_tier, "estimated_cost": _money_range(facts),
        "cost": str(cents(facts.cost)), "interruptions": facts.interruptions,
        "budget_month": budget_month(facts.queued_at, time_zone) if facts.queued_at else None,
    }


def openai_hyperparameters(preset: str | None, hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """Our configuration in OpenAI's three numbers: epochs, examples per optimizer step, and the
    learning rate as a multiple of the preset's."""
    if preset is None or "learning_rate" not in hyperparameters:  # not configured yet
        return {"n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto"}
    try:
        multiplier: float | None = learning_rate_multiplier(preset_named(preset), hyperparameters)
    except UnknownPresetError:  # no preset's rate to compare with
        multiplier = None
    return {"n_epochs": int(hyperparameters["num_train_epochs"]), "batch_size": effective_batch(hyperparameters),
            "learning_rate_multiplier": multiplier}


def model_name(base_model: str, suffix: str | None, job_id: UUID) -> str:
    """The adapter's model name, `ft:<base>:<suffix>:<job id>` (OpenAI's form, our job id)."""
    return f"ft:{base_model}:{suffix or ''}:{job_id}"


def _error(facts: JobFacts) -> dict[str, Any]:
    code, param = FAILURE_CODES.get(facts.failure_type or "unknown", (facts.failure_type or "internal_error", None))
    return {"code": code, "message": facts.failure_message or "The job failed", "param": param}


def _estimated_finish(facts: JobFacts, status: str, now: datetime) -> int | None:
    if status != RUNNING or facts.estimated_duration_hours is None:
        return None
    return _unix(now + remaining(float(facts.estimated_duration_hours), facts.progress))


def _money_range(facts: JobFacts) -> dict[str, str] | None:
    if facts.estimated_cost_min is None or facts.estimated_cost_max is None:
        return None
    return {"min": str(cents(facts.estimated_cost_min)), "max": str(cents(facts.estimated_cost_max)),
            "currency": "usd"}


def _unix(at: datetime | None) -> int | None:
    return int(at.timestamp()) if at is not None else None
