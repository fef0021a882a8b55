"""The job page's retry form (FR3.3.1, FR3.3.2, FR3.2.2) read into the JSON route's request, each
refusal with the message the page shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from domain.retries import ADJUSTABLE, SCHEDULES
from web import job_actions

MODES = ("same", "suggested", "resume")
FIELD_LABELS = {"num_train_epochs": "Epochs", "per_device_train_batch_size": "Batch size",
                "gradient_accumulation_steps": "Gradient accumulation steps", "learning_rate": "Learning rate"}


@dataclass
class RetryForm:
    mode: str = "same"  # same | suggested | resume
    gpu_tier: str = ""
    num_train_epochs: str = ""
    per_device_train_batch_size: str = ""
    gradient_accumulation_steps: str = ""
    learning_rate: str = ""
    lr_scheduler_type: str = ""
    override_justification: str = ""


def retry_request(data: RetryForm) -> job_actions.RetryRequest:
    """The JSON route's request from the form; ValueError with the message to show."""
    if data.mode not in MODES:
        raise ValueError("Choose retry, retry with the suggested fix, or resume from the checkpoint")
    changes = {**numbers(data), **choices(data)}
    try:
        adjustments = job_actions.Adjustments(**changes)
    except ValidationError as exc:
        raise ValueError("; ".join(e["msg"] for e in exc.errors())) from None
    return job_actions.RetryRequest(suggested=data.mode == "suggested", resume=data.mode == "resume",
                                    changes=adjustments,
                                    override_justification=data.override_justification.strip() or None)


def numbers(data: RetryForm) -> dict[str, Any]:
    """The numeric adjustments filled in, each within its range (domain/retries.py ADJUSTABLE)."""
    changes: dict[str, Any] = {}
    for name, label in FIELD_LABELS.items():
        text = getattr(data, name).strip()
        if text:
            changes[name] = number(name, label, text)
    return changes


def number(name: str, label: str, text: str) -> float | int:
    try:
        value = float(text) if name == "learning_rate" else int(text)
    except ValueError:
        kind = "a number" if name == "learning_rate" else "a whole number"
        raise ValueError(f"{label} must be {kind}") from None
    low, high = ADJUSTABLE[name]
    if not low <= value <= high:
        raise ValueError(f"{label} must be between {low:g} and {high:g}")
    return value


def choices(data: RetryForm) -> dict[str, str]:
    """The GPU tier and the learning rate schedule, when chosen."""
    changes = {}
    if data.gpu_tier:
        if data.gpu_tier not in ("spot", "on_demand"):
            raise ValueError("GPU type must be spot or on-demand")
        changes["gpu_tier"] = data.gpu_tier
    if data.lr_scheduler_type:
        if data.lr_scheduler_type not in SCHEDULES:
            raise ValueError(f"Learning rate schedule must be one of {', '.join(SCHEDULES)}")
        changes["lr_scheduler_type"] = data.lr_scheduler_type
    return changes
