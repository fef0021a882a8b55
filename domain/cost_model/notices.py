"""What the cost panel says about an estimate (FR1.2.1): warnings, budget error, change vs previous."""

from __future__ import annotations

from decimal import Decimal

from domain.aggregates.budget import describe_remaining
from domain.cost_model.estimate import CostEstimate
from domain.money import cents, usd

HIGH_COST_USD = Decimal(100)
LONG_RUN_HOURS = Decimal(24)


def estimate_warnings(estimate: CostEstimate) -> tuple[str, ...]:
    warnings = []
    if estimate.total_cost > HIGH_COST_USD:
        warnings.append(
            f"⚠ High Cost Job: {usd(estimate.total_cost)} estimated. "
            "Review configuration or consider Conservative preset."
        )
    if estimate.duration_hours > LONG_RUN_HOURS:
        warnings.append("⚠ Long Training Run: >24 hours. Consider reducing epochs or dataset size.")
    return tuple(warnings)


def insufficient_budget(estimate: CostEstimate, remaining_budget: Decimal | None) -> str | None:
    """Compares the range's maximum, as FR1.2.2 and FR1.3.2 block on `estimated_cost_max`."""
    if remaining_budget is None or estimate.cost_max <= remaining_budget:
        return None
    return (
        f"❌ Insufficient Budget: Estimated {usd(estimate.cost_max)} exceeds remaining budget "
        f"{describe_remaining(remaining_budget)}. Increase budget limit or adjust configuration."
    )


def delta_text(previous_total: Decimal, current_total: Decimal) -> str | None:
    """`↑ $X.XX higher than previous estimate` / `↓ $X.XX savings vs previous`; None if equal to the cent."""
    change = cents(current_total) - cents(previous_total)
    if change > 0:
        return f"↑ {usd(change)} higher than previous estimate"
    if change < 0:
        return f"↓ {usd(-change)} savings vs previous"
    return None


def percent_change(previous_total: Decimal, current_total: Decimal) -> Decimal | None:
    """FR1.1.2's delta percentage, exact; None when there is no previous cost to compare with."""
    if previous_total == 0:
        return None
    return (current_total - previous_total) / previous_total * 100
