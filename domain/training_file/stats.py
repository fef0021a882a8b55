"""summarize(): the numbers the training-file pages and the dataset card show (FR1.1.1, FR1.3.2)."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from domain.training_file.lengths import LengthDistribution, estimated_tokens
from domain.training_file.model import PIPELINE_FORMAT, QUALITY_DIMENSIONS, TrainingFile
from domain.training_file.validation import load

HIGH_QUALITY, REVIEW = "✓ High Quality", "⚠ Review"
HIGH_QUALITY_FROM = Decimal("4.0")
_SCORE, _PERCENT = Decimal("0.01"), Decimal("0.1")


@dataclass(frozen=True)
class Share:
    """One value of a distribution: how many conversations have it, and their percentage."""

    value: str
    count: int
    percent: Decimal


@dataclass(frozen=True)
class QualityAverages:
    """Averages over conversations, 2 decimals; None when the file has no scored conversations."""

    overall: Decimal | None
    empathy: Decimal | None
    clarity: Decimal | None
    appropriateness: Decimal | None


@dataclass(frozen=True)
class TrainingFileStats:
    name: str | None
    size_bytes: int
    sha256: str
    conversation_count: int
    training_pair_count: int
    average_pairs_per_conversation: Decimal
    quality: QualityAverages
    personas: tuple[Share, ...]
    emotional_arcs: tuple[Share, ...]
    topics: tuple[Share, ...]
    human_reviewed_count: int
    human_reviewed_percent: Decimal
    format: str = PIPELINE_FORMAT  # model.PIPELINE_FORMAT or OPENAI_CHAT_FORMAT
    # (estimated tokens, examples) of every training pair as the agent trains on it (lengths.py): the new-job page's
    # warning when a long tail would be cut
    example_tokens: tuple[tuple[int, int], ...] = ()

    @property
    def quality_indicator(self) -> str:
        return quality_indicator(self.quality.overall)


def summarize(data: bytes) -> TrainingFileStats:
    """Statistics of a valid training file; raises DatasetFormatError (with the report) otherwise."""
    training_file = load(data)
    conversations = training_file.conversations
    count, pairs = len(conversations), training_file.training_pair_count
    reviewed = sum(1 for c in conversations if c.human_reviewed)
    return TrainingFileStats(
        name=training_file.name,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        conversation_count=count,
        training_pair_count=pairs,
        average_pairs_per_conversation=_ratio(pairs, count, _SCORE),
        quality=_quality(training_file),
        personas=distribution((c.persona for c in conversations), count),
        emotional_arcs=distribution((c.emotional_arc for c in conversations), count),
        topics=distribution((c.topic for c in conversations), count),
        human_reviewed_count=reviewed,
        human_reviewed_percent=_ratio(100 * reviewed, count, _PERCENT),
        format=training_file.source_format,
        example_tokens=LengthDistribution.of(
            estimated_tokens(pair) for c in conversations for pair in c.training_pairs).counts,
    )


def quality_indicator(score: Decimal | None) -> str:
    """FR1.1.1: "✓ High Quality" from 4.0 (as shown, i.e. rounded), "⚠ Review" below or without scores."""
    return HIGH_QUALITY if score is not None and score >= HIGH_QUALITY_FROM else REVIEW


def distribution(values: Iterable[str], total: int) -> tuple[Share, ...]:
    """Most frequent first, ties by value; percentages are rounded each, so may not sum to 100."""
    counts = sorted(Counter(values).items(), key=lambda item: (-item[1], item[0]))
    return tuple(Share(value, n, _ratio(100 * n, total, _PERCENT)) for value, n in counts)


def _quality(training_file: TrainingFile) -> QualityAverages:
    """Over the scored conversations (an OpenAI chat file has none: every average is None)."""
    scores = [c.quality for c in training_file.conversations if c.quality is not None]
    sums = {d: sum((getattr(q, d) for q in scores), Decimal(0)) for d in QUALITY_DIMENSIONS}
    n = len(scores)
    if n == 0:
        return QualityAverages(None, None, None, None)
    per_dimension = {d: (total / n).quantize(_SCORE, ROUND_HALF_EVEN) for d, total in sums.items()}
    overall = (sum(sums.values(), Decimal(0)) / (n * len(QUALITY_DIMENSIONS))).quantize(_SCORE, ROUND_HALF_EVEN)
    return QualityAverages(overall=overall, **per_dimension)


def _ratio(numerator: int, denominator: int, step: Decimal) -> Decimal:
    if denominator == 0:
        return Decimal(0).quantize(step)
    return (Decimal(numerator) / denominator).quantize(step, ROUND_HALF_EVEN)
