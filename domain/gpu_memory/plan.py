"""What the agent's memory guard does before training to fit the GPU, each change told as a sentence."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from domain.gpu_memory.estimate import DEFAULT_HEADROOM, GB, MemoryEstimate, estimate_setup, usable_bytes
from domain.gpu_memory.setup import TrainingSetup
from domain.gpu_memory.shapes import ModelShape
from domain.presets import CONSERVATIVE
from domain.retries import oom_fixes

SEQ_LEN_STEP = 64  # a capped sequence length is a multiple of this


class Verdict(StrEnum):
    FIT = "fit"
    FIT_AFTER_ADJUSTMENT = "fit_after_adjustment"
    UNFIT = "unfit"


@dataclass(frozen=True)
class MemoryPlan:
    """The settings the guard trains with, their estimate, and each change as a sentence."""

    requested: TrainingSetup
    setup: TrainingSetup
    requested_estimate: MemoryEstimate
    estimate: MemoryEstimate
    changes: tuple[str, ...]
    gpu_memory_gb: float
    headroom: float
    fixes: tuple[str, ...] = ()  # FR3.1.1's suggestions, when even the adjusted settings do not fit

    @property
    def fits(self) -> bool:
        return self.estimate.fits(self.gpu_memory_gb, self.headroom)

    @property
    def verdict(self) -> Verdict:
        if not self.fits:
            return Verdict.UNFIT
        return Verdict.FIT_AFTER_ADJUSTMENT if self.changes else Verdict.FIT

    @property
    def usable_gb(self) -> float:
        return usable_bytes(self.gpu_memory_gb, self.headroom) / GB


Step = Callable[[ModelShape, TrainingSetup, int], TrainingSetup | None]


def plan(shape: ModelShape, setup: TrainingSetup, gpu_memory_gb: float, *, may_cap_seq_len: bool = False,
         headroom: float = DEFAULT_HEADROOM) -> MemoryPlan:
    """Checkpointing on, then a smaller micro-batch at the same effective batch, then (if allowed) shorter rows."""
    budget = usable_bytes(gpu_memory_gb, headroom)
    chosen, changes = _adjusted(shape, setup, budget, may_cap_seq_len)
    final = estimate_setup(shape, chosen)
    fixes = () if final.total <= budget else _fixes(shape, chosen, budget)
    return MemoryPlan(setup, chosen, estimate_setup(shape, setup), final, changes, gpu_memory_gb, headroom, fixes)


def _adjusted(shape: ModelShape, setup: TrainingSetup, budget: int,
              may_cap_seq_len: bool) -> tuple[TrainingSetup, tuple[str, ...]]:
    steps: list[tuple[Step, Callable[[TrainingSetup, TrainingSetup], str]]] = [
        (_checkpointing, lambda _, __: "Gradient checkpointing turned on"), (_smaller_micro_batch, _batch_change)]
    if may_cap_seq_len:
        steps.append((_capped_seq_len, lambda was, now: f"Sequence length capped at {now.seq_len:,} tokens "
                                                        f"(was {was.seq_len:,})"))
    chosen, changes = setup, []
    for step, describe in steps:
        before = estimate_setup(shape, chosen)
        adjusted = step(shape, chosen, budget) if before.total > budget else None
        if adjusted is not None:
            after = estimate_setup(shape, adjusted).total_gb
            changes.append(f"{describe(chosen, adjusted)}: {before.total_gb:.1f} GB → {after:.1f} GB estimated")
            chosen = adjusted
    return chosen, tuple(changes)


def largest_fitting_seq_len(shape: ModelShape, setup: TrainingSetup, budget: int) -> int | None:
    """The longest multiple of SEQ_LEN_STEP, up to the setup's own, whose estimate fits `budget` bytes."""
    low, high = 0, setup.seq_len // SEQ_LEN_STEP
    while low < high:  # memory grows with the sequence length: bisect
        middle = (low + high + 1) // 2
        if estimate_setup(shape, setup.with_changes(seq_len=middle * SEQ_LEN_STEP)).total <= budget:
            low = middle
        else:
            high = middle - 1
    return low * SEQ_LEN_STEP or None


def _checkpointing(shape: ModelShape, setup: TrainingSetup, budget: int) -> TrainingSetup | None:
    return None if setup.gradient_checkpointing else setup.with_changes(gradient_checkpointing=True)


def _smaller_micro_batch(shape: ModelShape, setup: TrainingSetup, budget: int) -> TrainingSetup | None:
    """Halve until it fits or reaches 1, each time a divisor of the effective batch so the product is kept."""
    chosen = setup
    while chosen.micro_batch > 1 and estimate_setup(shape, chosen).total > budget:
        micro = chosen.micro_batch // 2
        while setup.effective_batch % micro:
            micro -= 1
        chosen = chosen.with_changes(micro_batch=micro, gradient_accumulation_steps=setup.effective_batch // micro)
    return None if chosen is setup else chosen


def _batch_change(was: TrainingSetup, now: TrainingSetup) -> str:
    return (f"Micro-batch {was.micro_batch} → {now.micro_batch}, gradient accumulation "
            f"{was.gradient_accumulation_steps} → {now.gradient_accumulation_steps} "
            f"(effective batch {now.effective_batch} kept)")


def _capped_seq_len(shape: ModelShape, setup: TrainingSetup, budget: int) -> TrainingSetup | None:
    longest = largest_fitting_seq_len(shape, setup, budget)
    return None if longest is None else setup.with_changes(seq_len=longest)


def _fixes(shape: ModelShape, setup: TrainingSetup, budget: int) -> tuple[str, ...]:
    """FR3.1.1's fixes that would make it fit; its first, a smaller batch, the guard has already applied."""
    _, conservative, shorter = oom_fixes(setup.micro_batch, setup.lora_rank)
    fixes = [conservative] if _conservative_fits(shape, setup, budget) else []
    longest = largest_fitting_seq_len(shape, setup, budget)
    if longest is None:
        return (f"Even {SEQ_LEN_STEP} tokens per row do not fit: this model needs a GPU with more memory",)
    return (*fixes, f"{shorter}: {longest:,} tokens per row fit")


def _conservative_fits(shape: ModelShape, setup: TrainingSetup, budget: int) -> bool:
    if setup.lora_rank <= CONSERVATIVE.rank and set(setup.target_modules) <= set(CONSERVATIVE.target_modules):
        return False
    switched = setup.with_changes(
        lora_rank=CONSERVATIVE.rank, target_modules=CONSERVATIVE.target_modules, lora_dropout=CONSERVATIVE.lora_dropout,
        micro_batch=CONSERVATIVE.batch_size, gradient_accumulation_steps=CONSERVATIVE.gradient_accumulation_steps)
    chosen, _ = _adjusted(shape, switched, budget, may_cap_seq_len=False)
    return estimate_setup(shape, chosen).total <= budget
