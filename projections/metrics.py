"""Metric history read model (FR2.1.1): the agent's `step` and `eval` telemetry, one row per job
and training step, live from the TELEMETRY stream and rebuilt from it.

Telemetry never enters the event store, so the stream is this read model's source. Every write is
a merge keyed by (job, step) — duplicates, redeliveries and steps out of order change nothing —
so it keeps no position of its own: its durable consumer's acks are its position."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from uuid import UUID

import psycopg
from faststream.nats import NatsBroker
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from psycopg import sql
from psycopg_pool import ConnectionPool
from pydantic import BaseModel, Field

from infra import bus
from infra.bus import TELEMETRY_STREAM
from infra.consumers import PROJECTION_ACK_WAIT_S, PoisonMessageError, add_consumer
from infra.telemetry import ALL_TELEMETRY, Telemetry, kind_subjects
from projections.base import rarer_collections

NAME = "metrics"
DURABLE = "projection-metrics"
KINDS = ("step", "eval")
INT_MAX = 2**31 - 1
# Read-model column ← field of the agent's message (gpu_agent/callbacks.py).
FIELDS = {"epoch": "epoch", "loss": "loss", "eval_loss": "eval_loss", "perplexity": "perplexity",
          "learning_rate": "learning_rate", "grad_norm": "grad_norm", "tokens_per_s": "tokens_per_s",
          "gpu_util": "gpu_utilization", "gpu_memory_gb": "gpu_memory_used_gb",
          "token_efficiency": "token_efficiency", "step_time_s": "step_time_s",
          "gpu_peak_memory_gb": "gpu_peak_memory_gb"}


class MetricData(BaseModel):
    """The figures of a `step` or `eval` message; any of them may be missing (eval has no loss,
    a CPU pod no GPU figures). NaN is kept: a diverged loss is worth seeing."""

    step: int = Field(ge=0, le=INT_MAX)
    epoch: float | None = None
    loss: float | None = None
    eval_loss: float | None = None
    perplexity: float | None = None
    learning_rate: float | None = None
    grad_norm: float | None = None
    tokens_per_s: float | None = None
    gpu_utilization: float | None = None
    gpu_memory_used_gb: float | None = None
    token_efficiency: float | None = None  # useful (non-padding) tokens / processed tokens
    step_time_s: float | None = None
    gpu_peak_memory_gb: float | None = None


@dataclass(frozen=True)
class Point:
    kind: str
    job_id: UUID
    step: int
    attempt: int
    values: tuple[float | None, ...]  # in FIELDS order
    at: datetime

    def __post_init__(self) -> None:  # figures left off at the end (columns added later) are missing: None
        object.__setattr__(self, "values", tuple(self.values) + (None,) * (len(FIELDS) - len(self.values)))


def point(subject: str, body: bytes) -> Point | None:
    """The row a message carries, None for other kinds. Malformed messages, and bodies naming
    another job than the subject their pod could publish on, are poison."""
    try:
        message = Telemetry.model_validate_json(body)
        if message.kind not in KINDS:
            return None
        data = MetricData.model_validate(message.data)
        job_id, at = UUID(message.job_id), datetime.fromisoformat(message.at)
    except ValueError as exc:  # pydantic's ValidationError included
        raise PoisonMessageError(f"not a metric message: {exc}") from None
    if subject != message.subject:
        raise PoisonMessageError(f"message on {subject} claims to be {message.subject}: refused")
    if message.attempt > INT_MAX:
        raise PoisonMessageError(f"attempt {message.attempt} out of range")
    return Point(message.kind, job_id, data.step, message.attempt,
                 tuple(getattr(data, name) for name in FIELDS.values()),
                 at if at.tzinfo else at.replace(tzinfo=timezone.utc))


def _upsert(at: str, rows: sql.Composable) -> sql.Composed:
    """Non-null figures merge into the step's row; a later attempt's figures replace an earlier's,
    an earlier attempt's arriving late change nothing. `rows`: one row's placeholders, or a batch's arrays."""
    columns = [sql.Identifier(name) for name in FIELDS]
    return sql.SQL(
        "INSERT INTO job_metrics (job_id, step, attempt, {columns}, at) {rows}"
        " ON CONFLICT (job_id, step) DO UPDATE SET attempt = EXCLUDED.attempt, {merged}, at = {at}"
        " WHERE EXCLUDED.attempt >= job_metrics.attempt"
    ).format(
        columns=sql.SQL(", ").join(columns),
        rows=rows,
        merged=sql.SQL(", ").join(sql.SQL("{0} = COALESCE(EXCLUDED.{0}, job_metrics.{0})").format(c) for c in columns),
        at=sql.SQL(at),
    )


ONE_ROW = sql.SQL("VALUES ({})").format(sql.SQL(", ").join(sql.Placeholder() * (len(FIELDS) + 4)))
ARRAYS = sql.SQL("SELECT * FROM unnest({})").format(sql.SQL(", ").join(
    sql.SQL("%s::{}[]").format(sql.SQL(kind)) for kind in ("uuid", "integer", "integer", *["float8"] * len(FIELDS),
                                                            "timestamptz")))
# A row's time is its training step's; an evaluation only dates a row no step message has reached yet.
# Rendered once: composing the statement again for every message cost a fifth of the live consumer's time.
UPSERT = {kind: _upsert(at, ONE_ROW).as_string(None) for kind, at in (("step", "EXCLUDED.at"),
                                                                       ("eval", "job_metrics.at"))}
UPSERT_ROWS = {kind: _upsert(at, ARRAYS).as_string(None) for kind, at in (("step", "EXCLUDED.at"),
                                                                           ("eval", "job_metrics.at"))}

# A rebuild's points, in stream order (`seq`), before they are merged (`MERGE_STAGED`).
STAGING = sql.SQL(
    "CREATE TEMP TABLE metric_points (seq bigint NOT NULL, kind text NOT NULL, job_id uuid NOT NULL,"
    " step integer NOT NULL, attempt integer NOT NULL, {figures}, at timestamptz NOT NULL) ON COMMIT DROP"
).format(figures=sql.SQL(", ").join(sql.SQL("{} double precision").format(sql.Identifier(n)) for n in FIELDS))
COPY_STAGED = sql.SQL("COPY metric_points (seq, kind, job_id, step, attempt, {figures}, at) FROM STDIN").format(
    figures=sql.SQL(", ").join(sql.Identifier(n) for n in FIELDS))
# What the upserts above leave after every point, applied in stream order, in one statement. A
# point changes its row when its attempt is at least the row's, which is the largest attempt of
# the points before it (a point left out never holds the largest); the row then keeps: that
# attempt, each figure's last non-null value among the points applied (COALESCE), and the time of
# the last step applied, or else of the first point (an evaluation's, until a step comes).
MERGE_STAGED = sql.SQL(
    "INSERT INTO job_metrics (job_id, step, attempt, {columns}, at)"
    " SELECT job_id, step, max(attempt), {figures},"
    " coalesce((array_agg(at ORDER BY seq DESC) FILTER (WHERE kind = 'step'))[1], (array_agg(at ORDER BY seq))[1])"
    " FROM (SELECT *, max(attempt) OVER (PARTITION BY job_id, step ORDER BY seq"
    "       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before FROM metric_points) AS points"
    " WHERE before IS NULL OR attempt >= before"
    " GROUP BY job_id, step"
).format(
    columns=sql.SQL(", ").join(sql.Identifier(n) for n in FIELDS),
    figures=sql.SQL(", ").join(
        sql.SQL("(array_agg({0} ORDER BY seq DESC) FILTER (WHERE {0} IS NOT NULL))[1]").format(sql.Identifier(n))
        for n in FIELDS),
)


def write(conn: psycopg.Connection, points: Sequence[Point]) -> None:
    """A batch in at most three statements, one round trip (pipeline mode); the caller owns the
    transaction. The points of one (job, step) are first merged here as the upserts would merge them
    one by one, in stream order: the last non-null value of each figure, the last step's time (an
    evaluation's only when no step came). Where they come from different attempts, whether an older
    one counts depends on the row already stored: those go one by one, in order."""
    groups: dict[tuple[UUID, int], list[Point]] = {}
    for p in points:
        groups.setdefault((p.job_id, p.step), []).append(p)
    merged: dict[str, list[tuple]] = {"step": [], "eval": []}
    one_by_one: list[Point] = []
    for (job_id, step), group in groups.items():
        if any(p.attempt != group[0].attempt for p in group):
            one_by_one.extend(group)
            continue
        values = list(group[0].values)
        for p in group[1:]:
            values = [v if v is not None else kept for v, kept in zip(p.values, values, strict=True)]
        steps = [p for p in group if p.kind == "step"]
        merged["step" if steps else "eval"].append(
            (job_id, step, group[0].attempt, *values, steps[-1].at if steps else group[0].at))
    with conn.pipeline(), conn.cursor() as cur:
        for kind, rows in merged.items():
            if rows:
                cur.execute(UPSERT_ROWS[kind], [list(column) for column in zip(*rows, strict=True)])
        for p in one_by_one:
            cur.execute(UPSERT[p.kind], (p.job_id, p.step, p.attempt, *p.values, p.at))


def parse(items: Sequence[tuple[str, bytes]]) -> tuple[list[Point], list[Exception | None]]:
    """The points of a batch of (subject, body), and per message None or why it is poison."""
    points: list[Point] = []
    outcomes: list[Exception | None] = []
    for subject, body in items:
        try:
            found = point(subject, body)
        except PoisonMessageError as exc:
            outcomes.append(exc)
            continue
        outcomes.append(None)
        if found is not None:
            points.append(found)
    return points, outcomes


def add_live_metrics(broker: NatsBroker, pool: ConnectionPool, max_deliver: int) -> None:
    def handle(items: Sequence[tuple[str, bytes]]) -> list[Exception | None]:
        points, outcomes = parse(items)
        if points:
            try:
                with pool.connection() as conn, conn.transaction():
                    write(conn, points)
            except Exception as exc:  # noqa: BLE001 - settled per message by the consumer
                return [outcome or exc for outcome in outcomes]
        return outcomes

    add_consumer(broker, pool, durable=DURABLE, subject=ALL_TELEMETRY, stream=TELEMETRY_STREAM,
                 handle=handle, max_deliver=max_deliver, with_subjects=True, ack_wait_s=PROJECTION_ACK_WAIT_S)


async def rebuild(conn: psycopg.Connection, nats_url: str, progress: Callable[[int], None] | None = None,
                  timeout: float = 5.0, until: int | None = None) -> int:
    """Empties job_metrics and refills it from the whole TELEMETRY stream in one transaction
    (readers wait for it and never see it half filled); returns how many messages were read.
    The live consumer's writes meanwhile wait for the lock, then merge as usual. `until` stops at
    a stream sequence (what the live consumer had consumed, for `audit verify`).

    The points go by COPY, in stream order, into a scratch table, and one statement merges them
    (`merged`, `MERGE_STAGED`) as the live upserts would have one by one: an upsert per message
    cost ~135 µs a message over a million of them, the merge a few."""
    nc = await bus.connect(nats_url, "metrics-rebuild", timeout)
    count = 0
    try:
        with rarer_collections(), conn.transaction():
            conn.execute("TRUNCATE job_metrics")
            with merged(conn) as add:
                async for batch in stream_batches(nc.jetstream(), until=until):
                    add(parse([(m.subject, m.data) for m in batch])[0])
                    count += len(batch)
                    if progress:
                        progress(count)
    finally:
        await nc.close()
    return count


@contextlib.contextmanager
def merged(conn: psycopg.Connection) -> Iterator[Callable[[Sequence[Point]], None]]:
    """Gives a function that takes points, in stream order; on leaving, merges them all into
    job_metrics as `write` would have, in the caller's transaction."""
    conn.execute(STAGING)
    seq = itertools.count(1)  # each point's place in the stream: the merge applies them in this order
    with conn.cursor() as cur, cur.copy(COPY_STAGED) as copy:
        def add(points: Sequence[Point]) -> None:
            for p in points:
                copy.write_row((next(seq), p.kind, p.job_id, p.step, p.attempt, *p.values, p.at))

        yield add
    conn.execute("SET LOCAL work_mem = '256MB'")  # the merge's sort in memory, not on disk
    conn.execute(MERGE_STAGED)
    conn.execute("DROP TABLE metric_points")  # a caller's outer transaction may rebuild again


async def stream_batches(js: JetStreamContext, size: int = 1000, timeout: float = 2.0,
                         until: int | None = None) -> AsyncIterator[list[Msg]]:
    """The stream's step and eval messages from its first, in order, through an ephemeral
    consumer without acks; stops at the end it finds, or after stream sequence `until`."""
    if (await js.stream_info(TELEMETRY_STREAM)).state.messages == 0 or until == 0:
        return
    sub = await js.pull_subscribe(ALL_TELEMETRY, stream=TELEMETRY_STREAM, config=ConsumerConfig(
        filter_subjects=[kind_subjects(kind) for kind in KINDS], deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.NONE, inactive_threshold=30.0))
    try:
        while True:
            try:
                batch = await sub.fetch(size, timeout)
            except TimeoutError:
                return
            if until is not None and batch[-1].metadata.sequence.stream >= until:
                yield [m for m in batch if m.metadata.sequence.stream <= until]
                return
            yield batch
            if batch[-1].metadata.num_pending == 0:
                return
    finally:
        await sub.unsubscribe()
