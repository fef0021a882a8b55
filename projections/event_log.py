"""Event log read model (FR2.1.3): one row per job, budget, job-sharing and template event, with its
category, a sentence and the full payload (an event naming a job is in that job's log); queried by
`projections.queries.job_events`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from domain.aggregates.budget import Budget
from domain.aggregates.job_sharing import JobSharing
from domain.aggregates.template import ConfigurationTemplate
from domain.aggregates.training_job import TrainingJob
from projections.base import COPY_NULL, CopyRows, Item, Projection, Rebuilder, Rows, copy_text, event_topics
from projections.event_messages import actor_of, category, message
from projections.json import payload_json

COLUMNS = ("originator_id", "originator_version", "notification_id", "job_id", "topic", "category", "message", "actor",
           "payload", "at")


class EventLogProjection(Projection):
    """Every Budget and template event is kept (team-level ones with no job), so each aggregate's versions
    stay gap-free and `process` can skip duplicates by version like every other projection."""

    name = "event_log"
    applications = ("pipeline",)
    tables = ("event_log",)
    copied_tables = ("event_log",)
    topics = (event_topics(TrainingJob) + event_topics(Budget) + event_topics(JobSharing)
              + event_topics(ConfigurationTemplate))
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
        rows(items).write(cur)

    def rebuilder(self) -> EventLogRebuilder:
        return EventLogRebuilder()


def rows(items: Sequence[Item] | Sequence[tuple[int, Any, str | None]]) -> CopyRows:
    """The events' rows, for COPY: (notification id, event), or with the payload a rebuild made."""
    return CopyRows("event_log", COLUMNS, "".join(row(*item) for item in items))


def row(notification_id: int, event: Any, payload: str | None = None) -> str:
    """One event's row in COPY's text format: each column as text PostgreSQL reads back to the
    value (the times in ISO 8601, the payload as JSON: `payload`, if the replay's decoder made it,
    else `payload_json`)."""
    job, actor, originator = job_of(event), actor_of(event), uuid_text(event.originator_id)
    at = event.at
    at = at.isoformat() if type(at) is datetime else str(at)
    return "\t".join((
        originator, str(event.originator_version), str(notification_id),
        originator if job is event.originator_id else COPY_NULL if job is None else uuid_text(job),
        event.TOPIC, category(event), copy_text(message(event)), copy_text(None if actor is None else str(actor)),
        copy_text(payload_json(event) if payload is None else payload), at)) + "\n"


def uuid_text(value: UUID) -> str:
    """A UUID's text, the last one remembered: a replay gives an aggregate's events one after the
    other, with one UUID object (`str` takes ~1 µs, and so does hashing a UUID for a cache)."""
    global _last_uuid
    last = _last_uuid  # one tuple, swapped whole: threads never see a half-made pair
    if last[0] is value:
        return last[1]
    text = str(value)
    _last_uuid = (value, text)
    return text


_last_uuid: tuple[UUID | None, str] = (None, "")


@dataclass
class EventLogRebuilder(Rebuilder):
    """Hands over each page's rows as it gets them (the log only grows)."""

    takes_payloads = True
    items: list[tuple[int, Any, str | None]] = field(default_factory=list)

    def feed(self, items: Sequence[tuple[int, Any, str | None]]) -> None:  # type: ignore[override]
        self.items.extend(items)

    def take(self, final: bool) -> list[Rows]:
        items, self.items = self.items, []
        return [rows(items)] if items else []


def job_of(event: Any) -> UUID | None:
    """The job an event concerns: a job's own events, and budget events that name one."""
    return event.originator_id if isinstance(event, TrainingJob.Event) else getattr(event, "job_id", None)
