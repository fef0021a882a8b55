"""The training settings that decide GPU memory, read from a preset's or a job's hyperparameters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

Quantization = Literal["nf4", "bf16", "fp32"]
Optimizer = Literal["adamw_torch", "paged_adamw_8bit"]
Attention = Literal["sdpa", "flash_attention_2", "eager"]


@dataclass(frozen=True)
class TrainingSetup:
    """One micro-batch's worth of settings; gradient accumulation rides along so a plan keeps the effective batch.

    `upcast_for_kbit`: peft's `prepare_model_for_kbit_training` (which gpu_agent/model.py calls for QLoRA) casts
    every parameter bitsandbytes left in bf16 to fp32: embeddings, lm_head, norms; the residual stream then runs
    in fp32. None means "as the agent does": on for nf4, off otherwise.
    """

    lora_rank: int
    target_modules: tuple[str, ...]
    micro_batch: int
    seq_len: int
    quantization: Quantization = "nf4"
    gradient_checkpointing: bool = False
    optimizer: Optimizer = "adamw_torch"
    attention: Attention = "sdpa"
    lora_dropout: float = 0.0
    gradient_accumulation_steps: int = 1
    upcast_for_kbit: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_modules", tuple(self.target_modules))
        self.check_valid()

    @classmethod
    def from_hyperparameters(cls, hyper: Mapping[str, Any], *, seq_len: int, **settings: Any) -> TrainingSetup:
        """From peft/transformers names: `Preset.as_config()` or a job's stored hyperparameters."""
        return cls(lora_rank=int(hyper["r"]), target_modules=tuple(hyper["target_modules"]),
                   micro_batch=int(hyper["per_device_train_batch_size"]), seq_len=seq_len,
                   lora_dropout=float(hyper.get("lora_dropout", 0.0)),
                   gradient_accumulation_steps=int(hyper.get("gradient_accumulation_steps", 1)), **settings)

    def check_valid(self) -> None:
        for name, allowed in (("quantization", Quantization), ("optimizer", Optimizer), ("attention", Attention)):
            if getattr(self, name) not in get_args(allowed):
                raise UnsupportedSettingError(f"{name} must be one of {list(get_args(allowed))}")
        if min(self.lora_rank, self.micro_batch, self.seq_len, self.gradient_accumulation_steps) < 1:
            raise UnsupportedSettingError("lora_rank, micro_batch, seq_len and gradient accumulation must be ≥ 1")
        if not self.target_modules or not 0 <= self.lora_dropout < 1:
            raise UnsupportedSettingError("target_modules must name a module and lora_dropout lie in [0, 1)")

    @property
    def tokens(self) -> int:
        """Tokens in one micro-batch: the collator pads every row to the longest, so count seq_len each."""
        return self.micro_batch * self.seq_len

    @property
    def effective_batch(self) -> int:
        return self.micro_batch * self.gradient_accumulation_steps

    @property
    def upcast(self) -> bool:
        return self.quantization == "nf4" if self.upcast_for_kbit is None else self.upcast_for_kbit

    @property
    def activation_bytes(self) -> int:
        """Bytes per element of the hidden states: fp32 once upcast (or an fp32 model), else bf16."""
        return 4 if self.upcast or self.quantization == "fp32" else 2

    def with_changes(self, **changes: Any) -> TrainingSetup:
        return replace(self, **changes)


class UnsupportedSettingError(ValueError):
    pass
