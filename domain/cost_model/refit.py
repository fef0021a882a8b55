"""Refitting the duration coefficients by least squares on completed jobs (FR1.2.1 refinement)."""

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
ZERO = Decimal(0)  # a sum of Decimals starts from a Decimal, so it stays one (not 0 when empty)


@dataclass(frozen=True)
class DurationSample:
    """One completed job: what was trained and how long the training took, in seconds."""

    preset: str
    conversation_count: int
    training_pairs: int
    epochs: int
    actual_duration_seconds: Decimal

    @property
    def pair_epochs(self) -> int:
        return self.training_pairs * self.epochs


def refit(
    samples: Iterable[DurationSample], base: Coefficients = DEFAULT_COEFFICIENTS,
    min_samples: int = MIN_SAMPLES_PER_PRESET,
) -> Coefficients:
    """A preset with fewer than `min_samples` jobs keeps `base`'s timing; unchanged timings keep its version."""
    samples = tuple(samples)
    if not samples:
        return base
    for sample in samples:
        base.timing(sample.preset)  # unknown presets fail loudly, not silently ignored
    # Any: mypy checks a **dict against every field of the dataclass, not only those named.
    timings: dict[str, Any] = {
        name: fit_timing([s for s in samples if s.preset == name], base.timing(name), min_samples)
        for name in PRESET_NAMES
    }
    fitted = replace(base, **timings, sample_count=len(samples))
    version = base.version if timings == base.timings() else version_of(fitted)
    return replace(fitted, version=version, confidence=accuracy(fitted, samples))


def fit_timing(samples: Sequence[DurationSample], fallback: PresetTiming, min_samples: int) -> PresetTiming:
    if len(samples) < min_samples:
        return fallback
    xs = [Decimal(s.pair_epochs) for s in samples]
    ys = [Decimal(s.actual_duration_seconds) for s in samples]
    timing = with_intercept(xs, ys) or through_origin(xs, ys)
    return timing if timing.seconds_per_pair > 0 else fallback


def with_intercept(xs: Sequence[Decimal], ys: Sequence[Decimal]) -> PresetTiming | None:
    """Ordinary least squares y = a + b·x; None when x does not vary or the overhead comes out negative."""
    mean_x, mean_y = sum(xs, ZERO) / len(xs), sum(ys, ZERO) / len(ys)
    sxx = sum(((x - mean_x) ** 2 for x in xs), ZERO)
    if sxx == 0:
        return None
    slope = sum(((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)), ZERO) / sxx
    intercept = mean_y - slope * mean_x
    if intercept < 0:
        return None
    return PresetTiming(slope.quantize(QUANTUM, ROUND_HALF_EVEN), intercept.quantize(QUANTUM, ROUND_HALF_EVEN))


def through_origin(xs: Sequence[Decimal], ys: Sequence[Decimal]) -> PresetTiming:
    slope = sum((x * y for x, y in zip(xs, ys, strict=True)), ZERO) / sum((x * x for x in xs), ZERO)
    return PresetTiming(slope.quantize(QUANTUM, ROUND_HALF_EVEN))


def accuracy(coefficients: Coefficients, samples: Sequence[DurationSample]) -> int | None:
    """Percentage of samples whose predicted duration is within ±15 % of the actual one."""
    if not samples:
        return None
    hits = sum(1 for s in samples if within_range(coefficients, s))
    return int((Decimal(100) * hits / len(samples)).quantize(Decimal(1), ROUND_HALF_EVEN))


def within_range(coefficients: Coefficients, sample: DurationSample) -> bool:
    actual = Decimal(sample.actual_duration_seconds)
    predicted = coefficients.timing(sample.preset).seconds(sample.pair_epochs)
    return abs(predicted - actual) <= WITHIN * actual


def version_of(coefficients: Coefficients) -> str:
    """Named by content: the same coefficients always get the same version."""
    text = ";".join(f"{n}={t.seconds_per_pair}+{t.overhead_seconds}" for n, t in coefficients.timings().items())
    return "fit-" + hashlib.sha256(text.encode()).hexdigest()[:12]
