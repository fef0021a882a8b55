"""The TELEMETRY stream's contract, shared by the GPU agent that publishes it and its consumers:
subject `telemetry.<job_id>.<kind>`, JSON bodies, and `Nats-Msg-Id: <job_id>:<attempt>:<pod nonce>:<seq>`
so a re-send after an outage is dropped as a duplicate (the nonce: another pod cannot forge our ids)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Kind = Literal["stage", "step", "eval", "epoch", "heartbeat", "checkpoint", "interrupted", "failed", "completed",
               "evaluation"]


class Telemetry(BaseModel):
    job_id: str
    attempt: int = Field(ge=1)
    seq: int = Field(ge=1)
    kind: Kind
    at: str  # ISO 8601 UTC
    data: dict[str, Any]

    @property
    def subject(self) -> str:
        return subject(self.job_id, self.kind)


ALL_TELEMETRY = "telemetry.>"


def subject(job_id: str, kind: str) -> str:
    return f"telemetry.{job_id}.{kind}"


def job_subjects(job_id: str) -> str:
    """What a pod of `job_id` may publish on (its per-job credentials allow only this)."""
    return subject(job_id, ">")


def kind_subjects(kind: str) -> str:
    """Every job's messages of one kind."""
    return subject("*", kind)
