"""One configuration's cost estimate against this month's budget (FR1.2.1, FR1.2.2): what it costs
on each tier and preset, whether it fits, and what the budget lines of the cost panel say."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.aggregates.budget import BudgetExceededError, describe_remaining
from domain.cost_model import (
    DEFAULT_COEFFICIENTS,
    Coefficients,
    CostEstimate,
    delta_text,
    estimate_cost,
    insufficient_budget,
    percent_change,
)
from domain.gpu import PriceSource, PricingTier, Savings, gpu_option, on_demand_confirmation, rate_label, recommend
from domain.money import cents, usd
from domain.presets import CONSERVATIVE, PRESETS, Preset
from web.budget_view import BudgetView, budget_alert
from web.clock import utcnow
from web.job_history import History

TIERS = (PricingTier.SPOT, PricingTier.ON_DEMAND)
TIER_TITLES = {PricingTier.SPOT: "Spot Instance", PricingTier.ON_DEMAND: "On-Demand Instance"}


def estimates_for(pairs: int, probability: Decimal, epochs: int | None = None, prices: PriceSource | None = None,
                  coefficients: Coefficients = DEFAULT_COEFFICIENTS) -> dict[str, dict[PricingTier, CostEstimate]]:
    """Every preset on every tier, so the cards can show each choice's cost; `epochs`: the number a
    template or a cloned job set instead of each preset's own; `prices`: RunPod's (else our configured rates);
    `coefficients`: refitted on completed jobs' measured throughput (web/job_history.py)."""
    options = {tier: gpu_option(tier, prices) for tier in TIERS}
    return {p.name: {tier: estimate_cost(p, pairs, options[tier], epochs=epochs, interruption_probability=probability,
                                         coefficients=coefficients)
                     for tier in TIERS} for p in PRESETS}


def money_range(low: Decimal, high: Decimal) -> str:
    return f"{usd(low)}-{usd(high)}"


def share(part: Decimal, whole: Decimal) -> str:
    """A bar's width in percent, for inline styles."""
    return f"{(part * 100 / whole) if whole else 0:.1f}"


@dataclass(frozen=True)
class Quote:
    """The chosen preset and tier's estimate, with every other choice's for the option cards."""

    file: Mapping[str, Any]
    preset: Preset
    tier: PricingTier
    all: Mapping[str, Mapping[PricingTier, CostEstimate]]
    budget: BudgetView
    history: History
    role: str
    successful_jobs: int
    previous_total: Decimal | None = None
    now: datetime = field(default_factory=utcnow)
    prices: PriceSource | None = None  # where the rates come from, for their label

    def rate_label(self, tier: PricingTier) -> str:
        return rate_label(self.prices, tier)

    @property
    def estimate(self) -> CostEstimate:
        return self.all[self.preset.name][self.tier]

    @property
    def shown(self) -> CostEstimate:
        return self.estimate.for_display()

    def on_tiers(self) -> tuple[CostEstimate, CostEstimate]:
        """This preset's (spot, on-demand) estimates."""
        spot, on_demand = (self.all[self.preset.name][t] for t in TIERS)
        return spot, on_demand

    @property
    def recommendation(self) -> Any:
        spot, on_demand = self.on_tiers()
        return recommend(spot.duration_hours, spot.total_cost, on_demand.total_cost, self.budget.remaining)

    @property
    def confirmation(self) -> Any:
        spot, on_demand = self.on_tiers()
        return on_demand_confirmation(on_demand.total_cost, spot.total_cost, self.recommendation.tier)

    @property
    def savings(self) -> Savings:
        spot, on_demand = self.on_tiers()
        return Savings.between(cents(spot.total_cost), cents(on_demand.total_cost))

    @property
    def fits(self) -> bool:
        return self.estimate.cost_max <= self.budget.remaining

    @property
    def past_ceiling(self) -> bool:
        """Over the limit plus grace."""
        return self.estimate.cost_max > self.budget.headroom

    @property
    def blocked(self) -> bool:
        """The domain would refuse to start it without a manager's override (over limit + grace,
        and the budget blocks new jobs)."""
        return self.past_ceiling and self.budget.block_new_jobs

    def budget_lines(self) -> dict[str, Any]:
        """FR1.2.1's budget error and FR1.2.2's alerts, forecast and refusal, for the panel."""
        b, e = self.budget, self.estimate
        projected = b.spent + b.reserved + e.cost_max
        lines: dict[str, Any] = {
            "remaining": describe_remaining(b.remaining), "limit": usd(b.limit), "spent": usd(b.spent),
            "reserved": usd(b.reserved),
            "month": b.month, "utilisation": f"{b.utilisation:.0f}", "forecast": forecast(b, projected),
            "over": projected > b.limit, "alert": budget_alert(b), "insufficient": insufficient_budget(e, b.remaining),
            "grace": None, "refusal": None, "tips": [],
        }
        if not self.fits and not self.past_ceiling:
            lines["grace"] = (f"Within the {b.grace_percent:.0f}% grace period: the job can still start, with an"
                              " overage warning.")
        elif self.past_ceiling and not self.blocked:
            lines["grace"] = ("Past the limit and its grace period, but new jobs are not blocked when the budget is"
                              " exceeded (Budget Controls): the job can still start, with an over-budget warning.")
        if self.blocked:
            refusal = BudgetExceededError(e.cost_max, b.remaining)
            lines["refusal"] = {"figures": refusal.figures, "message": str(refusal)}
            lines["tips"] = self.cost_tips()
        return lines

    def cost_tips(self) -> list[str]:
        """FR1.2.2's "💡 Cost Reduction Tips": cheaper choices, with what each saves."""
        tips, now = [], self.estimate.cost_max
        conservative = self.all[CONSERVATIVE.name][self.tier].cost_max
        if self.preset.name != CONSERVATIVE.name and conservative < now:
            tips.append(f"Switch to Conservative preset (save {usd(now - conservative)})")
        spot = self.all[self.preset.name][PricingTier.SPOT].cost_max
        if self.tier is PricingTier.ON_DEMAND and spot < now:
            tips.append(f"Use Spot instead of On-Demand (save {usd(now - spot)})")
        return tips

    def delta(self) -> dict[str, Any] | None:
        """How this estimate compares with the one shown before the last change."""
        if self.previous_total is None:
            return None
        text = delta_text(self.previous_total, self.estimate.total_cost)
        if text is None:
            return None
        change = percent_change(self.previous_total, self.estimate.total_cost)
        return {"text": text + (f" ({change:+.1f}%)" if change is not None else ""),
                "previous": usd(self.previous_total), "cheaper": self.estimate.total_cost < self.previous_total}


def forecast(b: BudgetView, projected: Decimal) -> str:
    """FR1.2.2's month-end forecast with this job."""
    return (f"Projected Monthly Spend: {usd(projected)} (includes {b.active_jobs} active"
            f" job{'s' if b.active_jobs != 1 else ''} + this job). Budget Limit: {usd(b.limit)}."
            + (f" Projected Overage: {usd(projected - b.limit)}" if projected > b.limit else ""))
