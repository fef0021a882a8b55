"""This month's budget as the new-job and review pages show it (FR1.2.2): what is left, its alerts,
and the months and amount a limit-increase request starts from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_CEILING, Decimal

from litestar.datastructures import State

from domain.aggregates.budget import Budget, ceiling
from domain.budget_month import budget_month, earlier_months
from domain.money import usd
from projections.budget_dashboard import budget_row, carried_blocking


@dataclass(frozen=True)
class BudgetView:
    """The read model's budget for one month: remaining = limit − spent − reserved."""

    team: str
    month: str
    limit: Decimal
    grace_percent: Decimal
    spent: Decimal = Decimal(0)
    reserved: Decimal = Decimal(0)
    active_jobs: int = 0
    block_new_jobs: bool = True

    @property
    def remaining(self) -> Decimal:
        return self.limit - self.spent - self.reserved

    @property
    def headroom(self) -> Decimal:
        """What a job may still reserve without an override: Budget.ceiling − spent − reserved."""
        return ceiling(self.limit, self.grace_percent) - self.spent - self.reserved

    @property
    def utilisation(self) -> Decimal:
        return self.spent * 100 / self.limit if self.limit else Decimal(100)

    @property
    def resets_on(self) -> date:
        year, month = (int(part) for part in self.month.split("-"))
        return date(year + month // 12, month % 12 + 1, 1)


async def load_budget(state: State, at: datetime) -> BudgetView:
    """The month of `at`; a month nobody has touched yet has the default limit and the budget
    controls of the latest budget of the year before (what the domain gives it when it is opened)."""
    settings = state.settings
    month = budget_month(at, settings.budget.time_zone)
    row = await budget_row(state.pool, Budget.id_for(settings.budget.team, month))
    if row is None:
        earlier = [Budget.id_for(settings.budget.team, m) for m in earlier_months(month)]
        return BudgetView(settings.budget.team, month, settings.budget.default_limit, settings.budget.grace_percent,
                          block_new_jobs=await carried_blocking(state.pool, earlier))
    return BudgetView(settings.budget.team, month, row["monthly_limit"], row["grace_percent"], row["spent"],
                      row["reserved"], row["active"], row["block_new_jobs"])


def budget_alert(b: BudgetView) -> str | None:
    """FR1.2.2's 80 % and 90 % utilisation alerts, and FR7.2.2's "budget exceeded" past 100 %."""
    used = b.utilisation
    if used >= 100:
        return (f"⚠ Budget Exceeded: {used:.0f}% of monthly budget used ({usd(b.spent)} of {usd(b.limit)}),"
                f" {usd(b.spent - b.limit)} over the limit. "
                + ("New jobs need a manager's override." if b.block_new_jobs
                   else "New jobs still start, with an over-budget warning (Budget Controls)."))
    if used >= 90:
        return (f"⚠ Critical Budget Alert: {used:.0f}% of monthly budget used ({usd(b.spent)} of {usd(b.limit)})."
                f" Only {usd(b.limit - b.spent)} remaining. Consider prioritizing essential training runs.")
    if used >= 80:
        return (f"⚠ Budget Alert: You've used {used:.0f}% of your monthly budget ({usd(b.spent)} of {usd(b.limit)})."
                f" Remaining: {usd(b.limit - b.spent)} for this billing period (resets {b.resets_on:%B %-d, %Y}).")
    return None


def suggested_limit(budget: BudgetView, job_max: Decimal) -> str:
    """A new limit that fits the job, rounded up to $50 (a starting point the person edits)."""
    need = budget.spent + budget.reserved + job_max
    step = Decimal(50)
    return f"{max(budget.limit + step, (need / step).to_integral_value(ROUND_CEILING) * step):.0f}"


def limit_months(month: str) -> list[tuple[str, str]]:
    """The months a limit increase may be asked for: this one and the next."""
    year, number = (int(part) for part in month.split("-"))
    following = f"{year + number // 12:04d}-{number % 12 + 1:02d}"
    return [(month, f"This month ({month})"), (following, f"Next month ({following})")]
