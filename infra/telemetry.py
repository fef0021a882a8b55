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


# The telemetry reactor's work is shared out by partition (pipeline/workers/handlers.py): the stream
# TELEMETRY_PARTS sources TELEMETRY and stores each message as `tpart.<partition>.<job_id>.<kind>`,
# the partition a fixed hash of the job id (NATS's `partition()` subject transform), so a job's
# messages stay in one partition, in order, and each partition is led by one handlers instance.
# Every process must agree on the count: it is part of the stream's definition, not a setting.
PARTITIONS = 4
PARTITION_DOMAINS = tuple(f"telemetry-{p}" for p in range(PARTITIONS))
PARTITIONED = "telemetry.*.*"  # what is shared out: every `telemetry.<job_id>.<kind>`
PARTITIONED_AS = f"tpart.{{{{partition({PARTITIONS},1)}}}}.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}"


def partition_subjects(partition: int) -> str:
    """The stored subjects of one partition of TELEMETRY_PARTS."""
    return f"tpart.{partition}.>"


def published_subject(stored: str) -> str:
    """`tpart.<partition>.<job_id>.<kind>` → `telemetry.<job_id>.<kind>`, where the pod published
    (any other subject unchanged)."""
    head, _, rest = stored.partition(".")
    if head != "tpart":
        return stored
    return "telemetry." + rest.partition(".")[2]
