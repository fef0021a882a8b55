"""The events an endpoint can subscribe to and what each one posts: OpenAI's fine-tuning webhook
events as OpenAI shapes them (`{"id", "object": "event", "created_at", "type", "data": {"id": job}}`)
for a job that succeeded, failed or was cancelled, and our own types, shaped alike, for the rest.
Pure: the body is made once, when the event is taken in, and every attempt posts the same bytes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.aggregates.budget import Budget
from domain.aggregates.training_job import TrainingJob

J = TrainingJob
# type → what the settings page calls it (the order of its checkboxes)
TYPES: dict[str, str] = {
    "fine_tuning.job.succeeded": "Job succeeded",
    "fine_tuning.job.failed": "Job failed",
    "fine_tuning.job.cancelled": "Job cancelled",
    "pipeline.job.paused": "Job paused",
    "pipeline.job.interrupted": "Job interrupted (its pod was lost; recovery follows)",
    "pipeline.job.recovered": "Job recovered (training again after an interruption)",
    "pipeline.job.quality_gate": "Quality gate decided (pass, review or block)",
    "pipeline.budget.threshold": "Budget threshold crossed (80, 90, 95 or 100 %)",
}


def _job(event: Any) -> dict[str, Any]:
    return {"id": str(event.originator_id)}


def _evaluated(event: J.Evaluated) -> dict[str, Any]:
    summary = event.summary or {}
    return {"id": str(event.originator_id), "outcome": summary.get("outcome"),
            "reasons": list(summary.get("reasons") or []),
            "evaluated_by": str(event.evaluated_by) if event.evaluated_by else None}


# domain event → (type, its `data`); budget events also need the month (their aggregate's)
DATA: dict[Any, tuple[str, Callable[[Any], dict[str, Any]]]] = {
    J.Completed: ("fine_tuning.job.succeeded", _job),
    J.Failed: ("fine_tuning.job.failed", _job),
    J.Cancelled: ("fine_tuning.job.cancelled", _job),
    J.Paused: ("pipeline.job.paused", lambda e: _job(e) | {"step": e.step, "checkpoint_step": e.checkpoint_step}),
    J.Interrupted: ("pipeline.job.interrupted", lambda e: _job(e) | {"step": e.step, "reason": e.reason}),
    J.Resumed: ("pipeline.job.recovered", lambda e: _job(e) | {"downtime_seconds": float(e.downtime_seconds)}),
    J.Evaluated: ("pipeline.job.quality_gate", _evaluated),
    Budget.ThresholdCrossed: ("pipeline.budget.threshold",
                              lambda e: {"percent": e.percent, "spent": str(e.spent), "limit": str(e.limit)}),
}
TOPICS = frozenset(str(cls.TOPIC) for cls in DATA)


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    created_at: int
    data: dict[str, Any]
    job_id: UUID | None

    def body(self) -> bytes:
        return json.dumps({"id": self.id, "object": "event", "created_at": self.created_at, "type": self.type,
                           "data": self.data}, separators=(",", ":")).encode()


def event_id(event_key: str) -> str:
    """The same for every delivery and attempt of one domain event (`<originator>:<version>`)."""
    return f"evt_{uuid5(NAMESPACE_URL, f'lora-pipeline:{event_key}').hex}"


def webhook_event(event: Any, event_key: str, **extra: Any) -> WebhookEvent | None:
    """The webhook event for a domain event, or None when no endpoint can subscribe to it; `extra`
    joins its data (a budget's month)."""
    found = DATA.get(type(event))
    if found is None:
        return None
    kind, data = found
    job_id = None if isinstance(event, Budget.ThresholdCrossed) else event.originator_id
    return WebhookEvent(event_id(event_key), kind, int(event.at.timestamp()), data(event) | extra, job_id)
