"""How a template reads on its card, on its page and in the API, and what "Save as Template" offers
on a completed job (FR5.2.2)."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from litestar.datastructures import State

from domain.aggregates.template import SUCCESS_RATE_ABOVE, TemplateNotAllowedError, check_saveable
from domain.job_metadata import InvalidJobError
from domain.job_status import JobStatus
from domain.money import cents, usd
from domain.presets import UnknownPresetError
from domain.training_settings import CHECKPOINT_KEY, LABELS, overrides_of
from projections.templates import configuration_outcomes

TIER_WORDS = {"spot": "Spot", "on_demand": "On-demand"}


def settings_summary(preset: str, hyperparameters: dict[str, Any]) -> str:
    """"Balanced preset, 3 epochs, r=16, learning rate 0.0002, batch 2 × 2" (what is known of it)."""
    h = hyperparameters
    epochs = h.get("num_train_epochs")
    parts = [f"{preset.capitalize()} preset"]
    if epochs is not None:
        parts.append(f"{epochs} epoch{'s' if epochs != 1 else ''}")
    if h.get("r") is not None:
        parts.append(f"r={h['r']}")
    if isinstance(h.get("learning_rate"), int | float):
        parts.append(f"learning rate {h['learning_rate']:g}")
    if h.get("per_device_train_batch_size") is not None:
        parts.append(f"batch {h['per_device_train_batch_size']} × {h.get('gradient_accumulation_steps', 1)}")
    return ", ".join(parts)


def checkpoint_text(every: int | None, default_every: int) -> str:
    return f"every {every} steps" if every else f"every {default_every} steps (the deployment's default)"


def card(row: dict[str, Any], viewer: str, role: str, default_every: int) -> dict[str, Any]:
    """A template's card: what it is, and its analytics from the jobs started from it."""
    changed = {LABELS.get(k, k): v for k, v in (row["overrides"] or {}).items() if k != CHECKPOINT_KEY}
    return {
        **row, "id": str(row["id"]), "summary": settings_summary(row["preset"], row["hyperparameters"]),
        "gpu": TIER_WORDS.get(row["gpu_tier"], row["gpu_tier"]),
        "checkpoint": checkpoint_text((row["overrides"] or {}).get(CHECKPOINT_KEY), default_every),
        "changed": changed, "success_text": f"{row['success_rate']}%" if row["success_rate"] is not None else "—",
        "average_cost_text": usd(row["average_cost"]) if row["average_cost"] is not None else "—",
        "average_duration_text": f"{row['average_hours']:.1f} h" if row["average_hours"] is not None else "—",
        "average_loss_text": f"{row['average_final_loss']:.4f}" if row["average_final_loss"] is not None else "—",
        "can_manage": viewer == row["created_by"] or (row["visibility"] == "team" and role in ("manager", "admin")),
    }


def as_json(row: dict[str, Any]) -> dict[str, Any]:
    """The API's template: its settings and analytics, amounts as strings (exact)."""
    return {
        "id": str(row["id"]), "name": row["name"], "description": row["description"], "preset": row["preset"],
        "hyperparameters": row["hyperparameters"], "overrides": row["overrides"], "gpu_tier": row["gpu_tier"],
        "checkpoint_every": (row["overrides"] or {}).get(CHECKPOINT_KEY), "visibility": row["visibility"],
        "tags": row["tags"], "created_by": row["created_by"],
        "source_job_id": str(row["source_job_id"]) if row["source_job_id"] else None,
        "created_at": row["created_at"].isoformat(), "updated_at": row["updated_at"].isoformat(),
        "usage_count": row["usage"], "completed": row["completed"], "failed": row["failed"],
        "success_rate": row["success_rate"],
        "average_cost": str(cents(row["average_cost"])) if row["average_cost"] is not None else None,
        "average_duration_hours": round(row["average_hours"], 2) if row["average_hours"] is not None else None,
        "average_final_loss": round(row["average_final_loss"], 4) if row["average_final_loss"] is not None else None,
    }


async def template_offer(state: State, job_id: UUID, status: str) -> dict[str, Any] | None:
    """"Save as Template" on a completed job: allowed, or why not (FR5.2.2's > 90% success rate)."""
    if status != JobStatus.COMPLETED:
        return None
    job = await asyncio.to_thread(state.store.app.get_job, job_id)
    config = job.configuration or {}
    if not config.get("preset"):
        return None
    completed, failed = await configuration_outcomes(state.pool, config["preset"], config.get("gpu_tier", "spot"))
    try:
        every = overrides_of(config["preset"], config.get("hyperparameters") or {}).get(CHECKPOINT_KEY)
    except (UnknownPresetError, InvalidJobError) as exc:  # a configuration made by hand, outside the presets
        return {"allowed": False, "reason": f"This job's configuration cannot be a template: {exc}"}
    offer = {"allowed": True, "reason": "",
             "summary": settings_summary(config["preset"], config.get("hyperparameters") or {}),
             "gpu": TIER_WORDS.get(config.get("gpu_tier", ""), config.get("gpu_tier")),
             "checkpoint": checkpoint_text(every, state.settings.agent.checkpoint_every),
             "completed": completed, "failed": failed, "threshold": SUCCESS_RATE_ABOVE}
    try:
        check_saveable(job.status, completed, failed)
    except TemplateNotAllowedError as exc:
        offer |= {"allowed": False, "reason": str(exc)}
    return offer
