"""The memory guard: before training, the shared memory model (domain/gpu_memory, the same as the control plane's
pre-flight check) plans for the real model config and the GPU's memory, and the agent trains with its settings:
gradient checkpointing on, a smaller micro-batch with more accumulation (the effective batch stays the preset's),
shorter rows as a last resort. What it changed goes into the training stage's telemetry and the job's log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.gpu_memory import GB, MemoryPlan, ModelShape, ModelShapeError, TrainingSetup, plan
from gpu_agent.config import JobSpec
from gpu_agent.settings import CUDA, RunSettings


@dataclass(frozen=True)
class Guarded:
    settings: RunSettings
    plan: MemoryPlan | None  # None where there is no GPU memory to plan for (the CPU without a nominal figure)

    def report(self) -> dict[str, Any]:
        run = self.settings
        out: dict[str, Any] = {"micro_batch": run.micro_batch, "gradient_accumulation_steps":
                               run.gradient_accumulation_steps, "gradient_checkpointing": run.gradient_checkpointing,
                               "seq_len": run.seq_len}
        if self.plan is None:
            return out | {"guarded": False, "changes": []}
        memory = self.plan
        return out | {"guarded": True, "gpu_memory_gb": round(memory.gpu_memory_gb, 1),
                      "usable_gb": round(memory.usable_gb, 1),
                      "requested_gb": round(memory.requested_estimate.total_gb, 1),
                      "estimate_gb": round(memory.estimate.total_gb, 1), "fits": memory.fits,
                      "changes": list(memory.changes), "fixes": list(memory.fixes)}


def setup_for(spec: JobSpec, seq_len: int, device: str, attention: str) -> TrainingSetup:
    quantization = "nf4" if spec.qlora else "bf16" if device == CUDA else "fp32"
    return TrainingSetup.from_hyperparameters(spec.hyperparameters, seq_len=seq_len, quantization=quantization,
                                              attention=attention)


def guard(spec: JobSpec, model_config: dict[str, Any], seq_len: int, device: str, attention: str,
          gpu_memory_gb: float | None) -> Guarded:
    """The settings to train with. Where the plan cannot fit even after every change it still trains with the
    most frugal settings (the estimate keeps 10 % headroom) and an out-of-memory error fails the job typed."""
    requested = RunSettings.requested(spec, seq_len)
    if gpu_memory_gb is None:
        return Guarded(requested, None)
    try:
        shape = ModelShape.from_config(model_config)
    except ModelShapeError:  # not a decoder the memory model knows: train as asked, say it was not guarded
        return Guarded(requested, None)
    memory = plan(shape, setup_for(spec, seq_len, device, attention), gpu_memory_gb, may_cap_seq_len=True)
    chosen = memory.setup
    return Guarded(RunSettings(chosen.micro_batch, chosen.gradient_accumulation_steps, chosen.gradient_checkpointing,
                               chosen.seq_len), memory)


def gpu_memory_gb(spec: JobSpec, device: str) -> float | None:
    """The GPU's total memory in GB (GiB, as the memory model counts); on the CPU the spec's nominal figure, if any."""
    if device != CUDA:
        return spec.gpu_memory_gb
    import torch

    return torch.cuda.get_device_properties(0).total_memory / GB


def guard_lengths(spec: JobSpec, model_config: dict[str, Any], candidates: list[tuple[int, str]], device: str,
                  attention: str, gpu_memory_gb: float | None) -> tuple[Guarded, str]:
    """The guard for every example whole when that needs no stricter settings (micro-batch, checkpointing) than
    for the 99 % length, else for the 99 % length; with what decided the length ("memory" when the plan cut it)."""
    (whole, whole_by), (covering, covering_by) = candidates
    tail = guard(spec, model_config, covering, device, attention, gpu_memory_gb)
    full = guard(spec, model_config, whole, device, attention, gpu_memory_gb) if whole != covering else tail
    keep_all = full.settings == RunSettings(tail.settings.micro_batch, tail.settings.gradient_accumulation_steps,
                                            tail.settings.gradient_checkpointing, whole)
    chosen, wanted, decided_by = (full, whole, whole_by) if keep_all else (tail, covering, covering_by)
    return chosen, "memory" if chosen.settings.seq_len < wanted else decided_by
