"""GPU options (FR1.1.3): prices, stored configuration, savings, recommendation, on-demand guard."""

from dataclasses import dataclass
from decimal import Decimal

import pytest

from domain.gpu import (
    GPU_TYPE,
    OfflinePrices,
    PricingTier,
    Savings,
    UnknownGpuTypeError,
    gpu_option,
    interruption_rate,
    on_demand_confirmation,
    recommend,
)

D = Decimal
SPOT, ON_DEMAND = PricingTier.SPOT, PricingTier.ON_DEMAND


@dataclass(frozen=True)
class LivePrices:
    spot: Decimal

    def hourly_rate(self, gpu_type: str, tier: PricingTier) -> Decimal:
        return self.spot if tier is SPOT else D("8.49")


def test_offline_rates_are_the_specs_decimal_prices():
    assert gpu_option(SPOT).hourly_rate == D("2.49")
    assert gpu_option(ON_DEMAND).hourly_rate == D("7.99")
    assert isinstance(gpu_option(SPOT).hourly_rate, Decimal)


def test_a_live_price_source_replaces_the_offline_rates():
    assert gpu_option(SPOT, LivePrices(D("1.99"))).hourly_rate == D("1.99")
    assert gpu_option(ON_DEMAND, LivePrices(D("1.99"))).hourly_rate == D("8.49")


def test_offline_prices_know_only_the_h100():
    with pytest.raises(UnknownGpuTypeError):
        OfflinePrices().hourly_rate("A100_80GB", SPOT)


def test_spot_configuration_stores_the_recovery_settings():
    assert gpu_option(SPOT).as_config() == {
        "gpu_type": "H100_PCIE_80GB", "pricing_tier": "spot", "hourly_rate": "2.49",
        "checkpoint_interval_steps": 100, "max_recovery_attempts": 3, "recovery_timeout_minutes": 10,
    }


def test_on_demand_configuration_guarantees_completion():
    assert gpu_option(ON_DEMAND).as_config() == {
        "gpu_type": GPU_TYPE, "pricing_tier": "on_demand", "hourly_rate": "7.99", "guaranteed_completion": True,
    }


def test_hourly_savings_are_5_50_or_68_8_percent_not_the_advertised_70():
    savings = Savings.between(D("2.49"), D("7.99"))
    assert savings.amount == D("5.50")
    assert D("68.83") < savings.percentage < D("68.84")
    assert savings.badge() == "Save 69% ($5.50/hr)"


def test_savings_of_a_whole_job_follow_the_specs_formula():
    hours = D("13.5")
    savings = Savings.between(hours * D("2.49"), hours * D("7.99"))
    assert savings.amount == D("74.250")
    assert savings.percentage == savings.amount / (hours * D("7.99")) * 100


def test_a_long_run_is_recommended_on_demand():
    advice = recommend(D("20.5"), spot_cost=D("51"), on_demand_cost=D("164"))
    assert advice.tier is ON_DEMAND
    assert advice.reason == "Long training run - on-demand guarantees completion"


def test_a_spot_estimate_over_150_dollars_is_recommended_on_demand():
    assert recommend(D("10"), spot_cost=D("150.01"), on_demand_cost=D("480")).tier is ON_DEMAND


def test_a_tight_budget_is_recommended_spot_with_the_saving():
    advice = recommend(D("12"), spot_cost=D("30.10"), on_demand_cost=D("95.88"), budget_remaining=D("90"))
    assert advice.tier is SPOT
    assert advice.reason == "Budget optimization - spot instances save $65.78"


def test_an_urgent_deadline_is_recommended_on_demand():
    advice = recommend(D("12"), D("30"), D("96"), budget_remaining=D("500"), deadline_hours=D("20"))
    assert (advice.tier, advice.reason) == (ON_DEMAND, "Urgent deadline - guaranteed completion")


def test_the_budget_rule_comes_before_the_deadline_rule_as_in_the_spec():
    assert recommend(D("12"), D("30"), D("96"), budget_remaining=D("50"), deadline_hours=D("10")).tier is SPOT


def test_otherwise_spot_is_recommended():
    advice = recommend(D("12"), D("30"), D("96"))
    assert (advice.tier, advice.reason) == (SPOT, "Cost-effective choice for most training runs")


def test_exactly_20_hours_is_not_a_long_run():
    assert recommend(D("20"), D("50"), D("160")).tier is SPOT


def test_on_demand_above_150_dollars_asks_for_confirmation():
    modal = on_demand_confirmation(on_demand_cost=D("153.03"), spot_cost=D("48.03"))
    assert modal.message == (
        "High-Cost On-Demand Instance - Estimated cost: $153.03. Spot instance would save $105.00. Are you sure?"
    )
    assert modal.actions == ("Recommended: Use Spot", "Continue with On-Demand", "Cancel")


def test_on_demand_at_150_dollars_or_less_needs_no_confirmation():
    assert on_demand_confirmation(D("150"), D("47")) is None


def test_the_confirmation_does_not_call_spot_recommended_when_on_demand_is():
    modal = on_demand_confirmation(D("170"), D("53"), recommended=ON_DEMAND)
    assert modal.actions[0] == "Use Spot"


def test_interruption_rate_is_the_share_of_spot_jobs_that_recovered():
    assert interruption_rate(9, 50) == D("0.18")
    assert interruption_rate(0, 0) == D("0.18")
    with pytest.raises(ValueError):
        interruption_rate(3, 2)
