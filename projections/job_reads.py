"""Small reads of the jobs read model (projections/jobs.py) that the pages and the API share, on the
web process's async pool: a job's row, the queue, counts and names, the history the new-job and
review pages show (FR1.1-FR1.3), and which jobs still need their owner's action; and, on a
connection, the jobs in given states (the notifier's digest). The jobs list and the job detail are
in job_search.py and job_detail.py."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from domain.job_status import ACTIVE
from projections.jobs import active_jobs, queued_jobs
from projections.pool import rows

JOB_COLUMNS = ("id, name, status, training_file, created_by, created_at, updated_at, preset, gpu_tier,"
               " estimated_cost_min, estimated_cost_max")


async def get_job(pool: AsyncConnectionPool, job_id: UUID) -> dict[str, Any] | None:
    found = await rows(pool, f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = %s", (job_id,))
    return found[0] if found else None


async def queue(pool: AsyncConnectionPool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(active, queued): the ids of the jobs holding (or getting) a GPU, and the queued jobs' rows
    in the order they will get one (FR2.3.2)."""
    active = await rows(pool, *active_jobs())
    queued = await rows(pool, queued_jobs(f"{JOB_COLUMNS}, queued_at, promoted_at"))
    return active, queued


async def cost_minimums(pool: AsyncConnectionPool, ids: list[UUID]) -> dict[UUID, Decimal]:
    """The minimum of each job's cost estimate."""
    found = await rows(pool, "SELECT id, estimated_cost_min FROM jobs WHERE id = ANY(%s)", (ids,))
    return {row["id"]: row["estimated_cost_min"] for row in found}


async def successful_jobs(pool: AsyncConnectionPool, user: str) -> int:
    found = await rows(pool, "SELECT count(*) AS n FROM jobs WHERE created_by = %s AND status = 'completed'", (user,))
    return int(found[0]["n"])


async def queue_load(pool: AsyncConnectionPool) -> tuple[int, int]:
    """(active, queued) jobs: active ones hold or are getting a pod."""
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


async def needing_action(pool: AsyncConnectionPool, ids: list[UUID]) -> dict[UUID, dict[str, Any]]:
    """Of these jobs, each one's `name` and whether it still waits on its owner: `blocked` (completed,
    its adapter held back by the quality gate and not released) and `awaiting_gpu_decision`."""
    found = await rows(pool, "SELECT id, name, status = 'completed' AND quality_outcome = 'block'"
                             " AND NOT quality_overridden AS blocked, awaiting_gpu_decision FROM jobs"
                             " WHERE id = ANY(%s)", (ids,))
    return {row["id"]: row for row in found}


def jobs_in(conn: psycopg.Connection, statuses: Iterable[str]) -> list[dict[str, Any]]:
    """The jobs in `statuses`, oldest first: their progress and owner."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT id, name, status, step, total_steps, created_by FROM jobs WHERE status = ANY(%s)"
                           " ORDER BY created_at, id", ([str(s) for s in statuses],)).fetchall()
