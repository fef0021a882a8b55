"""Tokens for supervised fine-tuning of chat data: the chat template's tokens with the loss on the assistant's
target only (system, user and context tokens labelled -100), and the sequence length measured from the data.

A row is never cut silently: the length covers every example, or at least 99 % of them where the rest would cost
memory (capped by `max_seq_length`, the model's context and the memory guard), and what a cut removes is counted
and reported."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domain.training_file.lengths import covering_length  # one rule, shared with the new-job page

IGNORE = -100  # the label the loss skips (transformers' ForCausalLMLoss ignore_index)


@dataclass(frozen=True)
class Tokenized:
    input_ids: list[int]
    labels: list[int]  # the token where the assistant speaks, else IGNORE

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def trained(self) -> int:
        return sum(label != IGNORE for label in self.labels)

    def cut(self, length: int) -> Tokenized:
        return Tokenized(self.input_ids[:length], self.labels[:length])


def tokenize(tokenizer: Any, messages: list[dict[str, str]]) -> Tokenized:
    """The example through the chat template; the labels are the last message's tokens, the pair's target
    response (its text and end-of-turn token, not the header before it). Earlier turns, assistant ones included,
    are the pair's context: each is trained as the target of its own pair, never twice. The span starts where the
    template applied to the earlier messages with the generation prompt stops matching the example's tokens: any
    template works whose rendering of a conversation's beginning is the beginning of its tokens (Llama-3's and
    the tiny model's are)."""
    full = _ids(tokenizer, messages, False)
    labels = [IGNORE] * len(full)
    if messages and messages[-1]["role"] == "assistant":
        start = _common(full, _ids(tokenizer, messages[:-1], True))
        labels[start:] = full[start:]
    return Tokenized(full, labels)


def _common(full: list[int], prefix: list[int]) -> int:
    """How many tokens `prefix` shares with the start of `full`."""
    for index, (a, b) in enumerate(zip(full, prefix, strict=False)):
        if a != b:
            return index
    return min(len(full), len(prefix))


def _ids(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> list[int]:
    if not messages:
        return []
    return list(tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation_prompt,
                                              return_dict=False))


def candidate_lengths(lengths: Sequence[int], explicit_cap: int | None,
                      model_context: int | None) -> list[tuple[int, str]]:
    """(length, what decided it) for every example whole, then for COVERAGE of them, each capped by
    `max_seq_length` and the model's context. The agent takes the first unless the memory guard would need
    stricter settings for it than for the second: a long tail is cut only when keeping it would cost memory."""
    out = []
    for length in (max(lengths), covering_length(lengths)):
        decided_by = "data"
        for cap, name in ((explicit_cap, "max_seq_length"), (model_context, "model context")):
            if cap is not None and cap < length:
                length, decided_by = cap, name
        out.append((length, decided_by))
    return out


@dataclass(frozen=True)
class LengthReport:
    """What the data looked like and what the chosen sequence length does to it (telemetry, the job's log)."""

    examples: int
    longest: int
    seq_len: int
    decided_by: str  # data, max_seq_length, model context, memory
    covered_share: float  # of the examples that fit whole
    truncated_examples: int
    truncated_tokens: int  # in all, over the cut examples
    most_cut: int  # the most tokens cut from one example
    masked_share: float  # of the tokens kept: system and user tokens, which the loss skips

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def length_report(rows: Sequence[Tokenized], seq_len: int, decided_by: str) -> LengthReport:
    cuts = [len(row) - seq_len for row in rows if len(row) > seq_len]
    kept = sum(min(len(row), seq_len) for row in rows)
    trained = sum(row.cut(seq_len).trained for row in rows)
    return LengthReport(
        examples=len(rows), longest=max((len(row) for row in rows), default=0), seq_len=seq_len, decided_by=decided_by,
        covered_share=round(1 - len(cuts) / len(rows), 4) if rows else 1.0, truncated_examples=len(cuts),
        truncated_tokens=sum(cuts), most_cut=max(cuts, default=0),
        masked_share=round(1 - trained / kept, 4) if kept else 0.0)
