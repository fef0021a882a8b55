"""The sequence length the agent's memory guard trains with (gpu_agent/memory.guard_lengths), judged before launch."""

from __future__ import annotations

from domain.gpu_memory.estimate import DEFAULT_HEADROOM
from domain.gpu_memory.plan import plan
from domain.gpu_memory.setup import TrainingSetup
from domain.gpu_memory.shapes import ModelShape


def trained_length(shape: ModelShape, setup: TrainingSetup, gpu_memory_gb: float, whole: int, covering: int,
                   headroom: float = DEFAULT_HEADROOM) -> int:
    """Every example whole (`whole` tokens) when that needs no stricter settings (micro-batch, checkpointing) than
    the `covering` length, else the covering length, shortened further where even that does not fit."""
    tail = plan(shape, setup.with_changes(seq_len=covering), gpu_memory_gb, may_cap_seq_len=True,
                headroom=headroom).setup
    if whole == covering:
        return tail.seq_len
    full = plan(shape, setup.with_changes(seq_len=whole), gpu_memory_gb, may_cap_seq_len=True, headroom=headroom).setup
    return whole if full == tail.with_changes(seq_len=whole) else tail.seq_len
