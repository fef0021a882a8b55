"""The loss curve's reads of the metric history (FR2.1.1): its first load, thinned and turned into
JSON by PostgreSQL, and the live stream's poll for the rows after it."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

MAX_POINTS = 2000  # the chart's first load: a long history thinned to about this many points (2+ per pixel)
# The chart's points after step `after`, in one statement: thinned to every k-th step from the
# first when the steps span more than `max` (k = ⌈span / max⌉), keeping the last row and every
# evaluation; the JSON is built by PostgreSQL from the rows in step order, losses as `real` (NaN
# and infinite losses, a diverged run, become gaps: JSON has neither). It also counts the rows
# kept by step, to notice steps logged only every few (bench/README.md: why not a window function).
FINITE = "(CASE WHEN {0} IN ('NaN', 'Infinity', '-Infinity') THEN NULL ELSE {0} END)::real"  # 7 digits: a chart
POINTS_JSON = (
    "WITH span AS (SELECT min(step) AS first, max(step) AS last FROM job_metrics WHERE job_id = %(id)s"
    " AND step > %(after)s), s AS (SELECT first, last, (last - first) / %(max)s + 1 AS k FROM span),"
    " kept AS MATERIALIZED (SELECT step, loss, eval_loss FROM {rows} ORDER BY step)"
    " SELECT count(*), (SELECT k FROM s),"
    " count(*) FILTER (WHERE (step - (SELECT first FROM s)) %% (SELECT k FROM s) = 0),"
    " json_build_object('steps', json_agg(step),"  # in the order of `kept`, sorted once
    f" 'loss', json_agg({FINITE.format('loss')}), 'eval', json_agg({FINITE.format('eval_loss')}),"
    " 'last_step', max(step), 'last_eval_step', COALESCE(max(step) FILTER (WHERE eval_loss IS NOT NULL), -1))::text"
    " FROM kept")
BY_STEP = ("job_metrics, s WHERE job_id = %(id)s AND step > %(after)s"
           " AND ((step - s.first) %% s.k = 0 OR eval_loss IS NOT NULL OR step = s.last)")
# Steps logged every few steps can miss every k-th step: then every k-th row (as projections.queries.metric_history).
BY_ROW = ("(SELECT step, loss, eval_loss, row_number() OVER (ORDER BY step) - 1 AS i, count(*) OVER () AS n"
          " FROM job_metrics WHERE job_id = %(id)s AND step > %(after)s) numbered"
          " WHERE i %% ceil(n / %(max)s::numeric)::bigint = 0 OR i = n - 1 OR eval_loss IS NOT NULL")
NO_POINTS = b'{"steps": [], "loss": [], "eval": [], "last_step": -1, "last_eval_step": -1}'
JOB_STATE = "SELECT status, attempt, updated_at, version FROM jobs WHERE id = %(id)s"
# Rows after the last step sent, and evaluations merged since into steps already sent (an
# evaluation lands on its step's row, usually just after the step itself).
NEW_POINTS = ("SELECT step, loss, eval_loss FROM job_metrics WHERE job_id = %(id)s AND step > LEAST(%(after)s,"
              " %(eval_after)s) AND (step > %(after)s OR eval_loss IS NOT NULL) ORDER BY step LIMIT %(limit)s")


async def read_points(pool: AsyncConnectionPool, job_id: UUID, after: int, max_points: int = MAX_POINTS) -> bytes:
    """The chart's columns as JSON: steps, loss, eval, last_step, last_eval_step."""
    params = {"id": job_id, "after": after, "max": max_points}
    async with pool.connection() as conn:
        count, k, by_step, body = await (await conn.execute(POINTS_JSON.format(rows=BY_STEP), params)).fetchone()
        if k and k > 1 and by_step < max_points // 4:
            count, k, by_step, body = await (await conn.execute(POINTS_JSON.format(rows=BY_ROW), params)).fetchone()
    return body.encode() if count else NO_POINTS


async def poll(pool: AsyncConnectionPool, job_id: UUID, after: int, eval_after: int,
               limit: int) -> tuple[dict[str, Any] | None, list[tuple]]:
    """The job's status, attempt, version (its last change's time) and `row_version` (the last event
    applied; None: no such job) and up to `limit` new rows, on one pooled connection given back at once."""
    async with pool.connection() as conn:
        job = await (await conn.execute(JOB_STATE, {"id": job_id})).fetchone()
        rows = await (await conn.execute(NEW_POINTS, {"id": job_id, "after": after, "eval_after": eval_after,
                                                       "limit": limit})).fetchall()
    return (None if job is None else {"status": job[0], "attempt": job[1], "version": job[2].isoformat(),
                                      "row_version": job[3]}), rows
