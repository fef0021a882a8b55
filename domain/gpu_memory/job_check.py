"""The pre-flight memory check of a job before any pod is rented (issue #16): the job's hyperparameters
on the deployment's base model, quantization and GPU, judged as the agent's memory guard will adjust
them. A configuration that cannot fit even then is refused with the figure and FR3.1.1's fixes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.gpu_memory.lengths import trained_length
from domain.gpu_memory.plan import Verdict
from domain.gpu_memory.preflight import Preflight, preflight
from domain.gpu_memory.setup import TrainingSetup
from domain.gpu_memory.shapes import UnknownModelError, shape_for_model

# The row length judged when the job sets no `max_seq_length`: the agent measures it from the data
# and may shorten rows to fit (docs/gpu-agent.md), so only a model that fits no row length is refused.
DEFAULT_SEQ_LEN = 2048
QLORA_FIX = "Load the base model in 4-bit (QLoRA: PIPELINE_AGENT_QLORA=true)"


@dataclass(frozen=True)
class MemoryCheck:
    """The deployment's side of the check: which model, loaded how, on how much GPU memory."""

    base_model: str
    qlora: bool
    gpu_memory_gb: float = 80.0

    def judge(self, hyperparameters: Mapping[str, Any]) -> Preflight | None:
        """The verdict with its figures; None for a model without a published shape (the tiny test
        model, an unknown hub id), which the agent's guard measures on the pod instead."""
        try:
            shape = shape_for_model(self.base_model)
        except UnknownModelError:
            return None
        cap = hyperparameters.get("max_seq_length")
        setup = TrainingSetup.from_hyperparameters(hyperparameters, seq_len=int(cap or DEFAULT_SEQ_LEN),
                                                   quantization="nf4" if self.qlora else "bf16")
        return preflight(shape, setup, self.gpu_memory_gb, may_cap_seq_len=not cap)

    def trained_length(self, hyperparameters: Mapping[str, Any], whole: int, covering: int) -> int:
        """The sequence length the agent would train with, for examples of up to `whole` tokens of which 99 % fit
        in `covering`: both capped by `max_seq_length`, then chosen by the memory guard where the model's shape
        is published; for another model the guard cannot be judged here, and every example is taken whole."""
        if cap := hyperparameters.get("max_seq_length"):
            whole, covering = min(whole, int(cap)), min(covering, int(cap))
        try:
            shape = shape_for_model(self.base_model)
        except UnknownModelError:
            return whole
        setup = TrainingSetup.from_hyperparameters(hyperparameters, seq_len=whole,
                                                   quantization="nf4" if self.qlora else "bf16")
        return trained_length(shape, setup, self.gpu_memory_gb, whole, covering)

    def check(self, hyperparameters: Mapping[str, Any]) -> Preflight | None:
        """Raises InsufficientGpuMemoryError for a configuration that cannot fit."""
        verdict = self.judge(hyperparameters)
        if verdict is not None and verdict.verdict is Verdict.UNFIT:
            raise InsufficientGpuMemoryError(verdict, self.fixes(hyperparameters, verdict))
        return verdict

    def fixes(self, hyperparameters: Mapping[str, Any], verdict: Preflight) -> tuple[str, ...]:
        """FR3.1.1's fixes that make it fit, and 4-bit loading first when that alone would."""
        if self.qlora:
            return verdict.fixes
        quantized = MemoryCheck(self.base_model, True, self.gpu_memory_gb).judge(hyperparameters)
        if quantized is not None and quantized.verdict is not Verdict.UNFIT:
            return (QLORA_FIX,)
        return verdict.fixes


class InsufficientGpuMemoryError(ValueError):
    """The job cannot fit the GPU's memory even after the agent's adjustments: refused before a pod is rented."""

    def __init__(self, verdict: Preflight, fixes: tuple[str, ...]) -> None:
        self.verdict, self.fixes = verdict, fixes
        super().__init__(
            f"This configuration does not fit the {verdict.gpu_memory_gb:g} GB GPU: it needs about "
            f"{verdict.adjusted_gb:.1f} GB even after the agent's adjustments (gradient checkpointing, a smaller "
            f"micro-batch), of {verdict.usable_gb:.1f} GB usable. Try: {'; '.join(fixes)}")

    def details(self) -> dict[str, Any]:
        """What the job's failure records (the retry page reads `suggested_fixes`)."""
        v = self.verdict
        return {"preflight": {"verdict": v.verdict.value, "estimate_gb": v.estimate_gb, "adjusted_gb": v.adjusted_gb,
                              "usable_gb": v.usable_gb, "gpu_memory_gb": v.gpu_memory_gb},
                "suggested_fixes": list(self.fixes), "gpu_memory_total_gb": v.gpu_memory_gb}
