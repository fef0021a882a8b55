"""Small reads of the budgets read model (projections/budgets.py) that the notifier and the pages
share: a month's figures, a team's spend in a period, and which months are used up. The dashboard's
month is in budget_dashboard.py."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from domain.aggregates.budget import Budget
from projections.pool import rows

# The spend of `team`'s budgets for `months` charged in [start, end), and the part of it by jobs of `user`.
SPEND_BETWEEN = (
    "SELECT coalesce(sum(s.amount), 0) AS team, coalesce(sum(s.amount) FILTER (WHERE j.created_by = %(user)s), 0)"
    " AS yours FROM budget_spend s JOIN budgets b ON b.id = s.budget_id LEFT JOIN jobs j ON j.id = s.job_id"
    " WHERE b.team = %(team)s AND b.month = ANY(%(months)s) AND s.at >= %(start)s AND s.at < %(end)s")


def month_figures(conn: psycopg.Connection, team: str, month: str) -> dict[str, Any] | None:
    """The month's `monthly_limit`, `spent` and `reserved`; None while it has no budget."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT monthly_limit, spent, reserved FROM budgets WHERE id = %s",
                           (Budget.id_for(team, month),)).fetchone()


def spend_between(conn: psycopg.Connection, team: str, months: list[str], start: datetime, end: datetime,
                  user: str) -> tuple[Decimal, Decimal]:
    """(the team's spend, `user`'s jobs' part of it) charged in [start, end) to the budgets of `months`."""
    found = conn.execute(SPEND_BETWEEN, {"user": user, "team": team, "months": months, "start": start,
                                         "end": end}).fetchone()
    return (found[0], found[1]) if found else (Decimal(0), Decimal(0))


async def used_up_months(pool: AsyncConnectionPool, team: str, months: list[str]) -> set[str]:
    """Those of `months` whose spend has reached the team's limit."""
    found = await rows(pool, "SELECT month FROM budgets WHERE team = %s AND month = ANY(%s)"
                             " AND spent >= monthly_limit", (team, months))
    return {row["month"] for row in found}
