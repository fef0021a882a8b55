"""GPU options (FR1.1.3): spot vs on-demand pricing, savings, recommendation and the on-demand guard."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Protocol

from domain.money import usd

GPU_TYPE = "H100_PCIE_80GB"
GPU_MEMORY_GB = 80
ON_DEMAND_CONFIRMATION_THRESHOLD = Decimal(150)
LONG_RUN_HOURS = Decimal(20)
URGENT_DEADLINE_HOURS = Decimal(24)
DEFAULT_INTERRUPTION_RATE = Decimal("0.18")  # the spec's example; inside its "10-30%"


class PricingTier(StrEnum):
    SPOT = "spot"
    ON_DEMAND = "on_demand"


class PriceSource(Protocol):
    """Where hourly rates come from: RunPod's catalog at run time (handlers/pods/runpod_prices.py),
    `OfflinePrices` (our configured rates) otherwise. `describe(tier)`, where a source has it, is
    the label shown beside a rate ("RunPod's on-demand price, …" or "Our configured rate")."""

    def hourly_rate(self, gpu_type: str, tier: PricingTier) -> Decimal: ...


@dataclass(frozen=True)
class OfflinePrices:
    spot: Decimal = Decimal("2.49")
    on_demand: Decimal = Decimal("7.99")

    def hourly_rate(self, gpu_type: str, tier: PricingTier) -> Decimal:
        if gpu_type != GPU_TYPE:
            raise UnknownGpuTypeError(f"no offline price for {gpu_type!r}")
        return self.spot if tier is PricingTier.SPOT else self.on_demand

    def describe(self, tier: PricingTier) -> str:
        return "Our configured rate"


def rate_label(prices: PriceSource | None, tier: PricingTier) -> str:
    """Whose rate a shown price is."""
    describe = getattr(prices, "describe", None)
    return str(describe(tier)) if describe is not None else "Our configured rate"


@dataclass(frozen=True)
class SpotRecovery:
    checkpoint_interval_steps: int = 100
    max_recovery_attempts: int = 3
    recovery_timeout_minutes: int = 10


@dataclass(frozen=True)
class GpuOption:
    tier: PricingTier
    hourly_rate: Decimal
    gpu_type: str = GPU_TYPE
    recovery: SpotRecovery = SpotRecovery()

    def as_config(self) -> dict[str, str | int | bool]:
        """The stored GPU configuration; the rate is a decimal string (JSON has no Decimal)."""
        config: dict[str, str | int | bool] = {
            "gpu_type": self.gpu_type, "pricing_tier": self.tier.value, "hourly_rate": str(self.hourly_rate),
        }
        if self.tier is PricingTier.ON_DEMAND:
            return config | {"guaranteed_completion": True}
        return config | {
            "checkpoint_interval_steps": self.recovery.checkpoint_interval_steps,
            "max_recovery_attempts": self.recovery.max_recovery_attempts,
            "recovery_timeout_minutes": self.recovery.recovery_timeout_minutes,
        }


def gpu_option(tier: PricingTier, prices: PriceSource | None = None) -> GpuOption:
    return GpuOption(tier=tier, hourly_rate=(prices or OfflinePrices()).hourly_rate(GPU_TYPE, tier))


@dataclass(frozen=True)
class Savings:
    amount: Decimal
    percentage: Decimal

    @classmethod
    def between(cls, spot_total: Decimal, on_demand_total: Decimal) -> Savings:
        amount = on_demand_total - spot_total
        percentage = amount / on_demand_total * 100 if on_demand_total else Decimal(0)
        return cls(amount=amount, percentage=percentage)

    def badge(self) -> str:
        """`Save 69% ($5.50/hr)` when built from hourly rates."""
        return f"Save {self.percentage.quantize(Decimal(1), ROUND_HALF_EVEN)}% ({usd(self.amount)}/hr)"


@dataclass(frozen=True)
class Recommendation:
    tier: PricingTier
    reason: str


def recommend(
    duration_hours: Decimal, spot_cost: Decimal, on_demand_cost: Decimal,
    budget_remaining: Decimal | None = None, deadline_hours: Decimal | None = None,
) -> Recommendation:
    """FR1.1.3's rules, first match wins, in the spec's order; `spot_cost` is the panel's estimate."""
    if duration_hours > LONG_RUN_HOURS or spot_cost > ON_DEMAND_CONFIRMATION_THRESHOLD:
        return Recommendation(PricingTier.ON_DEMAND, "Long training run - on-demand guarantees completion")
    if budget_remaining is not None and budget_remaining < on_demand_cost:
        saved = usd(on_demand_cost - spot_cost)
        return Recommendation(PricingTier.SPOT, f"Budget optimization - spot instances save {saved}")
    if deadline_hours is not None and deadline_hours < URGENT_DEADLINE_HOURS:
        return Recommendation(PricingTier.ON_DEMAND, "Urgent deadline - guaranteed completion")
    return Recommendation(PricingTier.SPOT, "Cost-effective choice for most training runs")


@dataclass(frozen=True)
class OnDemandConfirmation:
    message: str
    actions: tuple[str, ...]


def on_demand_confirmation(
    on_demand_cost: Decimal, spot_cost: Decimal, recommended: PricingTier = PricingTier.SPOT,
) -> OnDemandConfirmation | None:
    """The modal shown when on-demand is chosen for a job estimated over $150; None below that."""
    if on_demand_cost <= ON_DEMAND_CONFIRMATION_THRESHOLD:
        return None
    message = (
        f"High-Cost On-Demand Instance - Estimated cost: {usd(on_demand_cost)}. "
        f"Spot instance would save {usd(on_demand_cost - spot_cost)}. Are you sure?"
    )
    # The spec labels spot "Recommended"; not when FR1.1.3's own rules recommend on-demand.
    use_spot = "Recommended: Use Spot" if recommended is PricingTier.SPOT else "Use Spot"
    return OnDemandConfirmation(message, (use_spot, "Continue with On-Demand", "Cancel"))



def interruption_rate(interrupted_jobs: int, spot_jobs: int) -> Decimal:
    """Share of recent spot jobs that needed a recovery; the spec's 18 % until there is history."""
    if spot_jobs <= 0:
        return DEFAULT_INTERRUPTION_RATE
    if not 0 <= interrupted_jobs <= spot_jobs:
        raise ValueError("interrupted_jobs must be between 0 and spot_jobs")
    return Decimal(interrupted_jobs) / Decimal(spot_jobs)


class UnknownGpuTypeError(LookupError):
    pass
