"""Cost estimation (FR1.2.1): coefficients as data, the estimate, its notices, refitting from measured throughput."""

from domain.cost_model.coefficients import DEFAULT_COEFFICIENTS, SPEC_COEFFICIENTS, Coefficients, PresetTiming
from domain.cost_model.estimate import CostEstimate, InvalidEstimateInputError, estimate_cost
from domain.cost_model.notices import delta_text, estimate_warnings, insufficient_budget, percent_change
from domain.cost_model.refit import MIN_SAMPLES_PER_PRESET, ThroughputSample, accuracy, refit
from domain.cost_model.review import review_warnings

__all__ = [
    "DEFAULT_COEFFICIENTS", "MIN_SAMPLES_PER_PRESET", "SPEC_COEFFICIENTS", "Coefficients", "CostEstimate",
    "InvalidEstimateInputError", "PresetTiming", "ThroughputSample", "accuracy", "delta_text", "estimate_cost",
    "estimate_warnings", "insufficient_budget", "percent_change", "refit", "review_warnings",
]
