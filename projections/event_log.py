"""Event log read model (FR2.1.3): one row per job and budget event, with its category, a sentence
and the full payload; queried by `projections.queries.job_events`."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg

from domain.aggregates.budget import Budget
from domain.aggregates.training_job import TrainingJob
from projections.base import Projection, event_topics
from projections.event_messages import actor_of, category, message
from projections.json import event_payload, jsonb


class EventLogProjection(Projection):
    """Every Budget event is kept (team-level ones with no job), so each aggregate's versions
    stay gap-free and `process` can skip duplicates by version like every other projection."""

    name = "event_log"
    applications = ("pipeline",)
    tables = ("event_log",)
    topics = event_topics(TrainingJob) + event_topics(Budget)
    subject = "events.>"  # CatalogFile events arrive too and are skipped by topic

    def version_of(self, cur: psycopg.Cursor, originator_id: UUID) -> int:
        row = cur.execute(
            "SELECT originator_version FROM event_log WHERE originator_id = %s"
            " ORDER BY originator_version DESC LIMIT 1 FOR UPDATE", (originator_id,)).fetchone()
        return row[0] if row else 0

    def write(self, event: Any, cur: psycopg.Cursor, notification_id: int) -> None:
        cur.execute(
            "INSERT INTO event_log (originator_id, originator_version, notification_id, job_id, topic,"
            " category, message, actor, payload, at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (event.originator_id, event.originator_version, notification_id, job_of(event), event.TOPIC,
             category(event), message(event), actor_of(event), jsonb(event_payload(event)), event.at),
        )


def job_of(event: Any) -> UUID | None:
    """The job an event concerns: a job's own events, and budget events that name one."""
    return event.originator_id if isinstance(event, TrainingJob.Event) else getattr(event, "job_id", None)
