"""What a configuration template (FR5.2.2) and "Clone Configuration" (FR8.1.2) carry from one job
to the next: the preset, the settings changed from it, the GPU tier and the checkpoint frequency.
Each setting stays within the range a retry may change it to (domain/retries.py ADJUSTABLE)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.preset_choice import HyperparameterError
from domain.presets import preset_named
from domain.retries import ADJUSTABLE

CHECKPOINT_KEY = "save_steps"  # transformers' name: the agent saves a checkpoint every N optimizer steps
CHECKPOINT_RANGE = (10, 100_000)
SETTINGS = ("num_train_epochs", "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps",
            CHECKPOINT_KEY)
LABELS = {"num_train_epochs": "Epochs", "learning_rate": "Learning rate",
          "per_device_train_batch_size": "Batch size (per GPU)",
          "gradient_accumulation_steps": "Gradient accumulation", CHECKPOINT_KEY: "Checkpoint every (steps)"}
GPU_TIERS = ("spot", "on_demand")


def overrides_for(preset: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The settings in `values` that differ from `preset`'s, checked: a number in its range each
    (blank or None: the preset's own). The checkpoint frequency is kept whenever it is given."""
    base = preset_named(preset).as_config()
    out: dict[str, Any] = {}
    for key in SETTINGS:
        raw = values.get(key)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        number = _number(key, raw)
        if key == CHECKPOINT_KEY or number != base.get(key):
            out[key] = number
    return out


def hyperparameters(preset: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    return preset_named(preset).as_config() | dict(overrides)


def overrides_of(preset: str, hyper: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a job's hyperparameters that differ from its preset's (what to carry over)."""
    return overrides_for(preset, {k: hyper.get(k) for k in SETTINGS})


def check_tier(tier: str) -> str:
    if tier not in GPU_TIERS:
        raise HyperparameterError("gpu_tier", f"GPU tier must be spot or on_demand (got {tier!r})")
    return tier


def _number(key: str, raw: Any) -> int | float:
    low, high = CHECKPOINT_RANGE if key == CHECKPOINT_KEY else ADJUSTABLE[key]
    label = LABELS[key]
    try:
        number: int | float = float(raw) if key == "learning_rate" else int(str(raw).strip())
    except (TypeError, ValueError):
        raise HyperparameterError(key, f"{label} must be a number (got {str(raw)[:40]!r})") from None
    if not low <= number <= high:
        raise HyperparameterError(key, f"{label} must be between {low:g} and {high:g} (got {number:g})")
    return number
