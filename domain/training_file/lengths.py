"""How long a file's examples are and what a sequence length cuts from them: the coverage rule the GPU agent applies
to the lengths it measures with the real tokenizer, and the control plane's estimate of those lengths, which has no
tokenizer (docs/training-file-format.md, "Example lengths")."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from domain.training_file.model import TrainingPair

COVERAGE = 0.99  # the agent's sequence length keeps at least this share of the examples whole
# An estimate, not a count: English text runs about 4 characters per token in Llama-3's and OpenAI's tokenizers;
# other languages, code and numbers run shorter (more tokens). The chat template adds tokens of its own per message
# (Llama-3: <|start_header_id|>, the role, <|end_header_id|>, "\n\n", <|eot_id|>) and one per example.
CHARS_PER_TOKEN = 4
TEMPLATE_TOKENS_PER_MESSAGE = 5
TEMPLATE_TOKENS_PER_EXAMPLE = 1


def covering_length(lengths: Sequence[int], share: float = COVERAGE) -> int:
    """The shortest length that at least `share` of the rows fit in whole."""
    ordered = sorted(lengths)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def estimated_tokens(pair: TrainingPair) -> int:
    """The example the agent trains on (system prompt, earlier turns, the pair) in tokens, estimated from characters."""
    texts = ([pair.system_prompt] if pair.system_prompt else []) + [text for _, text in pair.context]
    texts += [pair.user_input, pair.target_response]
    return TEMPLATE_TOKENS_PER_EXAMPLE + sum(TEMPLATE_TOKENS_PER_MESSAGE + math.ceil(len(text) / CHARS_PER_TOKEN)
                                             for text in texts)


@dataclass(frozen=True)
class Cut:
    """What training at `seq_len` tokens would cut: `examples` of `total` lose their end, the most by `most_tokens`."""

    seq_len: int
    examples: int
    total: int
    most_tokens: int

    @property
    def percent(self) -> float:
        return 100 * self.examples / self.total if self.total else 0.0

    @property
    def warning(self) -> str | None:
        """The new-job page's warning in the user's terms; None when nothing would be cut."""
        if not self.examples:
            return None
        share = f"{self.percent:.1f} %" if self.percent >= 0.1 else "under 0.1 %"
        return (f"⚠ About {self.examples:,} of {self.total:,} examples ({share}) are longer than the "
                f"{self.seq_len:,} tokens this job would train on: each would lose its end, up to about "
                f"{self.most_tokens:,} tokens (the assistant's answer, which is what the model learns from). "
                "Shorten or split those examples, or choose a preset with a smaller batch (Conservative), "
                "which leaves memory for longer rows. Token counts are estimated from characters (about 4 per "
                "token); the agent measures them exactly when the job starts.")


@dataclass(frozen=True)
class LengthDistribution:
    """(tokens, how many examples have that many), shortest first: compact enough to keep in a file's statistics."""

    counts: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, lengths: Iterable[int]) -> LengthDistribution:
        return cls(tuple(sorted(Counter(lengths).items())))

    @classmethod
    def stored(cls, value: Any) -> LengthDistribution | None:
        """From a file's stored statistics (lists of two numbers); None for a file catalogued before they were kept."""
        if not value:
            return None
        return cls(tuple((int(tokens), int(count)) for tokens, count in value))

    @property
    def examples(self) -> int:
        return sum(count for _, count in self.counts)

    @property
    def longest(self) -> int:
        return self.counts[-1][0] if self.counts else 0

    def covering_length(self, share: float = COVERAGE) -> int:
        return covering_length([tokens for tokens, count in self.counts for _ in range(count)], share)

    def cut_at(self, seq_len: int) -> Cut:
        longer = [(tokens, count) for tokens, count in self.counts if tokens > seq_len]
        return Cut(seq_len, sum(count for _, count in longer), self.examples,
                   max((tokens - seq_len for tokens, _ in longer), default=0))
