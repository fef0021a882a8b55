"""What every projection shares: version-checked, position-tracked application of one event."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self
from uuid import UUID

import psycopg
from eventsourcing.domain import Aggregate
from psycopg.copy import QueuedLibpqWriter

from infra.consumers import RetryLaterError


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
    aggregate) also overrides `versions_of` and `write_batch`. A rebuild builds the rows with the
    projection's `rebuilder()` (projections/replay.py)."""

    name: ClassVar[str]
    applications: ClassVar[tuple[str, ...]]
    tables: ClassVar[tuple[str, ...]]
    topics: ClassVar[tuple[str, ...]]
    subject: ClassVar[str]
    # Tables a rebuild fills by COPY alone (no upsert needs their keys meanwhile): their indexes
    # are dropped and built again after the rows, which costs PostgreSQL less than row by row.
    copied_tables: ClassVar[tuple[str, ...]] = ()

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

    def rebuilder(self) -> Rebuilder:
        """What builds this read model's rows in a rebuild (default: `write`'s statements, recorded)."""
        return Recorded(self)


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


# --------------------------------------------------------------------------- rebuild

@contextlib.contextmanager
def rarer_collections(young: int = 50_000) -> Iterator[None]:
    """A rebuild (a replay, the metric history's) makes and drops millions of small objects (rows,
    events, their dicts) and keeps few for long; Python's cycle collector, run every 700
    allocations by default, walks the young survivors again and again for nothing: about a fifth
    of a rebuild's CPU (bench/README.md). Collections of the young generation every `young`
    allocations instead, for this process and the workers it forks meanwhile; cycles are still
    collected, only less often."""
    before = gc.get_threshold()
    gc.set_threshold(max(young, before[0]), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


class Rows:
    """Rows a rebuilder hands over, written in the rebuild's transaction. Picklable: they may be
    built in a worker process."""

    def write(self, cur: psycopg.Cursor) -> None:
        raise NotImplementedError


class Rebuilder:
    """Builds a read model from empty tables, away from the database (in a rebuild's worker
    process): `feed` gets events that are each the next of their aggregate, in order; `take`
    hands over the rows ready to be written, and, once `final`, all the rest. One that
    `takes_payloads` is fed (notification id, event, its payload as JSON text or None) instead:
    the replay's decoder makes most payloads from the stored JSON for less than encoding them
    again (projections/decoding.py)."""

    takes_payloads: ClassVar[bool] = False

    def feed(self, items: Sequence[Item]) -> None:
        raise NotImplementedError

    def take(self, final: bool) -> list[Rows]:
        raise NotImplementedError


@dataclass
class Statements(Rows):
    """Statements run in order, pipelined."""

    statements: list[tuple[str, Any]]

    def write(self, cur: psycopg.Cursor) -> None:
        with cur.connection.pipeline():
            for query, params in self.statements:
                cur.execute(query, params)


@dataclass
class Recorded(Rebuilder):
    """Records what the projection's `write` executes, to run it in the rebuild's transaction: for
    a projection whose `write` only writes (it reads nothing back from its cursor)."""

    projection: Projection
    statements: list[tuple[str, Any]] = field(default_factory=list)

    def execute(self, query: str, params: Any = None) -> None:  # the cursor `write` is handed
        self.statements.append((query, params))

    def feed(self, items: Sequence[Item]) -> None:
        for notification_id, event in items:
            self.projection.write(event, self, notification_id)  # type: ignore[arg-type]

    def take(self, final: bool) -> list[Rows]:
        statements, self.statements = self.statements, []
        return [Statements(statements)] if statements else []


@dataclass
class CopyRows(Rows):
    """Rows in COPY's text format: a line each, columns separated by tabs, free text through
    `copy_text`, NULL as COPY_NULL."""

    table: str
    columns: tuple[str, ...]
    text: str

    @property
    def statement(self) -> str:
        return f"COPY {self.table} ({', '.join(self.columns)}) FROM STDIN"

    def write(self, cur: psycopg.Cursor) -> None:
        with cur.copy(self.statement) as copy:
            copy.write(self.text)


class RowsWriter:
    """Writes what a rebuild's rebuilders hand over, in its transaction: COPY rows as they come,
    through one COPY kept open whose data a psycopg thread sends (this one goes straight back to
    the workers' next rows rather than wait for PostgreSQL to take them); everything else (a few
    statements a budget event, each job's row once) after it, in the order it came."""

    def __init__(self, cur: psycopg.Cursor) -> None:
        self.cur = cur
        self.copying: str | None = None  # the COPY statement open
        self.copy = contextlib.ExitStack()
        self.later: list[Rows] = []

    def __enter__(self) -> Self:
        return self

    def add(self, rows: Rows) -> None:
        if not isinstance(rows, CopyRows):
            self.later.append(rows)
            return
        if rows.statement != self.copying:
            self.copy.close()
            self.open = self.copy.enter_context(self.cur.copy(rows.statement, writer=QueuedLibpqWriter(self.cur)))
            self.copying = rows.statement
        self.open.write(rows.text)

    def __exit__(self, *exc: object) -> None:
        self.copy.__exit__(*exc)  # an error ends the COPY as failed
        if exc[0] is None:
            for rows in self.later:
                rows.write(self.cur)


COPY_NULL = "\\N"


def copy_text(text: str | None) -> str:
    """A value in COPY's text format: backslashes, tabs and line breaks escaped."""
    if text is None:
        return COPY_NULL
    if "\\" in text or "\n" in text or "\r" in text or "\t" in text:
        return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return text
