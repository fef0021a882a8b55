"""FR1.2.2's "Increase Budget Limit" request, sent from the new-job and the review pages: a manager
approves it later."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar.datastructures import State

from domain.aggregates.budget import InvalidBudgetCommandError, PermissionDeniedError
from domain.money import usd
from web.budget_view import BudgetView, limit_months
from web.clock import utcnow
from web.flows import Actor
from web.job_form import as_money


async def request_increase(state: State, form: Any, actor: Actor, budget: BudgetView) -> tuple[str | None, str]:
    """Sends the form's request; returns (problem, notice)."""
    month = str(form.get("limit_month") or budget.month)
    if month not in {m for m, _ in limit_months(budget.month)}:
        return "Choose this month or next month", ""
    new_limit = as_money(form.get("new_limit"))
    if new_limit is None:
        return "New Monthly Limit: enter an amount in dollars", ""
    try:
        await asyncio.to_thread(state.store.app.request_limit_increase, month, new_limit,
                                str(form.get("limit_justification") or "")[:2000], actor.name, utcnow())
    except (InvalidBudgetCommandError, PermissionDeniedError) as exc:
        return str(exc), ""
    return None, (f"Budget increase to {usd(new_limit)} for {month} requested: a manager must approve it"
                  " (they have been notified).")
