"""Event log read model (FR2.1.3): one row per job and budget event, with its category, a sentence
and the full payload; queried by `projections.queries.job_events`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg

from domain.aggregates.budget import Budget
from domain.aggregates.training_job import TrainingJob
from projections.base import Item, Projection, event_topics
from projections.event_messages import actor_of, category, message
from projections.json import event_payload, jsonb

COLUMNS = ("originator_id", "originator_version", "notification_id", "job_id", "topic", "category", "message", "actor",
           "payload", "at")


class EventLogProjection(Projection):
    """Every Budget event is kept (team-level ones with no job), so each aggregate's versions
    stay gap-free and `process` can skip duplicates by version like every other projection."""

    name = "event_log"
    applications = ("pipeline",)
    tables = ("event_log",)
    topics = event_topics(TrainingJob) + event_topics(Budget)
    subject = "events.>"  # CatalogFile events arrive too and are skipped by topic

    def version_of(self, cur: psycopg.Cursor, originator_id: UUID) -> int:
        return self.versions_of(cur, [originator_id])[originator_id]

    def versions_of(self, cur: psycopg.Cursor, originator_ids: Sequence[UUID]) -> dict[UUID, int]:
        found = dict(cur.execute(
            "SELECT i.id, v.originator_version FROM unnest(%s::uuid[]) AS i(id) CROSS JOIN LATERAL"
            " (SELECT originator_version FROM event_log WHERE originator_id = i.id"
            " ORDER BY originator_version DESC LIMIT 1 FOR UPDATE) v", (list(originator_ids),)).fetchall())
        return {originator_id: found.get(originator_id, 0) for originator_id in originator_ids}

    def write(self, event: Any, cur: psycopg.Cursor, notification_id: int) -> None:
        self.write_batch(cur, [(notification_id, event)])

    def write_batch(self, cur: psycopg.Cursor, items: Sequence[Item]) -> None:
        with cur.copy(f"COPY event_log ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for notification_id, event in items:
                copy.write_row((event.originator_id, event.originator_version, notification_id, job_of(event),
                                event.TOPIC, category(event), message(event), actor_of(event),
                                jsonb(event_payload(event)), event.at))


def job_of(event: Any) -> UUID | None:
    """The job an event concerns: a job's own events, and budget events that name one."""
    return event.originator_id if isinstance(event, TrainingJob.Event) else getattr(event, "job_id", None)
