"""A job's event log as `fine_tuning.job.event` objects and its checkpoints as
`fine_tuning.job.checkpoint` objects. Ids are `ftevent-<n>` / `ftckpt-<n>`, n the event's position
in the store's notification log (the lists' cursor)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

LEVELS = {"error": "error", "warning": "warn"}  # the event log's categories; status and metrics are info
# The metric events' fields under the names OpenAI's metrics events use, beside our own.
OPENAI_NAMES = {"TrainingJob.ProgressRecorded": {"loss": "train_loss"},
                "TrainingJob.EpochCompleted": {"validation_loss": "valid_loss"}}


def event_object(row: dict[str, Any]) -> dict[str, Any]:
    """`row`: an event_log row (projections/cursor_pages.py events_page)."""
    payload = dict(row["payload"] or {})
    for stored_only in ("timestamp", "originator_topic"):  # when it was recorded; `created_at` says when it happened
        payload.pop(stored_only, None)
    renamed = {new: payload[old] for old, new in OPENAI_NAMES.get(row["topic"], {}).items() if old in payload}
    return {"object": "fine_tuning.job.event", "id": f"ftevent-{row['notification_id']}",
            "created_at": int(row["at"].timestamp()), "level": LEVELS.get(row["category"], "info"),
            "message": row["message"], "type": "metrics" if row["category"] == "metrics" else "message",
            "data": {"event": row["topic"].split(".", 1)[-1], **payload, **renamed}}


def checkpoint_object(row: dict[str, Any], job_id: UUID, model_name: str) -> dict[str, Any]:
    """`row`: a saved checkpoint with the metric history's losses at its step (checkpoints_page)."""
    step = int(row["step"])
    return {"object": "fine_tuning.job.checkpoint", "id": f"ftckpt-{row['notification_id']}",
            "created_at": int(row["at"].timestamp()), "fine_tuning_job_id": str(job_id), "step_number": step,
            "fine_tuned_model_checkpoint": f"{model_name}:ckpt-step-{step}",
            "metrics": {"step": float(step), "train_loss": row["loss"], "valid_loss": row["eval_loss"],
                        "train_mean_token_accuracy": None, "valid_mean_token_accuracy": None,
                        "full_valid_loss": None, "full_valid_mean_token_accuracy": None}}
