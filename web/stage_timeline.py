"""FR2.1.2's stage timeline on the job page: each stage's status, estimated and actual duration,
its part of the progress bar and what it is doing; the latest attempt's run of a stage counts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.job_status import JobStatus
from web.detail_format import duration

# FR2.1.2: the four stages and their share of the progress bar, and the evaluation after them (FR6.1,
# FR6.3) with 5 % of its own taken from training (projections/job_state.py STAGE_SHARES, docs/domain.md).
# The base model's download (issue #16) has its own row, with 5 % of model loading's 8 %.
STAGE_BAR = ((JobStatus.PREPROCESSING, "Preprocessing", 2), (JobStatus.DOWNLOADING_MODEL, "Model Download", 5),
             (JobStatus.MODEL_LOADING, "Model Loading", 3), (JobStatus.TRAINING, "Training", 80),
             (JobStatus.FINALIZATION, "Finalization", 5), (JobStatus.EVALUATING, "Evaluation", 5))


def stage_view(detail: dict[str, Any]) -> list[dict[str, Any]]:
    job = detail["job"]
    runs = {row["stage"]: row for row in detail["stages"]}
    spent: dict[str, Decimal] = {}
    for row in detail["stages"]:  # a stage run again by a later attempt: its time adds up
        spent[row["stage"]] = spent.get(row["stage"], Decimal(0)) + row["actual_seconds"]
    doing = activities(job)
    rows = [stage_row(stage, label, share, runs.get(stage.value), spent, job, doing)
            for stage, label, share in STAGE_BAR]
    for i, row in enumerate(rows):  # never run, yet a later stage has: skipped (the weights were on the volume)
        if row["actual"] is None and any(later["actual"] is not None for later in rows[i + 1:]):
            row["status"], row["fill"] = "skipped", 100
    return rows


def stage_row(stage: JobStatus, label: str, share: int, run: dict[str, Any] | None, spent: dict[str, Decimal],
              job: dict[str, Any], doing: dict[JobStatus, str]) -> dict[str, Any]:
    estimated = run["estimated_seconds"] if run and run["estimated_seconds"] is not None else (
        job["estimated_duration_hours"] * 3600 * share / 100 if job["estimated_duration_hours"] else None)
    status, fill = stage_state(stage, run, job, estimated)
    return {
        "stage": stage.value, "label": label, "share": share, "status": status, "fill": round(fill, 1),
        "estimated": duration(estimated) if estimated is not None else "—",
        "actual": duration(spent[stage.value]) if run else None,
        "doing": doing[stage] if status == "active" else None,
        "error": job["failure_message"] if status == "failed" else None,
    }


def stage_state(stage: JobStatus, run: dict[str, Any] | None, job: dict[str, Any],
                estimated: Decimal | float | None) -> tuple[str, float]:
    """(status, percent of the stage's part of the bar filled)."""
    training = stage == JobStatus.TRAINING and job["total_steps"]
    if run is None:
        status = "complete" if job["status"] == JobStatus.COMPLETED else "not_run" if job["ended_at"] else "pending"
        if stage == JobStatus.EVALUATING and status == "complete" and not job.get("evaluation"):
            status = "not_run"  # an agent without the evaluation stage, or results that could not be read
        return status, 100 if status == "complete" else 0
    if run["ended_at"] is None:
        if training:
            return "active", min(100, job["step"] / job["total_steps"] * 100)
        return "active", min(95, float(run["actual_seconds"] / estimated * 100)) if estimated else 50
    status = {"completed": "complete"}.get(run["outcome"], run["outcome"] or "complete")
    return status, 100 if status == "complete" else (job["step"] / job["total_steps"] * 100 if training else 50)


def activities(job: dict[str, Any]) -> dict[JobStatus, str]:
    """What the active stage says it is doing."""
    current, epochs = epochs_of(job)
    return {
        JobStatus.PREPROCESSING: f"Tokenizing {job['file_name'] or 'the training file'}...",
        JobStatus.DOWNLOADING_MODEL: "Downloading the base model from the Hugging Face Hub (kept on the volume for"
                                     " later pods)...",
        JobStatus.MODEL_LOADING: "Loading the base model (4-bit quantization)...",
        JobStatus.TRAINING: f"Training epoch {current or 1}{f'/{epochs}' if epochs else ''}"
                            f" - Step {job['step']:,}/{job['total_steps']:,}...",
        JobStatus.FINALIZATION: "Saving adapters and finalizing...",
        JobStatus.EVALUATING: evaluating(job.get("evaluation_progress")),
    }


def evaluating(progress: dict[str, Any] | None) -> str:
    if not progress:
        return "Scoring the base model and the adapter on the held-out conversations and the suites..."
    part = "the held-out conversations (perplexity)" if progress["part"] == "perplexity" else progress["part"]
    return f"Scoring {part}: {progress['done']:,}/{progress['total']:,}..."


def epochs_of(job: dict[str, Any]) -> tuple[int | None, int | None]:
    """(current epoch, epochs in all): total steps cover every epoch, so the epochs are the steps
    per epoch so far (step / epoch) into the total."""
    step, total, epoch = job["step"], job["total_steps"], job["epoch"]
    if not step or not total or not epoch:
        return (1 if step else None), None
    epochs = max(1, round(total * epoch / step))
    return min(int(epoch) + 1, epochs), epochs
