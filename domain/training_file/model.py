"""The training file's typed form and its fixed limits (docs/training-file-format.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

FORMAT_VERSION = 1
QUALITY_DIMENSIONS = ("empathy", "clarity", "appropriateness")
QUALITY_MIN, QUALITY_MAX = Decimal(0), Decimal(5)
MAX_FILE_BYTES = 100 * 1024 * 1024
MAX_PROBLEMS = 100


@dataclass(frozen=True)
class TrainingPair:
    system_prompt: str
    user_input: str
    target_response: str
    turn: int | None = None
    metadata: Mapping[str, object] | None = None


@dataclass(frozen=True)
class Quality:
    empathy: Decimal
    clarity: Decimal
    appropriateness: Decimal

    @property
    def overall(self) -> Decimal:
        return (self.empathy + self.clarity + self.appropriateness) / 3


@dataclass(frozen=True)
class Conversation:
    id: str
    persona: str
    emotional_arc: str
    topic: str
    quality: Quality
    human_reviewed: bool
    training_pairs: tuple[TrainingPair, ...]


@dataclass(frozen=True)
class TrainingFile:
    """A valid training file; `name` is None for JSON Lines without a header line."""

    format_version: int
    name: str | None
    conversations: tuple[Conversation, ...]

    @property
    def training_pair_count(self) -> int:
        return sum(len(c.training_pairs) for c in self.conversations)
