"""Before the model loads: the examples tokenized (the loss on the target response only), the sequence length
measured from the data, the memory guard's settings for the real model config and GPU, the speed-ups that
apply; and what the training stage's telemetry reports about them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpu_agent.config import JobSpec
from gpu_agent.data import Split
from gpu_agent.memory import Guarded, gpu_memory_gb, guard_lengths
from gpu_agent.model import model_config
from gpu_agent.settings import active_speedups
from gpu_agent.tokens import LengthReport, Tokenized, candidate_lengths, length_report, tokenize


@dataclass(frozen=True)
class Prepared:
    train: list[Tokenized]
    validation: list[Tokenized]
    guarded: Guarded
    lengths: LengthReport
    speedups: tuple[str, ...]
    skipped: dict[str, str]  # asked-for speed-ups not used, and why
    device: str
    attention: str

    def report(self) -> dict[str, Any]:
        """The training stage message's fields: `data` (lengths, cuts, the masked share) and `memory` (the guard)."""
        return {"data": self.lengths.as_dict(), "memory": self.guarded.report(), "device": self.device,
                "attention": self.attention, "speedups": list(self.speedups), "speedups_skipped": self.skipped}


def prepare(spec: JobSpec, tokenizer: Any, split: Split, device: str, attention: str) -> Prepared:
    train = [tokenize(tokenizer, example.messages) for example in split.train]
    validation = [tokenize(tokenizer, example.messages) for example in split.validation]
    rows = train + validation
    config = model_config(spec, tokenizer, attention)
    candidates = candidate_lengths([len(row) for row in rows], spec.max_seq_length,
                                   getattr(config, "max_position_embeddings", None))
    guarded, decided_by = guard_lengths(spec, config.to_dict(), candidates, device, attention,
                                        gpu_memory_gb(spec, device))
    speedups, skipped = active_speedups(spec, device)
    return Prepared(train, validation, guarded, length_report(rows, guarded.settings.seq_len, decided_by), speedups,
                    skipped, device, attention)
