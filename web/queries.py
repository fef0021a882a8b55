"""Read-model queries the pages and the API share (projections only, never the event store)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg.rows import class_row, dict_row
from psycopg_pool import AsyncConnectionPool

from projections.budget_dashboard import CARRIED
from projections.job_detail import STATEMENTS as DETAIL_STATEMENTS
from projections.job_detail import assemble
from projections.job_search import COLUMNS, JobPage, JobSearch, presented
from projections.queries import (
    ALL_METRICS,
    COUNT_EVENTS,
    PAGE_OF_EVENTS,
    PER_PAGE,
    THINNED_METRICS,
    EventPage,
    LoggedEvent,
    MetricPoint,
    event_filter,
)

JOB_COLUMNS = ("id, name, status, training_file, created_by, created_at, updated_at, preset, gpu_tier,"
               " estimated_cost_min, estimated_cost_max")
FILE_COLUMNS = ("id, name, status, file, stats, problems, problem_count, conversation_count, pair_count,"
                " avg_quality, active_jobs, registered_by, registered_at")


async def rows(pool: AsyncConnectionPool, query: str, params: tuple | dict[str, Any] = ()) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(query, params)
        return await cur.fetchall()


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


async def jobs_by_id(pool: AsyncConnectionPool, ids: list[UUID]) -> dict[UUID, dict[str, Any]]:
    """The jobs list's columns (projections/job_search.py) of each job found, by id."""
    found = await rows(pool, f"SELECT {COLUMNS} FROM jobs WHERE id = ANY(%(ids)s)",  # noqa: S608 - fixed columns
                       {"ids": ids, "now": datetime.now(timezone.utc)})
    return {row["id"]: row for row in found}


async def job_events(pool: AsyncConnectionPool, job_id: UUID, keyword: str | None, category: str | None,
                     page: int) -> EventPage:
    """projections.queries.job_events on the pool (same filters, order and page size); a page past
    the last shows the last."""
    where, params = event_filter(job_id, keyword, category)
    async with pool.connection() as conn:
        total = (await (await conn.execute(COUNT_EVENTS.format(where=where), params)).fetchone())[0]
        page = min(max(1, page), max(1, -(-total // PER_PAGE)))
        cur = conn.cursor(row_factory=class_row(LoggedEvent))
        events = await (await cur.execute(PAGE_OF_EVENTS.format(where=where),
                                          [*params, PER_PAGE, (page - 1) * PER_PAGE])).fetchall()
    return EventPage(events, total, page, PER_PAGE)


async def metric_history(pool: AsyncConnectionPool, job_id: UUID, max_points: int | None = None) -> list[MetricPoint]:
    """projections.queries.metric_history on the pool."""
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=class_row(MetricPoint))
        await cur.execute(THINNED_METRICS if max_points else ALL_METRICS, {"job": job_id, "max": max_points})
        return await cur.fetchall()


async def configured_hyperparameters(pool: AsyncConnectionPool, ids: list[UUID]) -> dict[UUID, dict[str, Any]]:
    """Each job's hyperparameters as last configured (the event log's TrainingJob.Configured)."""
    found = await rows(pool, "SELECT DISTINCT ON (job_id) job_id, payload -> 'hyperparameters' AS hyperparameters"
                             " FROM event_log WHERE job_id = ANY(%(ids)s) AND topic = 'TrainingJob.Configured'"
                             " ORDER BY job_id, notification_id DESC", {"ids": ids})
    return {row["job_id"]: row["hyperparameters"] or {} for row in found}


async def cost_minimums(pool: AsyncConnectionPool, ids: list[UUID]) -> dict[UUID, Decimal]:
    """The minimum of each job's cost estimate."""
    found = await rows(pool, "SELECT id, estimated_cost_min FROM jobs WHERE id = ANY(%s)", (ids,))
    return {row["id"]: row["estimated_cost_min"] for row in found}


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


async def choices(pool: AsyncConnectionPool) -> dict[str, list[str]]:
    """Creators, clients and projects seen in the jobs, for the jobs list's filter drop-downs."""
    found = await rows(pool, "SELECT array(SELECT DISTINCT created_by FROM jobs ORDER BY 1) AS creators,"
                             " array(SELECT DISTINCT client FROM jobs WHERE client IS NOT NULL ORDER BY 1) AS clients,"
                             " array(SELECT DISTINCT project FROM jobs WHERE project IS NOT NULL ORDER BY 1)"
                             " AS projects")
    return found[0]


async def job_statistics(pool: AsyncConnectionPool, search: JobSearch) -> dict[str, Any]:
    """FR5.2.1's panel over every job the list's filters match, in total and per creator."""
    totals, people, params = search.statistics()
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        total = await (await cur.execute(totals, params)).fetchone()
        each = await (await cur.execute(people, params)).fetchall()
    return {**outcome(total), "people": [{"name": p["created_by"], **outcome(p)} for p in each]}


def outcome(row: dict[str, Any]) -> dict[str, Any]:
    """Success rate = completed ÷ (completed + failed), as in the analytics: a cancellation is a
    decision, not a failure."""
    decided = row["completed"] + row["failed"]
    cost = Decimal(row["total_cost"])
    return {"jobs": row["jobs"], "completed": row["completed"], "failed": row["failed"],
            "cancelled": row["cancelled"], "active": row["active"], "queued": row["queued"],
            "success_rate": round(100 * row["completed"] / decided) if decided else None,
            "total_cost": cost, "average_cost": cost / row["jobs"] if row["jobs"] else None,
            "hours": (Decimal(row["seconds"]) / 3600).quantize(Decimal(1))}


# --- what the new-job and review pages need (FR1.1-FR1.3) ---------------------------------------

SPOT_HISTORY = """
SELECT count(*) FILTER (WHERE gpu_tier = 'spot' AND queued_at > now() - interval '30 days') AS spot_recent,
       count(*) FILTER (WHERE gpu_tier = 'spot' AND queued_at > now() - interval '30 days'
                        AND interruptions > 0) AS spot_interrupted,
       count(*) FILTER (WHERE gpu_tier = 'spot' AND status IN ('completed', 'failed')
                        AND created_at > now() - interval '90 days') AS spot_finished,
       count(*) FILTER (WHERE gpu_tier = 'spot' AND status = 'completed'
                        AND created_at > now() - interval '90 days') AS spot_completed,
       count(*) FILTER (WHERE status = 'completed') AS completed_jobs
FROM jobs"""
PRESET_HISTORY = """
SELECT preset, count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status IN ('completed', 'failed')) AS finished,
       avg(abs(cost - (estimated_cost_min + estimated_cost_max) / 2)
           / NULLIF((estimated_cost_min + estimated_cost_max) / 2, 0))
           FILTER (WHERE status = 'completed' AND created_at > now() - interval '90 days') AS error
FROM jobs WHERE preset IS NOT NULL GROUP BY preset"""


async def spot_history(pool: AsyncConnectionPool) -> dict[str, Any]:
    """Spot jobs started in the last 30 days (and how many were interrupted), finished in the last
    90 (and how many completed), and every completed job."""
    return (await rows(pool, SPOT_HISTORY))[0]


async def preset_history(pool: AsyncConnectionPool) -> list[dict[str, Any]]:
    """Per preset: jobs completed, finished, and the mean relative error of their estimates."""
    return await rows(pool, PRESET_HISTORY)


async def budget_row(pool: AsyncConnectionPool, budget_id: UUID) -> dict[str, Any] | None:
    """A month's budget with the number of its jobs still holding a reservation."""
    found = await rows(pool, "SELECT monthly_limit, grace_percent, spent, reserved, block_new_jobs,"
                             " (SELECT count(*) FROM budget_jobs"
                             " WHERE budget_id = %s AND outstanding > 0) AS active FROM budgets WHERE id = %s",
                       (budget_id, budget_id))
    return found[0] if found else None


async def carried_blocking(pool: AsyncConnectionPool, budget_ids: list[UUID]) -> bool:
    """"Block new jobs" of the latest of these budgets; blocking when there is none."""
    found = await rows(pool, CARRIED, {"ids": budget_ids})
    return found[0]["block_new_jobs"] if found else True


async def same_name_exists(pool: AsyncConnectionPool, created_by: str, name: str, other_than: UUID) -> bool:
    """Whether the person has another job of that name (any case)."""
    found = await rows(pool, "SELECT 1 FROM jobs WHERE created_by = %s AND lower(name) = lower(%s) AND id <> %s"
                             " LIMIT 1", (created_by, name, other_than))
    return bool(found)


async def labels(pool: AsyncConnectionPool) -> tuple[list[str], list[str]]:
    """Clients and projects already used, for the form's suggestions."""
    found = await rows(pool, "SELECT DISTINCT client, project FROM jobs"
                             " WHERE client IS NOT NULL OR project IS NOT NULL LIMIT 500")
    return sorted({r["client"] for r in found if r["client"]}), sorted({r["project"] for r in found if r["project"]})


async def started_jobs(pool: AsyncConnectionPool, created_by: str, other_than: UUID) -> int:
    found = await rows(pool, "SELECT count(*) AS n FROM jobs WHERE created_by = %s AND queued_at IS NOT NULL"
                             " AND id <> %s", (created_by, other_than))
    return found[0]["n"]


async def similar_job(pool: AsyncConnectionPool, created_by: str, other_than: UUID, preset: str,
                      file_name: str) -> dict[str, Any] | None:
    """The person's latest completed job with the same preset or file, to compare estimates."""
    found = await rows(pool, "SELECT name, cost, estimated_cost_min, estimated_cost_max FROM jobs WHERE created_by = %s"
                             " AND status = 'completed' AND id <> %s AND (preset = %s OR file_name = %s)"
                             " ORDER BY ended_at DESC NULLS LAST LIMIT 1",
                       (created_by, other_than, preset, file_name))
    return found[0] if found else None
