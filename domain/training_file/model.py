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
# The two formats a training file may be written in: ours (conversations with their scaffolding and
# training pairs) and OpenAI's chat fine-tuning JSON Lines (one {"messages": [...]} per line).
PIPELINE_FORMAT, OPENAI_CHAT_FORMAT = "pipeline", "openai-chat"


@dataclass(frozen=True)
class TrainingPair:
    system_prompt: str
    user_input: str
    target_response: str
    turn: int | None = None
    metadata: Mapping[str, object] | None = None
    # The earlier turns of the conversation, (role, content), between the system prompt and
    # `user_input`: empty in our format; an OpenAI chat line's later assistant turns carry them.
    context: tuple[tuple[str, str], ...] = ()


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
    quality: Quality | None  # None: not scored (an OpenAI chat line has no scores)
    human_reviewed: bool
    training_pairs: tuple[TrainingPair, ...]


@dataclass(frozen=True)
class TrainingFile:
    """A valid training file; `name` is None for JSON Lines without a header line."""

    format_version: int
    name: str | None
    conversations: tuple[Conversation, ...]
    source_format: str = PIPELINE_FORMAT

    @property
    def training_pair_count(self) -> int:
        return sum(len(c.training_pairs) for c in self.conversations)
