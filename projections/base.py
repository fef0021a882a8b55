"""What every projection shares: version-checked, position-tracked application of one event."""

from __future__ import annotations

from collections.abc import Sequence
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


Item = tuple[int, Any]
"""(notification id, domain event)"""


class Projection:
    """Subclasses set `name`, `applications`, `tables`, `topics` and `subject`, and implement
    `version_of` and `apply` (or `write`, when the rows need the event's place in the log). A
    projection that can write a whole batch at once (fewer round trips, one row write per
    aggregate) also overrides `versions_of` and `write_batch`."""

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

    def versions_of(self, cur: psycopg.Cursor, originator_ids: Sequence[UUID]) -> dict[UUID, int]:
        """The applied version of each aggregate, its rows locked (default: `version_of` each)."""
        return {originator_id: self.version_of(cur, originator_id) for originator_id in originator_ids}

    def write_batch(self, cur: psycopg.Cursor, items: Sequence[Item]) -> None:
        """Writes events that are each the next of their aggregate, in order (default: `write` each,
        pipelined: statements whose answers are not read go out without waiting for them)."""
        with cur.connection.pipeline():
            for notification_id, event in items:
                self.write(event, cur, notification_id)


POSITION = ("INSERT INTO projection_positions (projection, application, notification_id) VALUES (%s, %s, %s)"
            " ON CONFLICT (projection, application) DO UPDATE"
            " SET notification_id = GREATEST(projection_positions.notification_id, EXCLUDED.notification_id)")


def process(conn: psycopg.Connection, projection: Projection, application: str,
            notification_id: int, event: Any) -> bool:
    """Applies `event` once: duplicates are skipped, gaps raise OutOfOrderError. The rows and the
    position commit in one transaction. Returns whether the event changed the read model."""
    [outcome] = process_batch(conn, projection, application, [(notification_id, event)])
    if isinstance(outcome, OutOfOrderError):
        raise outcome
    return outcome


def process_batch(conn: psycopg.Connection, projection: Projection, application: str,
                  items: Sequence[Item]) -> list[bool | OutOfOrderError]:
    """Applies events in their order, in one transaction with the position: per item True (applied),
    False (a duplicate, skipped) or an OutOfOrderError (an earlier event of its aggregate is
    missing: nothing written for it, nor for its aggregate's later events). The live consumer
    (a JetStream batch) and the rebuild (a page of the event store) both come here. If a write
    fails, nothing of the batch is kept and the error is raised."""
    outcomes: list[bool | OutOfOrderError] = []
    due: list[Item] = []
    position = 0
    with conn.transaction(), conn.cursor() as cur:
        applied = projection.versions_of(cur, list(dict.fromkeys(event.originator_id for _, event in items)))
        for notification_id, event in items:
            expected = applied[event.originator_id] + 1
            if event.originator_version > expected:
                outcomes.append(OutOfOrderError(
                    f"{projection.name}: {event.originator_id} v{event.originator_version} before v{expected}"))
                continue
            if event.originator_version == expected:
                due.append((notification_id, event))
                applied[event.originator_id] = expected
            outcomes.append(event.originator_version == expected)
            position = max(position, notification_id)
        if due:
            projection.write_batch(cur, due)
        if position:
            cur.execute(POSITION, (projection.name, application, position))
    return outcomes
