"""The TELEMETRY stream's messages: subject `telemetry.<job_id>.<kind>`, JSON bodies, and
`Nats-Msg-Id: <job_id>:<attempt>:<pod nonce>:<seq>` so a re-send after an outage is dropped as a
duplicate (the nonce: another pod cannot forge our ids)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Kind = Literal["stage", "step", "eval", "epoch", "heartbeat", "checkpoint", "interrupted", "failed", "completed"]


class Telemetry(BaseModel):
    job_id: str
    attempt: int = Field(ge=1)
    seq: int = Field(ge=1)
    kind: Kind
    at: str  # ISO 8601 UTC
    data: dict[str, Any]

    @property
    def subject(self) -> str:
        return f"telemetry.{self.job_id}.{self.kind}"


def subject_filter(job_id: str) -> str:
    """What a pod of `job_id` may publish on (its per-job credentials allow only this)."""
    return f"telemetry.{job_id}.>"
