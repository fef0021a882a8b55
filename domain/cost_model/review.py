"""Warnings of the pre-start review modal (FR1.3.2), which differ from the cost panel's (FR1.2.1)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from domain.cost_model.estimate import CostEstimate
from domain.money import usd
from domain.presets import AGGRESSIVE, CONSERVATIVE

HIGH_COST_USD = Decimal(100)
EXTENDED_HOURS = Decimal(20)
LOW_BUDGET_FACTOR = Decimal("1.5")
AGGRESSIVE_WARNING = (
    "⚠ Advanced Configuration: Aggressive parameters may take longer and cost more. "
    "Recommended only for complex datasets."
)
LOW_BUDGET_WARNING = (
    "⚠ Limited Budget Remaining: This job will use most of your remaining monthly budget. "
    "Consider budgeting for potential overages."
)
EXTENDED_WARNING = (
    "⚠ Extended Training Time: This job may take over 20 hours. Spot interruptions are more likely for long runs."
)
FIRST_RUN_NOTICE = (
    "ℹ First Training Run: This is your first training job. "
    "Start with Conservative preset to gain familiarity with the platform."
)


def review_warnings(
    estimate: CostEstimate, conservative_total: Decimal, remaining_budget: Decimal | None, previous_jobs: int,
) -> tuple[str, ...]:
    """`conservative_total`: the same job's total on Conservative, for the high-cost saving."""
    warnings = [high_cost_warning(estimate, conservative_total)] if estimate.total_cost > HIGH_COST_USD else []
    if estimate.preset == AGGRESSIVE.name:
        warnings.append(AGGRESSIVE_WARNING)
    if remaining_budget is not None and remaining_budget < estimate.cost_max * LOW_BUDGET_FACTOR:
        warnings.append(LOW_BUDGET_WARNING)
    if estimate.duration_hours > EXTENDED_HOURS:
        warnings.append(EXTENDED_WARNING)
    if previous_jobs == 0:
        warnings.append(FIRST_RUN_NOTICE)
    return tuple(warnings)

def high_cost_warning(estimate: CostEstimate, conservative_total: Decimal) -> str:
    """The spec hard-codes "reduce cost by 60%"; the saving is computed here instead."""
    head = f"⚠ High-Cost Training Run: This job will cost {usd(estimate.total_cost)}."
    saving = (estimate.total_cost - conservative_total) / estimate.total_cost * 100
    if estimate.preset == CONSERVATIVE.name or saving <= 0:
        return head
    return f"{head} Consider Conservative preset to reduce cost by {saving.quantize(Decimal(1), ROUND_HALF_EVEN)}%."
