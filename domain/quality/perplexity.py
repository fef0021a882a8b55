"""Perplexity of the base model and of base + adapter on the held-out conversations (FR6.1.1), and
the same split by persona, emotional arc and topic with the heatmap and recommendations (FR6.1.2).

A perplexity is exp(summed negative log-likelihood / scored tokens) over the conversations of a
group: the assistant's tokens of each conversation, as the trainer scores them."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K")

PRODUCTION_READY, ACCEPTABLE = 30.0, 20.0  # FR6.1.1's thresholds, percent improvement
BADGES = ((PRODUCTION_READY, "✓ Production Ready", "green"), (ACCEPTABLE, "⚠ Acceptable Quality", "yellow"),
          (-math.inf, "✗ Below Threshold", "red"))
COVERAGE_TARGET = 10  # a persona + arc with fewer training conversations is called thin (FR6.1.2's "10+")


@dataclass(frozen=True)
class Sample:
    """One held-out conversation: its scaffolding and both models' summed loss over its scored tokens."""

    id: str
    persona: str
    emotional_arc: str
    topic: str
    tokens: int
    baseline_nll: float
    trained_nll: float


@dataclass(frozen=True)
class Perplexity:
    baseline: float
    trained: float
    conversations: int
    tokens: int

    @property
    def improvement_percent(self) -> float:
        """((baseline - trained) / baseline) × 100 (FR6.1.1)."""
        return (self.baseline - self.trained) / self.baseline * 100

    @property
    def badge(self) -> str:
        return next(label for floor, label, _ in BADGES if self.improvement_percent >= floor)

    @property
    def colour(self) -> str:
        return colour_of(self.improvement_percent)

    @property
    def interpretation(self) -> str:
        better = self.improvement_percent
        if better >= PRODUCTION_READY:
            return f"{better:.0f}% lower perplexity indicates significantly better prediction quality"
        if better >= ACCEPTABLE:
            return f"{better:.0f}% lower perplexity indicates better prediction quality"
        if better > 0:
            return (f"Only {better:.0f}% lower perplexity: below the 20% a delivery needs; retry with more "
                    "training data or another preset")
        return (f"{-better:.0f}% higher perplexity: the adapter predicts the held-out conversations worse than "
                "the base model")


def colour_of(improvement: float) -> str:
    return next(colour for floor, _, colour in BADGES if improvement >= floor)


def perplexity(samples: Sequence[Sample]) -> Perplexity:
    tokens = sum(s.tokens for s in samples)
    if not samples or tokens <= 0:
        raise ValueError("perplexity needs at least one conversation with scored tokens")
    return Perplexity(baseline=math.exp(sum(s.baseline_nll for s in samples) / tokens),
                      trained=math.exp(sum(s.trained_nll for s in samples) / tokens),
                      conversations=len(samples), tokens=tokens)


@dataclass(frozen=True)
class CategoryRow:
    name: str
    perplexity: Perplexity
    best: bool = False
    worst: bool = False

    @property
    def text(self) -> str:
        """FR6.1.2's line: "Anxious Investor: 26.3 → 15.2 (42% improvement)"."""
        p = self.perplexity
        return f"{self.name}: {p.baseline:.1f} → {p.trained:.1f} ({p.improvement_percent:.0f}% improvement)"


CATEGORIES: dict[str, Callable[[Sample], str]] = {
    "persona": lambda s: s.persona, "emotional_arc": lambda s: s.emotional_arc, "topic": lambda s: s.topic}


def by_category(samples: Sequence[Sample], key: str) -> list[CategoryRow]:
    """One row per value of `key` (persona, emotional_arc or topic), in name order, the best and
    worst improvement marked (when there are at least two)."""
    groups = _grouped(samples, CATEGORIES[key])
    rows = [CategoryRow(name, perplexity(group)) for name, group in sorted(groups.items())]
    if len(rows) < 2:
        return rows
    ranked = sorted(rows, key=lambda r: (r.perplexity.improvement_percent, r.name))
    worst, best = ranked[0].name, ranked[-1].name
    return [CategoryRow(r.name, r.perplexity, best=r.name == best, worst=r.name == worst) for r in rows]


@dataclass(frozen=True)
class Cell:
    persona: str
    emotional_arc: str
    improvement: float | None  # None: no held-out conversation of that pair
    conversations: int

    @property
    def colour(self) -> str:
        return "none" if self.improvement is None else colour_of(self.improvement)


def heatmap(samples: Sequence[Sample]) -> tuple[list[str], list[str], list[list[Cell]]]:
    """FR6.1.2's persona (rows) × emotional arc (columns) grid of improvements."""
    personas = sorted({s.persona for s in samples})
    arcs = sorted({s.emotional_arc for s in samples})
    pairs = _grouped(samples, lambda s: (s.persona, s.emotional_arc))
    grid = [[_cell(persona, arc, pairs.get((persona, arc), [])) for arc in arcs] for persona in personas]
    return personas, arcs, grid


def _cell(persona: str, arc: str, group: Sequence[Sample]) -> Cell:
    improvement = perplexity(group).improvement_percent if group else None
    return Cell(persona, arc, improvement, len(group))


def recommendations(samples: Sequence[Sample], coverage: Mapping[tuple[str, str], int]) -> list[str]:
    """FR6.1.2's advice, from the evaluation and the training split's coverage (training conversations
    per persona + arc): thin pairs that also improve least, then topics well below the overall figure."""
    advice = []
    overall = perplexity(samples).improvement_percent
    _, _, grid = heatmap(samples)
    weak = [cell for row in grid for cell in row
            if cell.improvement is not None and cell.improvement < max(ACCEPTABLE, overall - 5)]
    for cell in sorted(weak, key=lambda c: (c.improvement or 0.0, c.persona, c.emotional_arc)):
        if coverage.get((cell.persona, cell.emotional_arc), 0) < COVERAGE_TARGET:
            advice.append(f"Add {COVERAGE_TARGET}+ more '{cell.persona} + {cell.emotional_arc}' conversations for "
                          "better coverage")
    for row in by_category(samples, "topic"):
        if row.perplexity.improvement_percent < min(ACCEPTABLE, overall - 5):
            advice.append(f"{row.name} topic shows lower improvement - consider adding specialized training data")
    return advice


def _grouped(samples: Iterable[Sample], key: Callable[[Sample], K]) -> dict[K, list[Sample]]:
    groups: dict[K, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(key(sample), []).append(sample)
    return groups
