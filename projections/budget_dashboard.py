"""One budget month as the dashboard shows it (FR7.2.1, FR7.2.2): summary, daily accumulation in
the team's time zone, per-job breakdown, thresholds and decisions. Cents add up: the days and the
jobs are apportioned from the month's spend."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from itertools import accumulate
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from domain.aggregates.budget import Budget
from domain.budget_month import earlier_months
from domain.job_status import TERMINAL, JobStatus
from domain.money import cents
from projections.finance import apportion, percent
from projections.pool import rows


def budget_dashboard(conn: psycopg.Connection, team: str, month: str, time_zone: str) -> dict[str, Any] | None:
    """None when the month has no budget yet (nothing was started in it)."""
    budget_id = Budget.id_for(team, month)
    with conn.cursor(row_factory=dict_row) as cur:
        budget = cur.execute("SELECT * FROM budgets WHERE id = %s", (budget_id,)).fetchone()
        if budget is None:
            return None
        days = cur.execute("SELECT (at AT TIME ZONE %s)::date AS day, sum(amount) AS spend FROM budget_spend"
                           " WHERE budget_id = %s GROUP BY 1 ORDER BY 1", (time_zone, budget_id)).fetchall()
        jobs = cur.execute(
            "SELECT j.job_id, c.name, c.status, c.created_by, j.reserved, j.outstanding, j.spent, j.released,"
            " j.overridden, j.over_limit, j.reserved_at FROM budget_jobs j LEFT JOIN job_costs c ON c.job_id = j.job_id"
            " WHERE j.budget_id = %s ORDER BY j.spent DESC, j.reserved_at, j.job_id", (budget_id,)).fetchall()
        thresholds = cur.execute("SELECT percent, spent, monthly_limit AS limit, at FROM budget_thresholds"
                                 " WHERE budget_id = %s ORDER BY percent", (budget_id,)).fetchall()
        decisions = cur.execute(
            "SELECT kind, job_id, request_id, amount, over_by, old_limit, new_limit, actor, justification, at"
            " FROM budget_decisions WHERE budget_id = %s ORDER BY version", (budget_id,)).fetchall()
    return {"summary": summary(budget, jobs), "daily": daily(days), "jobs": breakdown(jobs, budget["monthly_limit"]),
            "thresholds": in_cents(thresholds, "spent", "limit"), "overrun": overrun(budget),
            "decisions": in_cents(decisions, "amount", "over_by", "old_limit", "new_limit")}


def in_cents(rows: list[dict[str, Any]], *money: str) -> list[dict[str, Any]]:
    """The rows with their exact amounts (per-second spend) rounded to the cent, as they are shown."""
    return [row | {name: cents(row[name]) for name in money if row[name] is not None} for row in rows]


def blocks_new_jobs(conn: psycopg.Connection, team: str, month: str) -> bool:
    """The month's "Block new jobs" setting; a month without a budget yet gets the one of the latest
    budget in the year before it (what the domain carries over when the month is opened)."""
    months = [month, *earlier_months(month)]
    row = conn.execute(CARRIED, {"ids": [Budget.id_for(team, m) for m in months]}).fetchone()
    return row[0] if row else True


# The setting of the latest of these budgets (months sort as text).
CARRIED = "SELECT block_new_jobs FROM budgets WHERE id = ANY(%(ids)s) ORDER BY month DESC LIMIT 1"


async def carried_blocking(pool: AsyncConnectionPool, budget_ids: list[UUID]) -> bool:
    """"Block new jobs" of the latest of these budgets; blocking when there is none."""
    found = await rows(pool, CARRIED, {"ids": budget_ids})
    return found[0]["block_new_jobs"] if found else True


async def budget_row(pool: AsyncConnectionPool, budget_id: UUID) -> dict[str, Any] | None:
    """A month's budget with the number of its jobs still holding a reservation."""
    found = await rows(pool, "SELECT monthly_limit, grace_percent, spent, reserved, block_new_jobs,"
                             " (SELECT count(*) FROM budget_jobs"
                             " WHERE budget_id = %s AND outstanding > 0) AS active FROM budgets WHERE id = %s",
                       (budget_id, budget_id))
    return found[0] if found else None


def overrun(budget: dict[str, Any]) -> dict[str, Any] | None:
    """When the month's spend and its active jobs' reservations first passed the limit (FR7.2.2)."""
    if budget["overrun_at"] is None:
        return None
    spent, reserved, limit = budget["overrun_spent"], budget["overrun_reserved"], budget["overrun_limit"]
    return {"at": budget["overrun_at"], "spent": cents(spent), "reserved": cents(reserved), "limit": cents(limit),
            "active_jobs": budget["overrun_active_jobs"], "over_by": cents(spent + reserved - limit)}


def summary(budget: dict[str, Any], jobs: list[dict[str, Any]]) -> dict[str, Any]:
    limit, spent, reserved = cents(budget["monthly_limit"]), cents(budget["spent"]), cents(budget["reserved"])
    statuses = [job["status"] for job in jobs]
    ended = {s.value for s in TERMINAL}
    return {
        "team": budget["team"], "month": budget["month"], "limit": limit, "grace_percent": budget["grace_percent"],
        "spent": spent, "reserved": reserved, "forecast": spent + reserved, "remaining": limit - spent - reserved,
        "utilisation_percent": percent(budget["spent"], budget["monthly_limit"]),
        "jobs": {"total": len(jobs), "completed": statuses.count(JobStatus.COMPLETED.value),
                 "failed": statuses.count(JobStatus.FAILED.value),
                 "cancelled": statuses.count(JobStatus.CANCELLED.value),
                 "active": sum(1 for s in statuses if s not in ended)},
        "average_cost_per_job": cents(budget["spent"] / len(jobs)) if jobs else None,
        "block_new_jobs": budget["block_new_jobs"],
    }


def daily(days: list[dict[str, Any]]) -> list[dict[str, Any]]:
    spends = apportion([d["spend"] for d in days])
    return [{"day": d["day"].isoformat(), "spend": spend, "cumulative": total}
            for d, spend, total in zip(days, spends, accumulate(spends), strict=True)]


def breakdown(jobs: list[dict[str, Any]], limit: Decimal) -> list[dict[str, Any]]:
    """Highest spend first, with its share of the limit ("Job XYZ: $87 (17% of monthly budget)")."""
    spends = apportion([job["spent"] for job in jobs])
    return [{**job, "spent": spend, "reserved": cents(job["reserved"]), "outstanding": cents(job["outstanding"]),
             "released": cents(job["released"]), "percent_of_budget": percent(job["spent"], limit)}
            for job, spend in zip(jobs, spends, strict=True)]


# Per budget month before `month` (the last `months`), what its completed jobs' estimates forecast
# (the middle of each estimate's range) against what they cost.
FORECASTS = (
    "SELECT f.month, count(*) AS jobs, sum((j.estimated_cost_min + j.estimated_cost_max) / 2) AS forecast,"
    " sum(f.total_cost) AS actual FROM job_finance f JOIN jobs j ON j.id = f.job_id"
    " WHERE f.team = %(team)s AND f.month < %(month)s AND f.month >= %(since)s AND f.status = 'completed'"
    " AND j.estimated_cost_min IS NOT NULL AND j.estimated_cost_max IS NOT NULL GROUP BY f.month ORDER BY f.month")


def forecast_accuracy(conn: psycopg.Connection, team: str, month: str, months: int = 6) -> dict[str, Any] | None:
    """FR1.2.2's "Budget forecasts have been within ±8% for past 6 months": for each of the months
    before `month` with completed jobs, how far their actual cost fell from what their estimates
    forecast; the widest of those errors, rounded up. None without such a month."""
    since = earlier_months(month, months)[-1]
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(FORECASTS, {"team": team, "month": month, "since": since}).fetchall()
    errors = [{"month": r["month"], "jobs": r["jobs"], "forecast": cents(r["forecast"]), "actual": cents(r["actual"]),
               "error_percent": abs(r["actual"] - r["forecast"]) * 100 / r["forecast"]}
              for r in rows if r["forecast"]]
    if not errors:
        return None
    worst = max(e["error_percent"] for e in errors)
    return {"within_percent": int(worst.to_integral_value(rounding=ROUND_CEILING)), "months": errors,
            "of_months": months}
