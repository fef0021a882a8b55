"""Batches that spend little compute on padding: a length-grouped sampler (a pure function of seed and epoch, so a
resumed run sees the same batches) and a collator that pads to the batch's longest row and counts the tokens that
are real ("useful") against those processed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Sampler

from gpu_agent.tokens import IGNORE

MEGA_BATCH = 50  # batches sorted together, as transformers' group_by_length does
USEFUL, PROCESSED = "useful_tokens", "processed_tokens"  # the collator's counts, taken off before the model sees them


class LengthGroupedSampler(Sampler[int]):
    """One epoch's indices: a permutation drawn from its own generator seeded by (seed, epoch), cut into mega-batches
    of MEGA_BATCH batches, each sorted longest first and cut into batches; the full batches are shuffled with the
    same generator and the longest goes first (an out-of-memory shows at the first step, not hours in); a short
    last batch stays last so the data loader cuts the same batches. Draws nothing from the global RNG: Trainer
    restores that from a checkpoint on resume, and dropout must see the same numbers as in an uninterrupted run."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int) -> None:
        self.lengths, self.batch_size, self.seed, self.epoch = list(lengths), batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices(self.epoch))

    def indices(self, epoch: int) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        mega = MEGA_BATCH * self.batch_size  # a multiple of the batch: only the very last batch can be short
        batches: list[list[int]] = []
        for start in range(0, len(order), mega):
            group = sorted(order[start:start + mega], key=lambda i: -self.lengths[i])
            batches += [group[i:i + self.batch_size] for i in range(0, len(group), self.batch_size)]
        short = [batches.pop()] if batches and len(batches[-1]) < self.batch_size else []
        if batches:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
            longest = max(range(len(batches)), key=lambda b: self.lengths[batches[b][0]])
            batches.insert(0, batches.pop(longest))
        return [index for batch in batches + short for index in batch]


@dataclass
class TokenCounter:
    """Tokens trained on since the start of this process: real ones and those processed (padding included)."""

    useful: int = 0
    processed: int = 0

    def add(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Takes the collator's counts off `batch` (the model must not see them) and adds them up."""
        batch = dict(batch)
        self.useful += int(batch.pop(USEFUL, 0))
        self.processed += int(batch.pop(PROCESSED, 0))
        return batch


class PaddingCollator:
    """Pads each row to the batch's longest (pad id, attention mask 0, label IGNORE) and adds the batch's real and
    processed token counts as plain numbers (counted on the CPU: no device synchronisation per step)."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, Any]:
        longest = max(len(row["input_ids"]) for row in rows)
        ids = torch.full((len(rows), longest), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), longest), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            ids[i, :n], labels[i, :n], mask[i, :n] = (torch.tensor(row["input_ids"]), torch.tensor(row["labels"]), 1)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels,
                USEFUL: sum(len(row["input_ids"]) for row in rows), PROCESSED: longest * len(rows)}


def drop_counts(batch: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in batch.items() if key not in (USEFUL, PROCESSED)}
