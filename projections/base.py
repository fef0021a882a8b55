"""What every projection shares: version-checked, position-tracked application of one event."""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

import psycopg
from eventsourcing.domain import Aggregate

from pipeline.consumers import RetryLaterError


class OutOfOrderError(RetryLaterError):
    """An event arrived before an earlier event of its aggregate; retry it later."""


def event_topics(aggregate: type[Aggregate]) -> tuple[str, ...]:
    """The stored topics of an aggregate's event classes (what a projection of it reads)."""
    return tuple(sorted(
        value.TOPIC for name, value in vars(aggregate).items()
        if isinstance(value, type) and issubclass(value, Aggregate.Event) and name != "Event"))


class Projection:
    """Subclasses set `name`, `applications`, `tables`, `topics` and `subject`, and implement
    `version_of` and `apply` (or `write`, when the rows need the event's place in the log)."""

    name: ClassVar[str]
    applications: ClassVar[tuple[str, ...]]
    tables: ClassVar[tuple[str, ...]]
    topics: ClassVar[tuple[str, ...]]
    subject: ClassVar[str]

    def version_of(self, cur: psycopg.Cursor, originator_id: UUID) -> int:
        """The aggregate version this read model has applied (0 for none)."""
        raise NotImplementedError

    def apply(self, event: Any, cur: psycopg.Cursor) -> None:
        raise NotImplementedError

    def write(self, event: Any, cur: psycopg.Cursor, notification_id: int) -> None:
        self.apply(event, cur)


def process(conn: psycopg.Connection, projection: Projection, application: str,
            notification_id: int, event: Any) -> bool:
    """Applies `event` once: duplicates are skipped, gaps raise OutOfOrderError. The rows and the
    position commit in one transaction. Returns whether the event changed the read model."""
    with conn.transaction(), conn.cursor() as cur:
        applied = projection.version_of(cur, event.originator_id)
        if event.originator_version > applied + 1:
            raise OutOfOrderError(
                f"{projection.name}: {event.originator_id} v{event.originator_version} before v{applied + 1}"
            )
        changed = event.originator_version == applied + 1
        if changed:
            projection.write(event, cur, notification_id)
        cur.execute(
            "INSERT INTO projection_positions (projection, application, notification_id)"
            " VALUES (%s, %s, %s) ON CONFLICT (projection, application) DO UPDATE"
            " SET notification_id = GREATEST(projection_positions.notification_id,"
            " EXCLUDED.notification_id)",
            (projection.name, application, notification_id),
        )
    return changed
