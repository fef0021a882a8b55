"""What a shared job's own page shows (FR8.1.2 "Shared job view"): its configuration, its progress
while it runs, its results once completed and who made it — and nothing else: no cost, estimate,
budget, notes, description, client, project, training-file name or data, and no downloads. One
function builds it, for the page, its JSON and its live stream alike."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.aggregates.training_job import TrainingJob
from domain.job_status import TERMINAL, JobStatus
from web.hyperparameters import readable_parameters

RESULT_KEYS = (("final_loss", "Final training loss"), ("final_eval_loss", "Final validation loss"),
               ("adapter_perplexity", "Perplexity"), ("perplexity_improvement_percent", "Perplexity improvement"))


def progress(job: TrainingJob) -> dict[str, Any]:
    percent = 100 if job.status is JobStatus.COMPLETED else (
        min(99, int(100 * job.last_step / job.total_steps)) if job.total_steps else 0)
    return {"status": job.status.value, "status_text": job.status.value.replace("_", " ").capitalize(),
            "step": job.last_step, "total_steps": job.total_steps, "epoch": job.last_epoch, "percent": percent,
            "loss": job.last_loss, "live": job.status not in TERMINAL}


def results(job: TrainingJob) -> list[tuple[str, str]]:
    if job.status is not JobStatus.COMPLETED:
        return []
    metrics = job.final_metrics or {}
    shown = []
    for key, label in RESULT_KEYS:
        value = metrics.get(key)
        if isinstance(value, int | float):
            shown.append((label, f"{value:.1f}%" if key.endswith("percent") else f"{value:.4f}"))
    hours = duration_hours(job)
    if hours is not None:
        shown.append(("Training time", f"{hours:.1f} hours" if hours >= 1 else f"{hours * 60:.0f} minutes"))
    return shown


def duration_hours(job: TrainingJob) -> float | None:
    starts = [pod.started_at for pod in job.pods.values()]
    if not starts or job.status not in TERMINAL:
        return None
    return (job.updated_at - min(starts)).total_seconds() / 3600


def public_job(job: TrainingJob, creator_name: str, visibility: str, now: datetime) -> dict[str, Any]:
    config = job.configuration or {}
    return {
        "id": str(job.id), "name": job.name, "created_by": job.created_by, "creator": creator_name,
        "created_at": job.created_at, "visibility": visibility,
        "dataset": {"conversations": job.conversation_count, "training_pairs": job.pair_count},
        "configuration": {"preset": config.get("preset"), "gpu_type": config.get("gpu_type"),
                          "gpu_tier": config.get("gpu_tier"), "hyperparameters": config.get("hyperparameters") or {}},
        "parameters": readable_parameters(config.get("hyperparameters") or {}) if config else [],
        "progress": progress(job), "results": results(job), "interruptions": job.interruptions,
        "retrieved_at": now,
    }


def as_json(view: dict[str, Any]) -> dict[str, Any]:
    """The view for `GET /training-jobs/{id}.json` (the page's own words, less the tooltips)."""
    return {**{k: v for k, v in view.items() if k not in ("parameters", "retrieved_at", "created_at")},
            "created_at": view["created_at"].isoformat(), "results": dict(view["results"])}
