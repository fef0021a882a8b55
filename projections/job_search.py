"""The jobs list (FR2.3.1) over the `jobs` read model: filters, full-text search over name,
description, tags and notes, a whitelisted sort, pages, and its statistics panel (FR5.2.1).
`search_jobs` runs it on a connection; `find_jobs` runs the same statements
(`JobSearch.statements`) on the web process's async pool."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from domain.job_status import ACTIVE, JobStatus
from domain.money import cents
from projections import job_quality as quality
from projections.pool import rows

PER_PAGE = 25  # FR2.3.1: 25, 50 or 100 per page
MAX_PER_PAGE = 200
MAX_PAGE = 1_000_000
MAX_COST = Decimal(10**9)  # dollars: a cost filter beyond it matches nothing PostgreSQL could compare
# FR2.3.1's status filter takes statuses, or these groups of them.
STATUS_GROUPS = {"active": sorted(ACTIVE), "waiting": [JobStatus.QUEUED, JobStatus.QUEUED_WAITING_FOR_GPU]}
# Spend so far: the ledger's total at `cost_as_of`, and the pods still running since then.
COST = ("(cost + COALESCE(running_rate * GREATEST(EXTRACT(EPOCH FROM (%(now)s - cost_as_of)), 0) / 3600, 0))")
DURATION = "round(EXTRACT(EPOCH FROM (COALESCE(ended_at, %(now)s) - started_at)), 1)"  # seconds, to the tenth
SORTS = {
    "created_at": "created_at", "started_at": "started_at", "ended_at": "ended_at", "queued_at": "queued_at",
    "duration": DURATION, "cost": COST, "status": "status", "created_by": "created_by", "name": "lower(name)",
    "preset": "preset", "gpu_tier": "gpu_tier", "progress": "progress_percent", "interruptions": "interruptions",
    "relevance": "ts_rank(search, to_tsquery('simple', %(query)s))",
    "perplexity_improvement": "perplexity_improvement", "retention": "retention_percent",
}
# A draft discarded at review (cancelled before it was ever queued): no run, no charge, so not a
# cancelled job in the statistics; the list shows it as a discarded draft (the `discarded` column).
DISCARDED = "(status = 'cancelled' AND queued_at IS NULL)"
COLUMNS = (
    "id, name, status, training_file, created_by, created_at, updated_at, preset, gpu_tier, estimated_cost_min,"
    " estimated_cost_max, queued_at, promoted_at, awaiting_gpu_decision, file_name, description, tags, client,"
    " project, jsonb_array_length(notes) AS note_count, retry_of, retry_number, resumed_from, gpu_type, hourly_rate,"
    " estimated_duration_hours, attempt, started_at, ended_at, step, total_steps, progress_percent, epoch, loss,"
    " validation_loss, final_loss, checkpoint_step, interruptions, downtime_seconds, failure_type, failure_message,"
    f" {COST} AS cost_so_far, {DURATION} AS duration_seconds, {DISCARDED} AS discarded, {quality.LIST_COLUMNS}")
# FR5.2.1's statistics panel: outcomes, spend so far and training time (first pod to the end, or now).
OUTCOMES = (
    "count(*) AS jobs, count(*) FILTER (WHERE status = 'completed') AS completed,"
    " count(*) FILTER (WHERE status = 'failed') AS failed,"
    f" count(*) FILTER (WHERE status = 'cancelled' AND NOT {DISCARDED}) AS cancelled,"
    f" count(*) FILTER (WHERE {DISCARDED}) AS discarded,"
    " count(*) FILTER (WHERE status = ANY(%(active)s)) AS active, count(*) FILTER (WHERE status = 'queued') AS queued,"
    f" COALESCE(sum({COST}), 0) AS total_cost,"
    f" COALESCE(sum({DURATION}) FILTER (WHERE started_at IS NOT NULL), 0) AS seconds")


@dataclass(frozen=True)
class JobPage:
    jobs: list[dict[str, Any]]
    total: int  # jobs matching the filters, on every page
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class JobSearch:
    """The filters (all optional, combined with AND), the sort and the page. `status`: statuses or
    groups (any of them); `tags`: all of them; `text`: every word, as a prefix, in the name,
    description, tags or notes; `created_from` inclusive, `created_to` exclusive."""

    status: Sequence[str] = ()
    preset: str | None = None
    gpu_tier: str | None = None
    created_by: str | None = None
    client: str | None = None
    project: str | None = None
    tags: Sequence[str] = ()
    text: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    cost_from: Decimal | None = None
    cost_to: Decimal | None = None
    quality: str | None = None  # the gate's outcome (projections/job_quality.py QUALITY_FILTERS)
    ids: Sequence[UUID] = ()  # only these jobs (the list's selection, exported)
    sort: str = "created_at"
    descending: bool = True
    page: int = 1
    per_page: int = PER_PAGE
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise ValueError(f"unknown sort {self.sort!r}; known: {', '.join(SORTS)}")
        if self.sort == "relevance" and not self.words():
            raise ValueError("sorting by relevance needs a search text")
        known = {s.value for s in JobStatus} | set(STATUS_GROUPS)
        if unknown := sorted(set(self.status) - known):
            raise ValueError(f"unknown status {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        quality.check_quality_filter(self.quality)
        if not 1 <= self.per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page must be between 1 and {MAX_PER_PAGE}")
        if not 1 <= self.page <= MAX_PAGE:
            raise ValueError(f"page must be between 1 and {MAX_PAGE:,}")
        for name in ("cost_from", "cost_to"):
            cost = getattr(self, name)
            if cost is not None and not (cost.is_finite() and 0 <= cost < MAX_COST):
                raise ValueError(f"{name} must be an amount in dollars from 0 to under {MAX_COST:,} (got {cost})")

    def words(self) -> list[str]:
        return re.findall(r"\w+", self.text or "")

    def statements(self) -> tuple[str, str, dict[str, Any]]:
        """(count query, page query, parameters)."""
        where, params = self.where()
        direction = "DESC" if self.descending else "ASC"
        order = f"{SORTS[self.sort]} {direction} NULLS LAST, id"
        count = f"SELECT count(*) AS total FROM jobs WHERE {where}"  # noqa: S608 - built from fixed fragments
        rows = (f"SELECT {COLUMNS} FROM jobs WHERE {where} ORDER BY {order}"  # noqa: S608
                " LIMIT %(limit)s OFFSET %(offset)s")
        return count, rows, params | {"limit": self.per_page, "offset": (self.page - 1) * self.per_page}

    def statistics(self) -> tuple[str, str, dict[str, Any]]:
        """(totals query, per-creator query, parameters) over every matching job, not one page."""
        where, params = self.where()
        totals = f"SELECT {OUTCOMES} FROM jobs WHERE {where}"  # noqa: S608 - built from fixed fragments
        people = (f"SELECT created_by, {OUTCOMES} FROM jobs WHERE {where} GROUP BY created_by"  # noqa: S608
                  " ORDER BY count(*) DESC, created_by LIMIT 20")
        return totals, people, params | {"active": [s.value for s in ACTIVE]}

    def where(self) -> tuple[str, dict[str, Any]]:
        statuses = [s for value in self.status for s in STATUS_GROUPS.get(value, [value])]
        params: dict[str, Any] = {
            "now": self.now, "statuses": [str(s) for s in statuses], "preset": self.preset, "gpu_tier": self.gpu_tier,
            "created_by": self.created_by, "client": self.client, "project": self.project,
            "tags": Jsonb(list(self.tags)), "query": " & ".join(f"{w}:*" for w in self.words()),
            "created_from": self.created_from, "created_to": self.created_to, "cost_from": self.cost_from,
            "cost_to": self.cost_to, "ids": list(self.ids)}
        tests = {"statuses": "status = ANY(%(statuses)s)", "preset": "preset = %(preset)s",
                 "gpu_tier": "gpu_tier = %(gpu_tier)s", "created_by": "created_by = %(created_by)s",
                 "client": "client = %(client)s", "project": "project = %(project)s", "tags": "tags @> %(tags)s",
                 "query": "search @@ to_tsquery('simple', %(query)s)",
                 "created_from": "created_at >= %(created_from)s", "created_to": "created_at < %(created_to)s",
                 "cost_from": f"{COST} >= %(cost_from)s", "cost_to": f"{COST} < %(cost_to)s",
                 "ids": "id = ANY(%(ids)s)"}
        given = {"statuses": statuses, "tags": self.tags, "query": self.words(), "ids": self.ids}
        where = [test for name, test in tests.items() if (given[name] if name in given else params[name] is not None)]
        if self.quality:
            where.append(quality.QUALITY_FILTERS[self.quality])
        return " AND ".join(where) or "true", params


def search_jobs(conn: psycopg.Connection, *, status: str | Sequence[str] | None = None, preset: str | None = None,
                gpu_tier: str | None = None, created_by: str | None = None, client: str | None = None,
                project: str | None = None, tags: Sequence[str] | None = None, text: str | None = None,
                created_from: datetime | None = None, created_to: datetime | None = None,
                cost_from: Decimal | None = None, cost_to: Decimal | None = None, sort: str = "created_at",
                descending: bool = True, page: int = 1, per_page: int = PER_PAGE,
                now: datetime | None = None) -> JobPage:
    """One page of the jobs list and the number of jobs matching. Raises ValueError for an
    unknown sort key or status, or a page out of range."""
    search = JobSearch(
        status=[status] if isinstance(status, str) else tuple(status or ()), preset=preset, gpu_tier=gpu_tier,
        created_by=created_by, client=client, project=project, tags=tuple(tags or ()), text=text,
        created_from=created_from, created_to=created_to, cost_from=cost_from, cost_to=cost_to, sort=sort,
        descending=descending, page=page, per_page=per_page, now=now or datetime.now(timezone.utc))
    count, page_query, params = search.statements()
    with conn.cursor(row_factory=dict_row) as cur:
        total = cur.execute(count, params).fetchone()["total"]
        jobs = [presented(row) for row in cur.execute(page_query, params).fetchall()]
    return JobPage(jobs, total, search.page, search.per_page)


def presented(row: dict[str, Any]) -> dict[str, Any]:
    """Spend to the cent (half-even, for display); sorting and filters used the exact amount."""
    return row | {"cost_so_far": cents(row["cost_so_far"])}


async def find_jobs(pool: AsyncConnectionPool, search: JobSearch) -> JobPage:
    """The jobs list (FR2.3.1) on the async pool: one page and the number of jobs matching."""
    count, page, params = search.statements()
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        total = (await (await cur.execute(count, params)).fetchone())["total"]
        jobs = [presented(row) for row in await (await cur.execute(page, params)).fetchall()]
    return JobPage(jobs, total, search.page, search.per_page)


async def jobs_by_id(pool: AsyncConnectionPool, ids: list[UUID]) -> dict[UUID, dict[str, Any]]:
    """The jobs list's columns of each job found, by id."""
    found = await rows(pool, f"SELECT {COLUMNS} FROM jobs WHERE id = ANY(%(ids)s)",  # noqa: S608 - fixed columns
                       {"ids": ids, "now": datetime.now(timezone.utc)})
    return {row["id"]: row for row in found}


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
            "cancelled": row["cancelled"], "discarded": row["discarded"], "active": row["active"],
            "queued": row["queued"],
            "success_rate": round(100 * row["completed"] / decided) if decided else None,
            "total_cost": cost, "average_cost": cost / row["jobs"] if row["jobs"] else None,
            "hours": (Decimal(row["seconds"]) / 3600).quantize(Decimal(1))}
