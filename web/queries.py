"""Read-model queries the pages and the API share (projections only, never the event store)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from projections.job_detail import STATEMENTS as DETAIL_STATEMENTS
from projections.job_detail import assemble
from projections.job_search import JobPage, JobSearch, presented

JOB_COLUMNS = ("id, name, status, training_file, created_by, created_at, updated_at, preset, gpu_tier,"
               " estimated_cost_min, estimated_cost_max")
FILE_COLUMNS = ("id, name, status, file, stats, problems, problem_count, conversation_count, pair_count,"
                " avg_quality, active_jobs, registered_by, registered_at")


async def rows(pool: AsyncConnectionPool, query: str, params: tuple = ()) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(query, params)
        return await cur.fetchall()


async def list_jobs(pool: AsyncConnectionPool, limit: int = 200) -> list[dict[str, Any]]:
    return await rows(pool, f"SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at DESC, id LIMIT %s", (limit,))


async def search_jobs(pool: AsyncConnectionPool, search: JobSearch) -> JobPage:
    """The jobs list (FR2.3.1): one page and the number of jobs matching (projections/job_search.py)."""
    count, page, params = search.statements()
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        total = (await (await cur.execute(count, params)).fetchone())["total"]
        jobs = [presented(row) for row in await (await cur.execute(page, params)).fetchall()]
    return JobPage(jobs, total, search.page, search.per_page)


async def job_detail(pool: AsyncConnectionPool, job_id: UUID) -> dict[str, Any] | None:
    """Progress, stages, cost tracker, interruptions and linked retries (projections/job_detail.py)."""
    now = datetime.now(timezone.utc)
    found = {}
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        for name, query in DETAIL_STATEMENTS.items():
            found[name] = await (await cur.execute(query, {"id": job_id, "now": now})).fetchall()
    return assemble(found, now)


async def get_job(pool: AsyncConnectionPool, job_id: UUID) -> dict[str, Any] | None:
    found = await rows(pool, f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = %s", (job_id,))
    return found[0] if found else None


async def list_files(pool: AsyncConnectionPool, eligible_only: bool = False) -> list[dict[str, Any]]:
    where = "WHERE status = 'active' AND conversation_count >= 50" if eligible_only else ""
    return await rows(pool, f"SELECT {FILE_COLUMNS} FROM training_files {where} ORDER BY registered_at DESC, id")


async def successful_jobs(pool: AsyncConnectionPool, user: str) -> int:
    found = await rows(pool, "SELECT count(*) AS n FROM jobs WHERE created_by = %s AND status = 'completed'", (user,))
    return int(found[0]["n"])


async def queue_load(pool: AsyncConnectionPool) -> tuple[int, int]:
    """(active, queued) jobs: active ones hold or are getting a pod."""
    from domain.job_status import ACTIVE

    found = await rows(pool, "SELECT count(*) FILTER (WHERE status = ANY(%s)) AS active,"
                             " count(*) FILTER (WHERE status = 'queued') AS queued FROM jobs",
                       ([s.value for s in ACTIVE],))
    return int(found[0]["active"]), int(found[0]["queued"])
