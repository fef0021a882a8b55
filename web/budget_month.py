"""One budget month as the dashboard reads it: the read models' figures (projections/budget_dashboard.py,
projections/finance.py), the months before it, and the default limit for a month nobody started a
job in yet."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
from litestar.datastructures import State

from domain.billing import BillingTolerance
from domain.money import cents
from infra.settings import Settings
from projections.budget_dashboard import blocks_new_jobs, budget_dashboard, forecast_accuracy
from projections.finance import Query, attribution_rows, billing_rows, monthly_rows, savings_rows
from projections.job_reads import cost_minimums
from web.budget_forecast import ENDED

T = TypeVar("T")
HISTORY_MONTHS = 6


async def load_month(state: State, month: str) -> dict[str, Any]:
    """`dashboard` (None: no budget yet), `history`, `savings`, `attribution`, `billing` and the estimate
    `minimums` of the month's active jobs."""
    settings = state.settings
    loaded = await in_thread(state, read_month, settings.budget.team, month, settings.budget.time_zone,
                             settings.budget.billing_tolerance())
    found, minimums = loaded["dashboard"], {}
    if found:
        active = [job["job_id"] for job in found["jobs"] if job["status"] not in ENDED]
        minimums = await cost_minimums(state.pool, active)
    return loaded | {"minimums": minimums}


async def in_thread(state: State, read: Callable[..., T], *args: Any) -> T:
    """The read-model queries are synchronous (shared with the CLI): a thread, its own connection."""

    def run() -> T:
        with psycopg.connect(state.pool.conninfo) as conn:
            return read(conn, *args)

    return await asyncio.to_thread(run)


def read_month(conn: psycopg.Connection, team: str, month: str, time_zone: str,
               tolerance: BillingTolerance | None = None) -> dict[str, Any]:
    found = budget_dashboard(conn, team, month, time_zone)
    months = [row for row in monthly_rows(conn, Query(team)) if row["month"] <= month][-HISTORY_MONTHS:]
    return {"dashboard": found, "history": months,
            "block_new_jobs": found["summary"]["block_new_jobs"] if found else blocks_new_jobs(conn, team, month),
            "accuracy": forecast_accuracy(conn, team, month),
            "savings": list(savings_rows(conn, Query(team, month))),
            "attribution": list(attribution_rows(conn, Query(team, month))),
            "billing": list(billing_rows(conn, Query(team, month, tolerance=tolerance or BillingTolerance())))}


def empty_month(settings: Settings, month: str, block_new_jobs: bool = True) -> dict[str, Any]:
    """The dashboard of a month without a budget: the default limit, nothing spent."""
    limit = settings.budget.default_limit
    summary = {"month": month, "limit": cents(limit), "spent": Decimal("0.00"), "reserved": Decimal("0.00"),
               "forecast": Decimal("0.00"), "remaining": cents(limit), "utilisation_percent": Decimal(0)
               if limit else None, "jobs": {"total": 0, "completed": 0, "failed": 0, "cancelled": 0, "active": 0},
               "average_cost_per_job": None, "grace_percent": settings.budget.grace_percent,
               "block_new_jobs": block_new_jobs}
    return {"summary": summary, "daily": [], "jobs": [], "thresholds": [], "overrun": None, "decisions": []}
