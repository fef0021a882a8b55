"""Refitting the duration coefficients from the throughput measured on completed jobs (FR1.2.1 refinement).

seconds_per_pair[preset] = tokens per pair-epoch / tokens per second[preset]: the tokens a pair brings are a
property of the data (pooled over every preset), the tokens per second one of the preset on its GPU. Both are
ratios of sums (time-weighted), never means of per-job rates. docs/cost-model.md, "Refit"."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from domain.cost_model.coefficients import DEFAULT_COEFFICIENTS, PRESET_NAMES, Coefficients, PresetTiming

MIN_SAMPLES_PER_PRESET = 5
WITHIN = Decimal("0.15")
QUANTUM = Decimal("0.0001")
RATE_QUANTUM = Decimal("0.1")
ZERO = Decimal(0)  # a sum of Decimals starts from a Decimal, so it stays one (not 0 when empty)


@dataclass(frozen=True)
class ThroughputSample:
    """One completed job as its pod measured it: the useful (non-padding) tokens its optimizer steps trained,
    the seconds those steps took, and the pair-epochs (training pairs × epochs) it was configured for."""

    preset: str
    pair_epochs: int
    useful_tokens: Decimal
    training_seconds: Decimal

    def __post_init__(self) -> None:
        if self.pair_epochs <= 0 or self.useful_tokens <= 0 or self.training_seconds <= 0:
            raise ValueError(f"a throughput sample needs positive figures: {self}")

    @property
    def tokens_per_second(self) -> Decimal:
        return Decimal(self.useful_tokens) / Decimal(self.training_seconds)


def refit(
    samples: Iterable[ThroughputSample], base: Coefficients = DEFAULT_COEFFICIENTS,
    min_samples: int = MIN_SAMPLES_PER_PRESET,
) -> Coefficients:
    """A preset with fewer than `min_samples` jobs keeps `base`'s timing; with none refitted, `base` itself."""
    samples = tuple(samples)
    for sample in samples:
        base.timing(sample.preset)  # unknown presets fail loudly, not silently ignored
    groups = {name: [s for s in samples if s.preset == name] for name in PRESET_NAMES}
    measured = [s for group in groups.values() if len(group) >= min_samples for s in group]
    if not measured:
        return base
    per_pair = tokens_per_pair_epoch(samples)
    # Any: mypy checks a **dict against every field of the dataclass, not only those named.
    timings: dict[str, Any] = {
        name: measured_timing(group, per_pair) if len(group) >= min_samples else base.timing(name)
        for name, group in groups.items()
    }
    fitted = replace(base, **timings, sample_count=len(measured))
    return replace(fitted, version=version_of(fitted), confidence=accuracy(fitted, measured))


def tokens_per_pair_epoch(samples: Sequence[ThroughputSample]) -> Decimal:
    """Σ useful tokens / Σ pair-epochs over every sample: what one training pair brings, whatever the preset."""
    return sum((s.useful_tokens for s in samples), ZERO) / sum(s.pair_epochs for s in samples)


def measured_timing(samples: Sequence[ThroughputSample], per_pair: Decimal) -> PresetTiming:
    rate = sum((s.useful_tokens for s in samples), ZERO) / sum((s.training_seconds for s in samples), ZERO)
    return PresetTiming((per_pair / rate).quantize(QUANTUM, ROUND_HALF_EVEN),
                        tokens_per_second=rate.quantize(RATE_QUANTUM, ROUND_HALF_EVEN), jobs=len(samples))


def accuracy(coefficients: Coefficients, samples: Sequence[ThroughputSample]) -> int | None:
    """Percentage of samples whose predicted training time is within ±15 % of the measured one."""
    if not samples:
        return None
    hits = sum(1 for s in samples if within_range(coefficients, s))
    return int((Decimal(100) * hits / len(samples)).quantize(Decimal(1), ROUND_HALF_EVEN))


def within_range(coefficients: Coefficients, sample: ThroughputSample) -> bool:
    actual = Decimal(sample.training_seconds)
    predicted = coefficients.timing(sample.preset).seconds(sample.pair_epochs)
    return abs(predicted - actual) <= WITHIN * actual


def version_of(coefficients: Coefficients) -> str:
    """Named by content: the same coefficients always get the same version."""
    text = ";".join(f"{n}={t.seconds_per_pair}+{t.overhead_seconds}" for n, t in coefficients.timings().items())
    return "fit-" + hashlib.sha256(text.encode()).hexdigest()[:12]
