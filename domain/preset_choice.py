"""A preset for hyperparameters asked in OpenAI's terms (`n_epochs`, `batch_size`,
`learning_rate_multiplier`, each a number or "auto", and `seed`): the nearest preset, with explicit
overrides for what it does not match, each within the range a retry may change it to
(domain/retries.py ADJUSTABLE). docs/web.md ("OpenAI-compatible API") has the table."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from domain.job_metadata import InvalidJobError
from domain.presets import PRESETS, Preset
from domain.retries import ADJUSTABLE

SEED_MAX = 2**31 - 1
DEFAULT_SEED = 42  # the agent's seed when none is asked for (handlers/provisioning.py pod_env)
BATCH_MAX = ADJUSTABLE["gradient_accumulation_steps"][1]  # one example per device step at the least


@dataclass(frozen=True)
class RequestedHyperparameters:
    """None is "auto": the preset's own value."""

    n_epochs: int | None = None
    batch_size: int | None = None
    learning_rate_multiplier: float | None = None
    seed: int | None = None


@dataclass(frozen=True)
class PresetChoice:
    preset: Preset
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        return self.preset.as_config() | self.overrides

    @property
    def epochs(self) -> int:
        return int(self.hyperparameters["num_train_epochs"])


def effective_batch(hyperparameters: dict[str, Any]) -> int:
    """OpenAI's batch size: examples per optimizer step (per-device batch × gradient accumulation)."""
    return int(hyperparameters["per_device_train_batch_size"]) * int(hyperparameters["gradient_accumulation_steps"])


def learning_rate_multiplier(preset: Preset, hyperparameters: dict[str, Any]) -> float:
    """The job's learning rate as a multiple of its preset's (1.0 when not overridden)."""
    return float(f"{float(hyperparameters['learning_rate']) / preset.learning_rate:.6g}")


def choose_preset(requested: RequestedHyperparameters, default: Preset, unlocked: Callable[[Preset], bool],
                  fixed: Preset | None = None) -> PresetChoice:
    """`fixed` when the caller named a preset; else the unlocked preset that matches most of the
    asked epochs and batch size (ties: `default`, the one for the file's size, then the presets'
    order), with the rest as overrides. The learning rate is the preset's times the multiplier."""
    check_requested(requested)
    candidates = [fixed] if fixed else [default, *(p for p in PRESETS if p is not default and unlocked(p))]
    preset = min(candidates, key=lambda p: _mismatches(p, requested))  # min keeps the first of equals
    return PresetChoice(preset, _overrides(preset, requested))


def check_requested(requested: RequestedHyperparameters) -> None:
    low, high = ADJUSTABLE["num_train_epochs"]
    if requested.n_epochs is not None and not low <= requested.n_epochs <= high:
        raise HyperparameterError("n_epochs", f"n_epochs must be between {low} and {high} (got {requested.n_epochs})")
    if requested.batch_size is not None and not 1 <= requested.batch_size <= BATCH_MAX:
        raise HyperparameterError("batch_size",
                                  f"batch_size must be between 1 and {BATCH_MAX} (got {requested.batch_size})")
    multiplier = requested.learning_rate_multiplier
    if multiplier is not None and not (math.isfinite(multiplier) and multiplier > 0):
        raise HyperparameterError("learning_rate_multiplier",
                                  f"learning_rate_multiplier must be a number above 0 (got {multiplier})")
    if requested.seed is not None and not 0 <= requested.seed <= SEED_MAX:
        raise HyperparameterError("seed", f"seed must be between 0 and {SEED_MAX} (got {requested.seed})")


def _mismatches(preset: Preset, requested: RequestedHyperparameters) -> int:
    config = preset.as_config()
    return sum((requested.n_epochs not in (None, preset.epochs),
                requested.batch_size not in (None, effective_batch(config))))


def _overrides(preset: Preset, requested: RequestedHyperparameters) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if requested.n_epochs not in (None, preset.epochs):
        out["num_train_epochs"] = requested.n_epochs
    if requested.batch_size is not None and requested.batch_size != effective_batch(preset.as_config()):
        # Never more examples per device step than the preset's (its memory estimate holds).
        per_device = math.gcd(requested.batch_size, preset.batch_size)
        out |= {"per_device_train_batch_size": per_device,
                "gradient_accumulation_steps": requested.batch_size // per_device}
    multiplier = requested.learning_rate_multiplier
    if multiplier not in (None, 1):
        rate = float(f"{preset.learning_rate * multiplier:.6g}")
        low, high = ADJUSTABLE["learning_rate"]
        if not low <= rate <= high:
            raise HyperparameterError(
                "learning_rate_multiplier",
                f"learning_rate_multiplier {multiplier:g} gives a learning rate of {rate:g} (the {preset.title}"
                f" preset's {preset.learning_rate:g} × {multiplier:g}), outside {low:g} to {high:g}")
        out["learning_rate"] = rate
    if requested.seed is not None:
        out["seed"] = requested.seed
    return out


class HyperparameterError(InvalidJobError):
    """An asked hyperparameter is out of range; `field` names it (n_epochs, batch_size, …)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
