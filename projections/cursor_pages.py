"""Cursor pages over the read models (what the OpenAI-compatible API lists: web/openai_api/): jobs
newest first, filtered by labels; catalogued files; a job's event log and checkpoints newest first.
A page is the items strictly after the cursor's item in the list's order, at most `limit`, and
whether more remain (one more row is read to know)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from projections.pool import rows

JOB_COLUMNS = ("id, name, status, training_file, created_by, created_at, ended_at, preset, gpu_tier,"
               " estimated_cost_min, estimated_cost_max, estimated_duration_hours, queued_at, cost, cost_as_of,"
               " running_rate, interruptions, step, total_steps, failure_type, failure_message, labels, suffix,"
               " base_model, validation_file")
FILE_COLUMNS = "id, name, status, file, stats, problems, problem_count, registered_at"


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    has_more: bool


def _page(found: list[dict[str, Any]], limit: int) -> Page:
    return Page(found[:limit], len(found) > limit)


async def job_row(pool: AsyncConnectionPool, job_id: UUID) -> dict[str, Any] | None:
    found = await rows(pool, f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = %s", (job_id,))  # noqa: S608 - fixed names
    return found[0] if found else None


async def jobs_page(pool: AsyncConnectionPool, *, after: UUID | None, limit: int,
                    labels: dict[str, str] | None = None, unlabelled: bool = False) -> Page | None:
    """Jobs newest first (creation time, then id); `labels`: jobs having all of these pairs;
    `unlabelled`: jobs without any. None when `after` names no job."""
    where, params = ["true"], {"limit": limit + 1, "labels": Jsonb(labels or {})}
    if labels:
        where.append("labels @> %(labels)s")
    if unlabelled:
        where.append("labels = '{}'::jsonb")
    if after is not None:
        cursor = await rows(pool, "SELECT created_at, id FROM jobs WHERE id = %s", (after,))
        if not cursor:
            return None
        where.append("(created_at, id) < (%(at)s, %(id)s)")
        params |= {"at": cursor[0]["created_at"], "id": after}
    found = await rows(pool, f"SELECT {JOB_COLUMNS} FROM jobs WHERE {' AND '.join(where)}"  # noqa: S608 - fixed
                             " ORDER BY created_at DESC, id DESC LIMIT %(limit)s", params)
    return _page(found, limit)


async def completion_metrics(pool: AsyncConnectionPool, job_ids: list[UUID]) -> dict[UUID, dict[str, Any]]:
    """Each completed job's final metrics (its Completed event in the event log)."""
    found = await rows(pool, "SELECT job_id, payload -> 'metrics' AS metrics FROM event_log"
                             " WHERE job_id = ANY(%s) AND topic = 'TrainingJob.Completed'", (job_ids,))
    return {row["job_id"]: row["metrics"] or {} for row in found}


async def files_page(pool: AsyncConnectionPool, *, after: UUID | None, limit: int, ascending: bool = False
                     ) -> Page | None:
    """Catalogued files by registration time (newest first unless `ascending`). None when `after`
    names no file."""
    order, compare = ("ASC", ">") if ascending else ("DESC", "<")
    where, params = "true", {"limit": limit + 1}
    if after is not None:
        cursor = await rows(pool, "SELECT registered_at, id FROM training_files WHERE id = %s", (after,))
        if not cursor:
            return None
        where = f"(registered_at, id) {compare} (%(at)s, %(id)s)"
        params |= {"at": cursor[0]["registered_at"], "id": after}
    found = await rows(pool, f"SELECT {FILE_COLUMNS} FROM training_files WHERE {where}"  # noqa: S608 - fixed
                             f" ORDER BY registered_at {order}, id {order} LIMIT %(limit)s", params)
    return _page(found, limit)


async def events_page(pool: AsyncConnectionPool, job_id: UUID, *, after: int | None, limit: int) -> Page:
    """The job's event log (its own events and the budget's about it), newest first; `after`: a
    notification id."""
    found = await rows(pool, "SELECT notification_id, at, topic, category, message, payload FROM event_log"
                             " WHERE job_id = %(job)s AND (%(after)s::bigint IS NULL OR notification_id < %(after)s)"
                             " ORDER BY notification_id DESC LIMIT %(limit)s",
                       {"job": job_id, "after": after, "limit": limit + 1})
    return _page(found, limit)


async def checkpoints_page(pool: AsyncConnectionPool, job_id: UUID, *, after: int | None, limit: int) -> Page:
    """The job's saved checkpoints newest first, each with the training and validation loss the
    metric history has at its step; `after`: a notification id."""
    found = await rows(pool, "SELECT c.notification_id, c.at, (c.payload ->> 'step')::integer AS step,"
                             " m.loss, m.eval_loss FROM event_log c"
                             " LEFT JOIN job_metrics m ON m.job_id = c.job_id"
                             " AND m.step = (c.payload ->> 'step')::integer"
                             " WHERE c.job_id = %(job)s AND c.topic = 'TrainingJob.CheckpointSaved'"
                             " AND (%(after)s::bigint IS NULL OR c.notification_id < %(after)s)"
                             " ORDER BY c.notification_id DESC LIMIT %(limit)s",
                       {"job": job_id, "after": after, "limit": limit + 1})
    return _page(found, limit)
