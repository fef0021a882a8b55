"""The cost estimate of one configuration (FR1.2.1): duration, ranges, GPU cost and spot overhead."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from typing import Any

from domain.cost_model.coefficients import DEFAULT_COEFFICIENTS, Coefficients
from domain.gpu import DEFAULT_INTERRUPTION_RATE, GpuOption, PricingTier
from domain.money import cents
from domain.presets import Preset

SECONDS_PER_HOUR = Decimal(3600)
VARIANCE = Decimal("0.15")
HOURS_PER_INTERRUPTION_WINDOW = Decimal(8)
RECOVERY_HOURS = Decimal("0.25")
HOUR_QUANTUM = Decimal("0.01")
MONEY_FIELDS = ("hourly_rate", "base_gpu_cost", "interruption_overhead", "total_cost", "cost_min", "cost_max")
HOUR_FIELDS = ("duration_hours", "duration_min_hours", "duration_max_hours")


@dataclass(frozen=True)
class CostEstimate:
    """Exact Decimal values; `for_display()` rounds (half-even) for presentation only."""

    preset: str
    pricing_tier: PricingTier
    hourly_rate: Decimal
    training_pairs: int
    epochs: int
    duration_hours: Decimal
    duration_min_hours: Decimal
    duration_max_hours: Decimal
    base_gpu_cost: Decimal
    expected_interruptions: Decimal
    interruption_overhead: Decimal
    total_cost: Decimal
    cost_min: Decimal
    cost_max: Decimal
    algorithm_version: str
    confidence: int | None

    def for_display(self) -> CostEstimate:
        # Any: mypy checks a **dict against every field of the dataclass, not only those named.
        money: dict[str, Any] = {name: cents(getattr(self, name)) for name in MONEY_FIELDS}
        hours: dict[str, Any] = {name: getattr(self, name).quantize(HOUR_QUANTUM, ROUND_HALF_EVEN)
                                 for name in HOUR_FIELDS}
        return replace(self, **money, **hours)


def estimate_cost(
    preset: Preset, training_pairs: int, gpu: GpuOption, *, epochs: int | None = None,
    interruption_probability: Decimal = DEFAULT_INTERRUPTION_RATE,
    coefficients: Coefficients = DEFAULT_COEFFICIENTS,
) -> CostEstimate:
    """`training_pairs` is the spec's conversation_count × training_pairs_per_conversation."""
    epochs = preset.epochs if epochs is None else epochs
    check_inputs(training_pairs, epochs, interruption_probability)
    hours = coefficients.timing(preset.name).seconds(training_pairs * epochs) / SECONDS_PER_HOUR
    interruptions = expected_interruptions(hours, interruption_probability, gpu.tier)
    base, overhead = hours * gpu.hourly_rate, interruptions * RECOVERY_HOURS * gpu.hourly_rate
    total = base + overhead
    return CostEstimate(
        preset=preset.name, pricing_tier=gpu.tier, hourly_rate=gpu.hourly_rate,
        training_pairs=training_pairs, epochs=epochs,
        duration_hours=hours, duration_min_hours=hours * (1 - VARIANCE), duration_max_hours=hours * (1 + VARIANCE),
        base_gpu_cost=base, expected_interruptions=interruptions, interruption_overhead=overhead,
        total_cost=total, cost_min=total * (1 - VARIANCE), cost_max=total * (1 + VARIANCE),
        algorithm_version=coefficients.version, confidence=coefficients.confidence,
    )


def expected_interruptions(hours: Decimal, probability: Decimal, tier: PricingTier) -> Decimal:
    """CEIL(hours / 8) × probability on spot; on-demand is never interrupted."""
    if tier is not PricingTier.SPOT:
        return Decimal(0)
    windows = (hours / HOURS_PER_INTERRUPTION_WINDOW).to_integral_value(rounding=ROUND_CEILING)
    return windows * probability


def check_inputs(training_pairs: int, epochs: int, interruption_probability: Decimal) -> None:
    if training_pairs <= 0:
        raise InvalidEstimateInputError("training_pairs must be positive")
    if epochs <= 0:
        raise InvalidEstimateInputError("epochs must be positive")
    if not 0 <= interruption_probability <= 1:
        raise InvalidEstimateInputError("interruption_probability must be between 0 and 1")


class InvalidEstimateInputError(ValueError):
    pass
