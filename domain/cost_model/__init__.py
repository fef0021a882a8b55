"""Cost estimation (FR1.2.1): coefficients as data, the estimate, its notices, and refitting from history."""

from domain.cost_model.coefficients import DEFAULT_COEFFICIENTS, SPEC_COEFFICIENTS, Coefficients, PresetTiming
from domain.cost_model.estimate import CostEstimate, InvalidEstimateInputError, estimate_cost
from domain.cost_model.notices import delta_text, estimate_warnings, insufficient_budget, percent_change
from domain.cost_model.refit import DurationSample, accuracy, refit
from domain.cost_model.review import review_warnings

__all__ = [
    "DEFAULT_COEFFICIENTS", "SPEC_COEFFICIENTS", "Coefficients", "CostEstimate", "DurationSample",
    "InvalidEstimateInputError", "PresetTiming", "accuracy", "delta_text", "estimate_cost",
    "estimate_warnings", "insufficient_budget", "percent_change", "refit", "review_warnings",
]
