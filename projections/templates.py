"""Configuration templates read model (FR5.2.2): `templates` (one row per template) and
`template_jobs` (the jobs started from each). A template's analytics — usage count, success rate,
average cost, duration and final loss — are computed at read time from those jobs' rows in
`job_finance`, the same figures the analytics pages use (success rate = completed ÷ (completed +
failed): a cancellation is a decision, not the configuration's failure)."""

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from domain.aggregates.template import ConfigurationTemplate as T
from projections.base import Projection, event_topics
from projections.json import jsonb
from projections.pool import rows

SORTS = {"name": "lower(t.name)", "created": "t.created_at", "usage": "usage"}
STATS = (
    "count(tj.job_id) AS usage,"
    " count(*) FILTER (WHERE f.status = 'completed') AS completed,"
    " count(*) FILTER (WHERE f.status = 'failed') AS failed,"
    " avg(f.total_cost) FILTER (WHERE f.status = 'completed') AS average_cost,"
    " avg(extract(epoch FROM f.ended_at - f.started_at)) FILTER (WHERE f.status = 'completed') AS average_seconds,"
    " avg(l.loss) FILTER (WHERE f.status = 'completed' AND l.loss <> 'NaN') AS average_final_loss")
SELECT = ("SELECT t.id, t.name, t.description, t.preset, t.hyperparameters, t.overrides, t.gpu_tier, t.visibility,"
          " t.tags, t.created_by, t.source_job_id, t.created_at, t.updated_at, " + STATS +
          " FROM templates t LEFT JOIN template_jobs tj ON tj.template_id = t.id"
          " LEFT JOIN job_costs f ON f.job_id = tj.job_id LEFT JOIN LATERAL (SELECT COALESCE(f.final_loss,"
          " (SELECT m.loss FROM job_metrics m WHERE m.job_id = f.job_id ORDER BY m.step DESC LIMIT 1)) AS loss) l"
          " ON true")
VISIBLE = "NOT t.deleted AND (t.visibility = 'team' OR t.created_by = %(viewer)s)"
GROUP = " GROUP BY t.id"
JOBS_OF = ("SELECT tj.job_id AS id, COALESCE(f.name, '(on its way)') AS name, f.status, f.total_cost, tj.used_by,"
           " tj.used_at FROM template_jobs tj LEFT JOIN job_costs f ON f.job_id = tj.job_id WHERE tj.template_id = %s"
           " ORDER BY tj.used_at DESC, tj.job_id LIMIT %s")


class TemplatesProjection(Projection):
    name = "templates"
    applications = ("pipeline",)
    tables = ("templates", "template_jobs")
    topics = event_topics(T)
    subject = "events.ConfigurationTemplate.>"

    def version_of(self, cur: psycopg.Cursor, originator_id: UUID) -> int:
        row = cur.execute("SELECT version FROM templates WHERE id = %s FOR UPDATE", (originator_id,)).fetchone()
        return row[0] if row else 0

    @singledispatchmethod
    def apply(self, event: Any, cur: psycopg.Cursor) -> None:
        self._touch(cur, event)

    @apply.register
    def _created(self, event: T.Created, cur: psycopg.Cursor) -> None:
        cur.execute(
            "INSERT INTO templates (id, name, description, preset, hyperparameters, overrides, gpu_tier, visibility,"
            " tags, created_by, source_job_id, created_at, updated_at, version)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (event.originator_id, event.name, event.description, event.preset, jsonb(event.hyperparameters),
             jsonb(event.overrides), event.gpu_tier, event.visibility, jsonb(event.tags), event.created_by,
             event.source_job_id, event.at, event.at, event.originator_version))

    @apply.register
    def _edited(self, event: T.Edited, cur: psycopg.Cursor) -> None:
        cur.execute("UPDATE templates SET description = %s, tags = %s, visibility = %s, updated_at = %s, version = %s"
                    " WHERE id = %s", (event.description, jsonb(event.tags), event.visibility, event.at,
                                       event.originator_version, event.originator_id))

    @apply.register
    def _used(self, event: T.Used, cur: psycopg.Cursor) -> None:
        cur.execute("INSERT INTO template_jobs (template_id, job_id, used_by, used_at) VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT DO NOTHING", (event.originator_id, event.job_id, event.actor, event.at))
        self._touch(cur, event)

    @apply.register
    def _deleted(self, event: T.Deleted, cur: psycopg.Cursor) -> None:
        cur.execute("UPDATE templates SET deleted = true, updated_at = %s, version = %s WHERE id = %s",
                    (event.at, event.originator_version, event.originator_id))

    @staticmethod
    def _touch(cur: psycopg.Cursor, event: Any) -> None:
        cur.execute("UPDATE templates SET version = %s WHERE id = %s", (event.originator_version, event.originator_id))


def list_query(viewer: str | None, *, creator: str | None = None, tag: str | None = None,
               visibility: str | None = None, sort: str = "name", descending: bool = False,
               template_id: UUID | None = None) -> tuple[str, dict[str, Any]]:
    """The templates `viewer` may see (None: every template not deleted, for the command line),
    filtered and sorted (FR5.2.2: by name, created date or usage count), each with its analytics."""
    where = [VISIBLE if viewer is not None else "NOT t.deleted"]
    params: dict[str, Any] = {"viewer": viewer, "creator": creator, "tag": tag, "visibility": visibility,
                              "id": template_id}
    for value, clause in ((creator, "t.created_by = %(creator)s"), (tag, "t.tags ? %(tag)s"),
                          (visibility, "t.visibility = %(visibility)s"), (template_id, "t.id = %(id)s")):
        if value:
            where.append(clause)
    order = f"{SORTS.get(sort, SORTS['name'])} {'DESC' if descending else 'ASC'}, lower(t.name), t.id"
    return f"{SELECT} WHERE {' AND '.join(where)}{GROUP} ORDER BY {order}", params


async def list_templates(pool: AsyncConnectionPool, viewer: str, **filters: Any) -> list[dict[str, Any]]:
    return [with_rates(r) for r in await rows(pool, *list_query(viewer, **filters))]


async def get_template(pool: AsyncConnectionPool, template_id: UUID, viewer: str) -> dict[str, Any] | None:
    found = await list_templates(pool, viewer, template_id=template_id)
    return found[0] if found else None


def templates_now(conn: psycopg.Connection, viewer: str | None = None, **filters: Any) -> list[dict[str, Any]]:
    """`list_query` on a plain connection (the command line)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return [with_rates(r) for r in cur.execute(*list_query(viewer, **filters)).fetchall()]


def template_jobs_now(conn: psycopg.Connection, template_id: UUID, limit: int = 20) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(JOBS_OF, (template_id, limit)).fetchall()


async def template_jobs(pool: AsyncConnectionPool, template_id: UUID, limit: int = 20) -> list[dict[str, Any]]:
    """The latest jobs started from the template, with their outcome and cost."""
    return await rows(pool, JOBS_OF, (template_id, limit))


async def template_filters(pool: AsyncConnectionPool, viewer: str) -> dict[str, list[str]]:
    """The creators and tags of the visible templates, for the library's filters."""
    found = await rows(pool, "SELECT array(SELECT DISTINCT t.created_by FROM templates t WHERE"
                             f" {VISIBLE} ORDER BY 1) AS creators, array(SELECT DISTINCT tag FROM templates t,"
                             f" jsonb_array_elements_text(t.tags) tag WHERE {VISIBLE} ORDER BY 1) AS tags",
                       {"viewer": viewer})
    return {"creators": list(found[0]["creators"]), "tags": list(found[0]["tags"])}


async def configuration_outcomes(pool: AsyncConnectionPool, preset: str, gpu_tier: str) -> tuple[int, int]:
    """(completed, failed) of the team's jobs with this preset on this GPU tier: the success rate
    "Save as Template" needs above 90% (FR5.2.2)."""
    found = await rows(pool, "SELECT count(*) FILTER (WHERE status = 'completed') AS completed,"
                             " count(*) FILTER (WHERE status = 'failed') AS failed FROM job_costs"
                             " WHERE preset = %s AND gpu_tier = %s", (preset, gpu_tier))
    return int(found[0]["completed"]), int(found[0]["failed"])


def with_rates(row: dict[str, Any]) -> dict[str, Any]:
    decided = row["completed"] + row["failed"]
    row["success_rate"] = round(100 * row["completed"] / decided) if decided else None
    row["average_hours"] = float(row.pop("average_seconds")) / 3600 if row["average_seconds"] is not None else None
    return row
