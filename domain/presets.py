"""Hyperparameter presets (FR1.1.2): exact parameters, card metadata, defaults and the Aggressive lock."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum

ATTENTION = ("q_proj", "v_proj", "k_proj", "o_proj")
ATTENTION_AND_MLP = ATTENTION + ("gate_proj", "up_proj", "down_proj")
AGGRESSIVE_UNLOCK_CONVERSATIONS = 300
AGGRESSIVE_UNLOCK_SUCCESSFUL_JOBS = 3
LOCKED_TOOLTIP = "Unlock after 3 successful training runs"
DOCS_LINK = "/docs/hyperparameters-explained"

HYPERPARAMETER_TOOLTIPS = {
    "r": "Rank (r): Number of trainable parameters - higher = more learning capacity but slower training",
    "learning_rate": "Learning Rate: Speed of model updates - higher = faster learning but risk of instability",
    "num_train_epochs": "Epochs: Complete passes through dataset - more = better learning but diminishing returns",
    "per_device_train_batch_size": (
        "Batch Size: Training examples processed simultaneously - larger = faster but more memory"
    ),
    "gradient_accumulation_steps": (
        "Gradient Accumulation: Simulates larger batch sizes - higher = more stable gradients"
    ),
}


class RiskLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def tooltip(self) -> str:
        return _RISK_TOOLTIPS[self]


_RISK_TOOLTIPS = {
    RiskLevel.LOW: "Minimal OOM risk, proven for most datasets, fastest completion",
    RiskLevel.MEDIUM: "Moderate complexity, requires good dataset quality, production-ready",
    RiskLevel.HIGH: (
        "Highest quality potential, requires excellent dataset, longer training, experimentation recommended"
    ),
}


@dataclass(frozen=True)
class Preset:
    """One preset card: the hyperparameters the GPU agent applies plus what the card shows."""

    name: str
    title: str
    description: str
    rank: int
    learning_rate: float
    epochs: int
    batch_size: int
    gradient_accumulation_steps: int
    lora_alpha: int
    target_modules: tuple[str, ...]
    lora_dropout: float
    warmup_ratio: float
    lr_scheduler_type: str
    risk: RiskLevel
    use_cases: str
    vram_gb: int

    def as_config(self) -> dict[str, str | int | float | list[str]]:
        """JSON-ready hyperparameters, keyed by their peft/transformers names."""
        return {
            "r": self.rank,
            "lora_alpha": self.lora_alpha,
            "lora_dropout": self.lora_dropout,
            "target_modules": list(self.target_modules),
            "learning_rate": self.learning_rate,
            "num_train_epochs": self.epochs,
            "per_device_train_batch_size": self.batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "warmup_ratio": self.warmup_ratio,
            "lr_scheduler_type": self.lr_scheduler_type,
        }

    def check_fits(self, gpu_memory_gb: int) -> None:
        if self.vram_gb > gpu_memory_gb:
            raise InsufficientVramError(
                f"{self.title} preset needs {self.vram_gb} GB VRAM; the GPU has {gpu_memory_gb} GB"
            )


CONSERVATIVE = Preset(
    name="conservative", title="Conservative",
    description="Best for high-quality seed datasets and first training runs",
    rank=8, learning_rate=0.0001, epochs=2, batch_size=4, gradient_accumulation_steps=1,
    lora_alpha=16, target_modules=ATTENTION, lora_dropout=0.05, warmup_ratio=0.03,
    lr_scheduler_type="cosine", risk=RiskLevel.LOW, vram_gb=60,
    use_cases="First training run, high-quality seed data, budget-conscious, quick validation",
)
BALANCED = Preset(
    name="balanced", title="Balanced",
    description="Production-ready configuration for most use cases",
    rank=16, learning_rate=0.0002, epochs=3, batch_size=2, gradient_accumulation_steps=2,
    lora_alpha=32, target_modules=ATTENTION_AND_MLP, lora_dropout=0.1, warmup_ratio=0.05,
    lr_scheduler_type="cosine", risk=RiskLevel.MEDIUM, vram_gb=70,
    use_cases="Production models, proven reliability, standard datasets, client delivery",
)
AGGRESSIVE = Preset(
    name="aggressive", title="Aggressive",
    description="Maximum quality for complex datasets, experimentation, when quality is paramount",
    rank=32, learning_rate=0.0003, epochs=4, batch_size=1, gradient_accumulation_steps=4,
    lora_alpha=64, target_modules=ATTENTION_AND_MLP, lora_dropout=0.1, warmup_ratio=0.05,
    lr_scheduler_type="cosine", risk=RiskLevel.HIGH, vram_gb=75,
    use_cases="Complex emotional intelligence, maximum quality, research/experimentation, when budget allows",
)
PRESETS = (CONSERVATIVE, BALANCED, AGGRESSIVE)
_BY_NAME = {preset.name: preset for preset in PRESETS}


def preset_named(name: str) -> Preset:
    try:
        return _BY_NAME[name.strip().lower()]
    except KeyError:
        raise UnknownPresetError(f"unknown preset {name!r}; expected one of {sorted(_BY_NAME)}") from None


def default_preset(conversation_count: int) -> Preset:
    """FR1.1.1/FR1.1.2: <150 Conservative, 150-300 Balanced, >300 Aggressive (never locked: >300 unlocks it)."""
    if conversation_count < 150:
        return CONSERVATIVE
    if conversation_count <= AGGRESSIVE_UNLOCK_CONVERSATIONS:
        return BALANCED
    return AGGRESSIVE


def is_unlocked(preset: Preset, conversation_count: int, successful_jobs: int) -> bool:
    if preset.name != AGGRESSIVE.name:
        return True
    return (
        conversation_count > AGGRESSIVE_UNLOCK_CONVERSATIONS
        or successful_jobs >= AGGRESSIVE_UNLOCK_SUCCESSFUL_JOBS
    )


def check_unlocked(preset: Preset, conversation_count: int, successful_jobs: int) -> None:
    if not is_unlocked(preset, conversation_count, successful_jobs):
        raise PresetLockedError(LOCKED_TOOLTIP)


def success_rate_text(completed: int, total: int) -> str:
    """Badge from history: `completed` succeeded out of `total` finished jobs with this preset."""
    if total <= 0:
        return "No completed jobs yet"
    if not 0 <= completed <= total:
        raise ValueError("completed must be between 0 and total")
    percent = (Decimal(100) * completed / total).quantize(Decimal(1), ROUND_HALF_EVEN)
    return f"{percent}% success rate (based on {total} completed jobs)"


class UnknownPresetError(LookupError):
    pass


class PresetLockedError(Exception):
    pass


class InsufficientVramError(Exception):
    pass
