"""A preset's hyperparameters in words, with the spec's tooltips (FR1.1.2), for the preset cards
and the review page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.presets import HYPERPARAMETER_TOOLTIPS

MODULE_NAMES = {"q_proj": "Query", "k_proj": "Key", "v_proj": "Value", "o_proj": "Output", "gate_proj": "Gate",
                "up_proj": "Up", "down_proj": "Down"}


def readable_parameters(config: Mapping[str, Any]) -> list[tuple[str, str, str | None]]:
    """(label, value, tooltip) rows."""
    steps = config.get("gradient_accumulation_steps")
    return [
        ("LoRA Rank (r)", str(config.get("r")), HYPERPARAMETER_TOOLTIPS["r"]),
        ("Learning Rate", f"{config.get('learning_rate')}", HYPERPARAMETER_TOOLTIPS["learning_rate"]),
        ("Training Epochs", str(config.get("num_train_epochs")), HYPERPARAMETER_TOOLTIPS["num_train_epochs"]),
        ("Batch Size", str(config.get("per_device_train_batch_size")),
         HYPERPARAMETER_TOOLTIPS["per_device_train_batch_size"]),
        ("Gradient Accumulation", f"{steps} step" + ("" if steps == 1 else "s"),
         HYPERPARAMETER_TOOLTIPS["gradient_accumulation_steps"]),
        ("Target Modules", ", ".join(module_names(config.get("target_modules", []))) + " projections", None),
        ("LoRA Alpha", str(config.get("lora_alpha")), None),
        ("Dropout Rate", str(config.get("lora_dropout")), None),
        ("Warmup Ratio", str(config.get("warmup_ratio")), None),
        ("LR Scheduler", str(config.get("lr_scheduler_type")), None),
    ]


def module_names(modules: list[str]) -> list[str]:
    """Attention, then MLP projections, in the model's order; unknown ones last, as named."""
    order = list(MODULE_NAMES)
    ranked = sorted(modules, key=lambda m: order.index(m) if m in MODULE_NAMES else 99)
    return [MODULE_NAMES.get(m, m) for m in ranked]
