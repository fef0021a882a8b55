"""Preprocessing: the training file validated by the shared validator, tokenized with the chat
template, split 80/20 deterministically by conversation (no randomness besides the seeded sampler), or,
with a validation file, trained on in full and validated on that file's examples."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from domain.training_file import TrainingFile, load


@dataclass(frozen=True)
class Example:
    conversation_id: str
    messages: list[dict[str, str]]


@dataclass(frozen=True)
class Split:
    train: list[Example]
    validation: list[Example]
    validation_file: TrainingFile | None = None  # the file validated on; None: a hold-out of the training file


def examples(data: bytes) -> tuple[TrainingFile, list[Example]]:
    """One example per training pair, in either format (our own, or OpenAI chat lines converted by the
    same validator the catalog uses): system prompt, the earlier turns, then the pair. Raises
    DatasetFormatError (with the exact place of the first problem) for a bad file."""
    training_file = load(data)
    out = []
    for conversation in training_file.conversations:
        for pair in conversation.training_pairs:
            messages = [{"role": "system", "content": pair.system_prompt}] if pair.system_prompt else []
            messages += [{"role": role, "content": content} for role, content in pair.context]
            messages += [{"role": "user", "content": pair.user_input},
                         {"role": "assistant", "content": pair.target_response}]
            out.append(Example(conversation.id, messages))
    return training_file, out


def split(items: list[Example], validation_share: float = 0.2) -> Split:
    """By conversation, ordered by a hash of its id: the same file always splits the same way, and
    no conversation is in both halves."""
    ids = sorted({e.conversation_id for e in items}, key=lambda i: hashlib.sha256(i.encode()).hexdigest())
    n_validation = max(1, round(len(ids) * validation_share)) if len(ids) > 1 else 0
    validation_ids = set(ids[:n_validation])
    return Split([e for e in items if e.conversation_id not in validation_ids],
                 [e for e in items if e.conversation_id in validation_ids])


def with_validation_file(items: list[Example], data: bytes) -> Split:
    """Every example of the training file trained on, every one of the validation file's validated on
    (OpenAI's `validation_file`); the file is checked by the same validator."""
    validation_file, validation = examples(data)
    return Split(list(items), validation, validation_file)
