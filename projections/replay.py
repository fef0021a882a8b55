"""Replays the event store into empty read models (`projections rebuild`, `audit verify`): one pass
over the notification log; each aggregate's events go in order to one share (projections/partition.py),
which decodes each event once and folds it into every read model that reads it with the live
consumers' own functions (projections' `rebuilder()`), away from the database. A long history is
shared among worker processes (projections/replay_workers.py); the rows all come back here and are
written in the caller's transaction, so readers see the old tables or the new ones, never half."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence

import psycopg
from eventsourcing.application import Application
from psycopg import sql

from projections.base import POSITION, Projection, RowsWriter, rarer_collections
from projections.partition import Partition, Plan, pages, rows
from projections.replay_workers import replay_in_workers

PAGE = 5000  # notifications read at a time
PARALLEL_FROM = 20_000  # notifications: below this, starting workers costs more than they save
MAX_WORKERS = 4  # one PostgreSQL session writes everything: more workers would wait on it


def replay(conn: psycopg.Connection, projections: Sequence[Projection], applications: Mapping[str, Application],
           until: Mapping[tuple[str, str], int] | None = None, progress: Callable[[int], None] | None = None,
           page: int = PAGE, workers: int | None = None, every_topic: bool = False) -> dict[str, int]:
    """Applies every stored event of the projections' topics, in notification order, into their
    tables, which must be empty (the caller empties them and owns the transaction). `until` stops
    a projection at a notification id of an application, keyed (projection, application): its
    live position, for a comparison. `workers`: processes building the rows (default: one per
    core, up to MAX_WORKERS, none for a short history). `every_topic`: read every notification
    and skip unread topics here rather than filter them in PostgreSQL, whose filter costs more
    than it saves when the projections read (nearly) all of the store. Returns how many events
    each projection was given."""
    counts = {p.name: 0 for p in projections}
    read = 0
    # A transaction of its own too (a savepoint in the caller's): never the indexes dropped alone.
    with rarer_collections(), conn.transaction(), \
            indexes_built_after(conn, [t for p in projections for t in p.copied_tables]):
        for name in dict.fromkeys(a for p in projections for a in p.applications):
            read += replay_application(conn, name, projections, applications[name], until or {}, progress, read,
                                       page, workers, every_topic, counts)
    return counts


def replay_application(conn: psycopg.Connection, name: str, projections: Sequence[Projection], app: Application,
                       until: Mapping[tuple[str, str], int], progress: Callable[[int], None] | None, read: int,
                       page: int, workers: int | None, every_topic: bool, counts: dict[str, int]) -> int:
    plan = Plan.of([p for p in projections if name in p.applications], name, until, every_topic)
    count = default_workers(app, plan.stop) if workers is None else workers
    report = functools.partial(_report, progress, read)
    done = replay_in_workers(conn, app, plan, page, count, report) if count > 0 else \
        replay_here(conn, app, plan, page, report)
    for projection, given, position in zip(plan.projections, plan.given, plan.positions, strict=True):
        counts[projection.name] += given
        if position:
            conn.execute(POSITION, (projection.name, name, position))
    return done


@contextlib.contextmanager
def indexes_built_after(conn: psycopg.Connection, tables: Sequence[str]) -> Iterator[None]:
    """Drops the tables' indexes and key constraints, and makes them again on leaving (as they
    were, names and all; a key is checked then): PostgreSQL builds an index from sorted rows for
    less than it inserts them one by one (`Populating a Database` in its manual; the event log's
    COPY of 100,000 rows and its two indexes: 0.53 s of server CPU rather than 0.68 s)."""
    again: list[str] = []
    for table in tables:
        for constraint, definition in conn.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'x')", (table,)).fetchall():
            conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(table), sql.Identifier(constraint)))
            again.append(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(
                sql.Identifier(table), sql.Identifier(constraint)).as_string(conn) + definition)
        for index, definition in conn.execute(
                "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index"
                " WHERE indrelid = %s::regclass", (table,)).fetchall():
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(index)))  # regclass text: quoted as needed
            again.append(definition)
    yield
    for statement in again:
        conn.execute(statement)  # type: ignore[arg-type] - the catalog's own definitions


def _report(progress: Callable[[int], None] | None, before: int, read: int) -> None:
    if progress:
        progress(before + read)


def default_workers(app: Application, stop: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if cores < 2 or min(app.recorder.max_notification_id() or 0, stop) < PARALLEL_FROM:
        return 0
    return min(cores, MAX_WORKERS)


def replay_here(conn: psycopg.Connection, app: Application, plan: Plan, page: int,
                progress: Callable[[int], None]) -> int:
    """In this process (a short history)."""
    partition, read = Partition(plan, app.mapper), 0
    with conn.cursor() as cur, RowsWriter(cur) as writer:
        for batch in pages(app, plan, page):
            for built in partition.feed(rows(batch, plan)):
                writer.add(built)
            read += len(batch)
            progress(read)
        for built in partition.take(final=True):
            writer.add(built)
    plan.add(partition.given, partition.positions)
    return read
