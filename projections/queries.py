"""Reads of the event log and metric history read models, for pages, the API and exports: on a
connection, or on the web process's async pool."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from projections.event_messages import CATEGORIES
from projections.pool import rows

PER_PAGE = 50  # FR2.1.3


@dataclass(frozen=True)
class LoggedEvent:
    notification_id: int
    at: datetime
    topic: str
    category: str
    message: str
    actor: str | None
    payload: dict[str, Any]
    originator_id: UUID
    originator_version: int


@dataclass(frozen=True)
class EventPage:
    events: list[LoggedEvent]
    total: int  # events matching the filters, on every page
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


EVENT_COLUMNS = "notification_id, at, topic, category, message, actor, payload, originator_id, originator_version"
COUNT_EVENTS = "SELECT count(*) FROM event_log WHERE {where}"
PAGE_OF_EVENTS = f"SELECT {EVENT_COLUMNS} FROM event_log WHERE {{where}} ORDER BY notification_id LIMIT %s OFFSET %s"


def event_filter(job_id: UUID, keyword: str | None, category: str | None) -> tuple[str, list[Any]]:
    """The WHERE clause (for COUNT_EVENTS and PAGE_OF_EVENTS) and its parameters: the job's events,
    of `category`, whose message or payload text contains `keyword` (case-insensitive, literally)."""
    where, params = "job_id = %s", [job_id]
    if category:
        where += " AND category = %s"
        params.append(category)
    if keyword:
        where += " AND (message || ' ' || payload::text) ILIKE %s"
        params.append("%" + keyword.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    return where, params


def job_events(conn: psycopg.Connection, job_id: UUID, *, keyword: str | None = None,
               category: str | None = None, page: int = 1, per_page: int = PER_PAGE) -> EventPage:
    """A job's events in the order they were stored. `keyword` matches the message or any payload
    text, case-insensitively; a job has hundreds to a few thousand events, so a scan of its rows
    (by index) is enough without a text index."""
    if category is not None and category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; known: {', '.join(CATEGORIES)}")
    where, params = event_filter(job_id, keyword, category)
    page = max(1, page)
    total = conn.execute(COUNT_EVENTS.format(where=where), params).fetchone()[0]
    with conn.cursor(row_factory=class_row(LoggedEvent)) as cur:
        events = cur.execute(PAGE_OF_EVENTS.format(where=where), [*params, per_page, (page - 1) * per_page]).fetchall()
    return EventPage(events, total, page, per_page)


async def event_page(pool: AsyncConnectionPool, job_id: UUID, keyword: str | None, category: str | None,
                     page: int) -> EventPage:
    """`job_events` on the pool (same filters, order and page size); a page past the last shows
    the last."""
    where, params = event_filter(job_id, keyword, category)
    async with pool.connection() as conn:
        total = (await (await conn.execute(COUNT_EVENTS.format(where=where), params)).fetchone())[0]
        page = min(max(1, page), max(1, -(-total // PER_PAGE)))
        cur = conn.cursor(row_factory=class_row(LoggedEvent))
        events = await (await cur.execute(PAGE_OF_EVENTS.format(where=where),
                                          [*params, PER_PAGE, (page - 1) * PER_PAGE])).fetchall()
    return EventPage(events, total, page, PER_PAGE)


async def configured_hyperparameters(pool: AsyncConnectionPool, ids: list[UUID]) -> dict[UUID, dict[str, Any]]:
    """Each job's hyperparameters as last configured (the event log's TrainingJob.Configured)."""
    found = await rows(pool, "SELECT DISTINCT ON (job_id) job_id, payload -> 'hyperparameters' AS hyperparameters"
                             " FROM event_log WHERE job_id = ANY(%(ids)s) AND topic = 'TrainingJob.Configured'"
                             " ORDER BY job_id, notification_id DESC", {"ids": ids})
    return {row["job_id"]: row["hyperparameters"] or {} for row in found}


@dataclass(frozen=True)
class MetricPoint:
    step: int
    epoch: float | None
    loss: float | None
    eval_loss: float | None
    perplexity: float | None
    learning_rate: float | None
    grad_norm: float | None
    tokens_per_s: float | None
    gpu_util: float | None
    gpu_memory_gb: float | None
    at: datetime


METRIC_COLUMNS = ("step, epoch, loss, eval_loss, perplexity, learning_rate, grad_norm, tokens_per_s, gpu_util,"
                  " gpu_memory_gb, at")


# Every k-th row (k = ⌈rows / max⌉) plus the last one and every evaluation.
THINNED_METRICS = (f"SELECT {METRIC_COLUMNS} FROM (SELECT *, row_number() OVER (ORDER BY step) - 1 AS i,"  # noqa: S608
                   " count(*) OVER () AS n FROM job_metrics WHERE job_id = %(job)s) numbered"
                   " WHERE i %% ceil(n / %(max)s::numeric)::bigint = 0 OR i = n - 1 OR eval_loss IS NOT NULL"
                   " ORDER BY step")
ALL_METRICS = f"SELECT {METRIC_COLUMNS} FROM job_metrics WHERE job_id = %(job)s ORDER BY step"  # noqa: S608


def metric_history(conn: psycopg.Connection, job_id: UUID, max_points: int | None = None) -> list[MetricPoint]:
    """A job's metric rows by step. With `max_points`, a long history is thinned to every k-th
    row (k = ⌈rows / max_points⌉) plus the last one and every evaluation, so a chart of 100,000
    steps gets about `max_points` points and still all of its validation curve."""
    query = THINNED_METRICS if max_points else ALL_METRICS
    with conn.cursor(row_factory=class_row(MetricPoint)) as cur:
        return cur.execute(query, {"job": job_id, "max": max_points}).fetchall()


async def metric_points(pool: AsyncConnectionPool, job_id: UUID, max_points: int | None = None) -> list[MetricPoint]:
    """`metric_history` on the pool."""
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=class_row(MetricPoint))
        await cur.execute(THINNED_METRICS if max_points else ALL_METRICS, {"job": job_id, "max": max_points})
        return await cur.fetchall()
