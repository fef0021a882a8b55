"""The job detail (FR2.1.1, FR2.1.2, FR3.2.1): progress, the stage timeline, the cost tracker,
interruptions and the jobs retried or resumed from this one, from the jobs read model.
`job_detail` runs it on a connection; `read_detail` runs the same `STATEMENTS` on the web
process's async pool, and `read_job` adds the metric, event and cost figures the job page's cards
show, in one round trip."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from domain.cost_ledger import PodLifetime, ledger, seconds_between
from domain.money import cents
from projections import job_quality as quality
from projections.job_search import COLUMNS

STATEMENTS = {
    "job": f"SELECT {COLUMNS}, notes, cost, cost_as_of, running_rate, cancellation, version AS row_version,"  # noqa: S608
           f" {quality.DETAIL_COLUMNS}"
           " FROM jobs WHERE id = %(id)s",
    "stages": "SELECT attempt, stage, started_at, ended_at, outcome, estimated_seconds FROM job_stages"
              " WHERE job_id = %(id)s ORDER BY started_at, attempt, stage",
    "interruptions": "SELECT number, attempt, step, reason, at, recovery_started_at, recovery_attempt,"
                     " checkpoint_step, resumed_at, downtime_seconds FROM job_interruptions"
                     " WHERE job_id = %(id)s ORDER BY number",
    "links": "SELECT id, name, status, created_at, retry_number, CASE WHEN retry_of = %(id)s THEN 'retry'"
             " ELSE 'resume' END AS relation FROM jobs WHERE retry_of = %(id)s OR resumed_from = %(id)s"
             " ORDER BY created_at, id",
}


def job_detail(conn: psycopg.Connection, job_id: UUID, now: datetime | None = None) -> dict[str, Any] | None:
    """Everything the detail page shows of one job, None if the read model has no such job."""
    with conn.cursor(row_factory=dict_row) as cur:
        found = {name: cur.execute(query, {"id": job_id, "now": now or datetime.now(timezone.utc)}).fetchall()
                 for name, query in STATEMENTS.items()}
    return assemble(found, now or datetime.now(timezone.utc))


async def read_detail(pool: AsyncConnectionPool, job_id: UUID) -> dict[str, Any] | None:
    """`job_detail` on the async pool."""
    now = datetime.now(timezone.utc)
    found = {}
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        for name, query in STATEMENTS.items():
            found[name] = await (await cur.execute(query, {"id": job_id, "now": now})).fetchall()
    return assemble(found, now)


# What the job page's cards show beside the detail: the metric history's latest rows, the event
# log's size, the latest data measurement (the sequence length and what it cut) and the cost breakdown's redone work.
CARD_STATEMENTS = {
    "latest": "SELECT step, loss, learning_rate, tokens_per_s, gpu_util, gpu_memory_gb, token_efficiency,"
              " step_time_s, gpu_peak_memory_gb, at FROM job_metrics"
              " WHERE job_id = %(id)s AND loss IS NOT NULL ORDER BY step DESC LIMIT 2",
    "evals": "SELECT step, eval_loss, perplexity FROM job_metrics WHERE job_id = %(id)s AND eval_loss IS NOT NULL"
             " ORDER BY step DESC LIMIT 2",
    "first": "SELECT step, at, loss FROM job_metrics WHERE job_id = %(id)s ORDER BY step LIMIT 1",
    "event_count": "SELECT count(*) AS n FROM event_log WHERE job_id = %(id)s",
    "data": "SELECT payload FROM event_log WHERE job_id = %(id)s AND topic = 'TrainingJob.DataMeasured'"
            " ORDER BY notification_id DESC LIMIT 1",
    "breakdown": "SELECT lost_cost, interruptions, setup_cost, setup_seconds, download_cost, download_seconds,"
                 " billed_cost, billed_pods, total_cost FROM job_costs WHERE job_id = %(id)s",
}


async def read_job(pool: AsyncConnectionPool, job_id: UUID, now: datetime) -> dict[str, Any] | None:
    """The detail with `metric_rows` (latest, evals, first), `event_count` and `breakdown`, in one
    connection checkout and one round trip (psycopg pipeline mode); None when the job is not in
    the read model."""
    found = await pipelined(pool, {**STATEMENTS, **CARD_STATEMENTS}, {"id": job_id, "now": now})
    detail = assemble({name: found[name] for name in STATEMENTS}, now)
    if detail is None:
        return None
    return detail | {"metric_rows": {name: found[name] for name in ("latest", "evals", "first")},
                     "event_count": found["event_count"][0]["n"],
                     "data_measured": found["data"][0]["payload"] if found["data"] else None,
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


def assemble(found: dict[str, list[dict[str, Any]]], now: datetime) -> dict[str, Any] | None:
    if not found["job"]:
        return None
    job = dict(found["job"][0])
    spend = spend_at(job.pop("cost"), job.pop("cost_as_of"), job.pop("running_rate"), now)
    job["cost_so_far"] = cents(spend)
    end = job["ended_at"] or now
    return {"job": job, "progress": progress(job, now), "stages": [stage(s, end) for s in found["stages"]],
            "cost": cost_tracker(job, spend), "interruptions": found["interruptions"], "retries": found["links"]}


def spend_at(cost: Decimal, cost_as_of: datetime | None, running_rate: Decimal, now: datetime) -> Decimal:
    """The ledger's total at `cost_as_of`, plus what the pods still running cost since (the ledger
    of one pod at their combined rate)."""
    if cost_as_of is None or not running_rate:
        return cost
    return cost + ledger((PodLifetime("running", running_rate, cost_as_of),), max(now, cost_as_of)).total_cost


def progress(job: dict[str, Any], now: datetime) -> dict[str, Any]:
    """FR2.1.1: percent of steps; elapsed since the first pod started; remaining at the average
    speed so far (elapsed / steps done × steps left)."""
    elapsed = seconds_between(job["started_at"], job["ended_at"] or now) if job["started_at"] else None
    step, total = job["step"], job["total_steps"]
    remaining = None
    if elapsed is not None and step and total and not job["ended_at"]:
        remaining = elapsed / step * max(total - step, 0)
    return {"step": step, "total_steps": total, "percent": job["progress_percent"], "epoch": job["epoch"],
            "stage": job["status"], "elapsed_seconds": elapsed, "remaining_seconds": remaining}


def stage(row: dict[str, Any], end: datetime) -> dict[str, Any]:
    """A stage with its actual duration (so far, while it runs)."""
    return row | {"actual_seconds": seconds_between(row["started_at"], row["ended_at"] or end)}


def cost_tracker(job: dict[str, Any], spend: Decimal) -> dict[str, Any]:
    """FR2.1.1's cost card: spend against the estimate's maximum, and the final cost projected
    from the share of steps done (spend / progress); amounts to the cent for display."""
    estimate = job["estimated_cost_max"]
    done = Decimal(job["progress_percent"] or 0) / 100
    projected = spend if job["ended_at"] else (spend / done if done else None)
    return {"estimated_cost_min": job["estimated_cost_min"], "estimated_cost_max": estimate,
            "hourly_rate": job["hourly_rate"], "gpu_tier": job["gpu_tier"], "current_spend": cents(spend),
            "percent_of_estimate": (spend / estimate * 100).quantize(Decimal("0.1")) if estimate else None,
            "projected_final_cost": cents(projected) if projected is not None else None}
