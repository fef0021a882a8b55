"""The job page's read: the detail (projections/job_detail.py) with the metric, event and cost
figures its cards show, in one connection checkout and one round trip (psycopg pipeline mode)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from projections.job_detail import STATEMENTS as DETAIL_STATEMENTS
from projections.job_detail import assemble

METRIC_STATEMENTS = {
    "latest": "SELECT step, loss, learning_rate, tokens_per_s, gpu_util, gpu_memory_gb, at FROM job_metrics"
              " WHERE job_id = %(id)s AND loss IS NOT NULL ORDER BY step DESC LIMIT 2",
    "evals": "SELECT step, eval_loss, perplexity FROM job_metrics WHERE job_id = %(id)s AND eval_loss IS NOT NULL"
             " ORDER BY step DESC LIMIT 2",
    "first": "SELECT step, at FROM job_metrics WHERE job_id = %(id)s ORDER BY step LIMIT 1",
    "event_count": "SELECT count(*) AS n FROM event_log WHERE job_id = %(id)s",
    "breakdown": "SELECT lost_cost, interruptions FROM job_costs WHERE job_id = %(id)s",
}


async def read_job(pool: AsyncConnectionPool, job_id: UUID, now: datetime) -> dict[str, Any] | None:
    """The detail with `metric_rows` (latest, evals, first), `event_count` and `breakdown`; None
    when the job is not in the read model."""
    found = await pipelined(pool, {**DETAIL_STATEMENTS, **METRIC_STATEMENTS}, {"id": job_id, "now": now})
    detail = assemble({name: found[name] for name in DETAIL_STATEMENTS}, now)
    if detail is None:
        return None
    return detail | {"metric_rows": {name: found[name] for name in ("latest", "evals", "first")},
                     "event_count": found["event_count"][0]["n"],
                     "breakdown": found["breakdown"][0] if found["breakdown"] else None}


async def pipelined(pool: AsyncConnectionPool, statements: dict[str, str],
                    params: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each statement's rows by name, all sent before any answer is awaited."""
    async with pool.connection() as conn, conn.pipeline():
        cursors = {}
        for name, query in statements.items():
            cursors[name] = conn.cursor(row_factory=dict_row)
            await cursors[name].execute(query, params)
        return {name: await cur.fetchall() for name, cur in cursors.items()}
