"""`pipeline audit verify`: every read model rebuilt from its source into a scratch schema and
compared row by row with the live tables, which are only read (a snapshot copy), never locked
against the live consumers nor emptied. No column is ignored: every read-model value is a
function of the events (and, for the metric history, of the telemetry messages)."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

import nats.errors
import psycopg
from eventsourcing.application import Application
from nats.js.errors import NotFoundError, ServiceUnavailableError
from psycopg import sql

from infra import bus
from projections import metrics
from projections.replay import replay
from projections.runner import NAMES, PROJECTIONS

POSITIONS = "projection_positions"


@dataclass
class TableResult:
    table: str
    rows: int  # in the live table
    only_live: int  # live rows the rebuild has not (a changed row counts here and below)
    only_rebuilt: int  # rebuilt rows the live table has not
    samples: list[str] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return bool(self.only_live or self.only_rebuilt)


@dataclass
class Report:
    tables: list[TableResult]
    notes: list[str]

    @property
    def ok(self) -> bool:
        return not any(t.differs for t in self.tables)

    def write(self, out: TextIO) -> None:
        for note in self.notes:
            out.write(f"note: {note}\n")
        for t in self.tables:
            state = (f"{t.only_live} live row(s) not in the rebuild, {t.only_rebuilt} rebuilt row(s) not live"
                     if t.differs else "identical")
            out.write(f"{t.table}: {t.rows} row(s), {state}\n")
            out.writelines(f"  {line}\n" for line in t.samples)
        out.write("verified: read models equal a rebuild\n" if self.ok
                  else "FAILED: read models differ from a rebuild\n")


def tables_of(names: Sequence[str]) -> list[str]:
    return [t for name in names for t in (("job_metrics",) if name == metrics.NAME else PROJECTIONS[name].tables)]


def verify(database_url: str, applications: Mapping[str, Application], nats_url: str | None,
           names: Sequence[str] = NAMES, limit: int = 10, wait_s: float = 30.0) -> Report:
    """Snapshots the live tables, rebuilds the same read models up to the positions in that
    snapshot (the event store up to each projection's position; TELEMETRY up to what the metric
    consumer had taken), compares, and drops the scratch schemas whatever happens."""
    stores = [n for n in names if n != metrics.NAME]
    tables = [*tables_of(names), *([POSITIONS] if stores else [])]
    suffix = uuid.uuid4().hex[:12]
    rebuilt, live = f"audit_verify_{suffix}", f"audit_verify_{suffix}_live"
    notes: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn, scratch(conn, rebuilt, live):
        origin = conn.execute("SELECT current_schema()").fetchone()[0]
        for table in tables:
            conn.execute(sql.SQL("CREATE TABLE {}.{} (LIKE {}.{} INCLUDING ALL)").format(
                sql.Identifier(rebuilt), sql.Identifier(table), sql.Identifier(origin), sql.Identifier(table)))
        telemetry_seq = snapshot(conn, origin, live, tables, nats_url if metrics.NAME in names else None,
                                 wait_s, notes)
        until = {(p, a): n for p, a, n in conn.execute(
            sql.SQL("SELECT projection, application, notification_id FROM {}.{}").format(
                sql.Identifier(live), sql.Identifier(POSITIONS))) if p in stores} if stores else {}
        with psycopg.connect(database_url, options=f"-c search_path={rebuilt}") as build, build.transaction():
            replay(build, [PROJECTIONS[n] for n in stores], applications, until=until,
                   every_topic=len(stores) == len(PROJECTIONS))
            if metrics.NAME in names:
                asyncio.run(metrics.rebuild(build, nats_url or "", until=telemetry_seq))
        results = [compare(conn, live, rebuilt, table, stores, limit) for table in tables]
    return Report(results, notes)


@contextmanager
def scratch(conn: psycopg.Connection, *schemas: str) -> Iterator[None]:
    for schema in schemas:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield
    finally:
        for schema in schemas:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def snapshot(conn: psycopg.Connection, origin: str, live: str, tables: Sequence[str], nats_url: str | None,
             wait_s: float, notes: list[str]) -> int | None:
    """Copies the live tables in one REPEATABLE READ snapshot. With the metric history, waits (up
    to `wait_s`) for a moment when its consumer has nothing in flight before and delivers nothing
    during the copy: the copy then holds exactly the telemetry up to the returned sequence."""
    deadline = time.monotonic() + wait_s
    while True:
        before = consumed(nats_url) if nats_url else None
        copy_tables(conn, origin, live, tables)
        after = consumed(nats_url) if nats_url else None
        if before is None or (before[1] == 0 and before[0] == after[0]):
            return before[0] if before else None
        if time.monotonic() > deadline:
            notes.append(f"telemetry kept arriving for {wait_s:.0f} s: job_metrics is compared up to stream"
                         f" sequence {after[0]}, and may differ by messages in flight")
            return after[0]
        for table in tables:
            conn.execute(sql.SQL("DROP TABLE {}.{}").format(sql.Identifier(live), sql.Identifier(table)))
        time.sleep(0.1)


def copy_tables(conn: psycopg.Connection, origin: str, live: str, tables: Sequence[str]) -> None:
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    try:
        with conn.transaction():
            for table in tables:
                conn.execute(sql.SQL("CREATE TABLE {}.{} AS TABLE {}.{}").format(
                    sql.Identifier(live), sql.Identifier(table), sql.Identifier(origin), sql.Identifier(table)))
    finally:
        conn.isolation_level = None


CONSUMER_INFO_PATIENCE_S = 30.0


def consumed(nats_url: str) -> tuple[int, int]:
    """(last stream sequence delivered, deliveries not yet acknowledged) of the metric consumer;
    without one, the stream's last sequence (a rebuild filled the table from all of it)."""

    async def ask() -> tuple[int, int]:
        nc = await bus.connect(nats_url, "audit-verify")
        deadline = time.monotonic() + CONSUMER_INFO_PATIENCE_S
        try:
            js = nc.jetstream()
            while True:
                try:
                    info = await js.consumer_info(bus.TELEMETRY_STREAM, metrics.DURABLE)
                except NotFoundError:
                    return (await js.stream_info(bus.TELEMETRY_STREAM)).state.last_seq, 0
                except (nats.errors.TimeoutError, nats.errors.NoRespondersError, ServiceUnavailableError):
                    # A cluster whose node was just restarted may not answer for a few seconds (its
                    # stream and consumer leaders being elected): asked again, not a difference.
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.5)
                    continue
                return info.delivered.stream_seq or 0, info.num_ack_pending or 0
        finally:
            await nc.close()

    return asyncio.run(ask())


def compare(conn: psycopg.Connection, live: str, rebuilt: str, table: str, projections: Sequence[str],
            limit: int) -> TableResult:
    """Rows of the live copy missing from the rebuild and the other way round (EXCEPT ALL: SQL
    equality, so a NaN loss equals a NaN loss and 1.0 equals 1.00); the first `limit` of each
    side, paired by primary key when a row changed."""
    where = sql.SQL(" WHERE projection = ANY(%(names)s)" if table == POSITIONS else "")
    key = primary_key(conn, rebuilt, table)
    order = sql.SQL(", ").join(sql.Identifier(c) for c in key) if key else sql.SQL("1")

    def side(a: str, b: str) -> sql.Composed:
        return sql.SQL("SELECT * FROM {}.{}{} EXCEPT ALL SELECT * FROM {}.{}{}").format(
            sql.Identifier(a), sql.Identifier(table), where, sql.Identifier(b), sql.Identifier(table), where)

    params = {"names": list(projections), "limit": limit}
    rows = conn.execute(sql.SQL("SELECT count(*) FROM {}.{}{}").format(
        sql.Identifier(live), sql.Identifier(table), where), params).fetchone()[0]
    counts = [conn.execute(sql.SQL("SELECT count(*) FROM ({}) d").format(q), params).fetchone()[0]
              for q in (side(live, rebuilt), side(rebuilt, live))]
    result = TableResult(table, rows, *counts)
    if result.differs:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        only_live, only_rebuilt = (
            cur.execute(sql.SQL("SELECT * FROM ({}) d ORDER BY {} LIMIT %(limit)s").format(q, order), params).fetchall()
            for q in (side(live, rebuilt), side(rebuilt, live)))
        result.samples = describe(only_live, only_rebuilt, key, limit)
    return result


def primary_key(conn: psycopg.Connection, schema: str, table: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
        (f'"{schema}"."{table}"',))]


def describe(only_live: list[dict[str, Any]], only_rebuilt: list[dict[str, Any]], key: list[str],
             limit: int) -> list[str]:
    def key_of(row: dict[str, Any]) -> tuple:
        return tuple(row[c] for c in key) if key else tuple(row.values())

    def shown(row: dict[str, Any]) -> str:
        return ", ".join(f"{c}={row[c]}" for c in key) if key else repr(tuple(row.values()))

    rebuilt_by_key = {key_of(r): r for r in only_rebuilt}
    lines, paired = [], set()
    for row in only_live:
        other = rebuilt_by_key.get(key_of(row)) if key else None
        if other is None:
            lines.append(f"only in the live table: {shown(row)}")
            continue
        paired.add(key_of(row))
        changes = "; ".join(f"{c}: live {row[c]!r}, rebuilt {other[c]!r}" for c in row if not same(row[c], other[c]))
        lines.append(f"changed {shown(row)}: {changes}")
    lines += [f"missing from the live table: {shown(r)}" for r in only_rebuilt if key_of(r) not in paired]
    return lines[:limit]


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def run(database_url: str, applications: Mapping[str, Application], nats_url: str | None, names: Sequence[str],
        limit: int, wait_s: float, out: TextIO) -> int:
    """Prints the report; 0 when every table equals its rebuild, 1 otherwise."""
    report = verify(database_url, applications, nats_url, names, limit, wait_s)
    report.write(out)
    return 0 if report.ok else 1
