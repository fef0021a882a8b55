"""The pre-flight memory check the control plane shows: fits, fits after the agent's adjustments, or not."""

from __future__ import annotations

from dataclasses import dataclass

from domain.gpu_memory.estimate import DEFAULT_HEADROOM
from domain.gpu_memory.plan import MemoryPlan, Verdict, plan
from domain.gpu_memory.setup import TrainingSetup
from domain.gpu_memory.shapes import ModelShape


@dataclass(frozen=True)
class Preflight:
    """Figures in GB with one decimal, as shown; `changes` are what the agent's guard will do, `fixes` the user's."""

    verdict: Verdict
    estimate_gb: float
    adjusted_gb: float
    usable_gb: float
    gpu_memory_gb: float
    changes: tuple[str, ...]
    fixes: tuple[str, ...]

    @classmethod
    def of(cls, memory: MemoryPlan) -> Preflight:
        return cls(memory.verdict, round(memory.requested_estimate.total_gb, 1), round(memory.estimate.total_gb, 1),
                   round(memory.usable_gb, 1), memory.gpu_memory_gb, memory.changes, memory.fixes)

    @property
    def message(self) -> str:
        room = f"{self.usable_gb:.1f} GB usable on the {self.gpu_memory_gb:g} GB GPU"
        if self.verdict is Verdict.FIT:
            return f"Fits: {self.estimate_gb:.1f} GB estimated of {room}"
        if self.verdict is Verdict.FIT_AFTER_ADJUSTMENT:
            return (f"Fits after adjustment: {self.estimate_gb:.1f} GB estimated as configured, "
                    f"{self.adjusted_gb:.1f} GB once the agent adjusts it, of {room}")
        return (f"Does not fit: needs about {self.adjusted_gb:.1f} GB even after adjustment, more than the {room}. "
                f"Try: {'; '.join(self.fixes)}")


def preflight(shape: ModelShape, setup: TrainingSetup, gpu_memory_gb: float, *, may_cap_seq_len: bool = False,
              headroom: float = DEFAULT_HEADROOM) -> Preflight:
    return Preflight.of(plan(shape, setup, gpu_memory_gb, may_cap_seq_len=may_cap_seq_len, headroom=headroom))
