"""The emotional-intelligence benchmark (FR6.2.1) from one source's scores: empathy, clarity and
appropriateness 1-5 for both models on each scenario; the overall score (the mean of a reply's three)
and each subscore averaged over the scored scenarios, baseline → trained, with the improvement
((trained - baseline) ÷ baseline × 100) and the spec's badge; the ten best before/after examples.

Averages are shown to one decimal and improvements to a whole percent, both rounded half-even; the
badge follows the improvement as shown ("41% improvement" is "✓ Exceptional EI")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from domain.quality.generations import EI_CHARACTERISTICS, Generated
from domain.quality.scores import Scored, mean, shown

BADGES = ((Decimal(40), "✓ Exceptional EI"), (Decimal(30), "✓ Strong EI"), (Decimal(20), "⚠ Moderate EI"),
          (None, "✗ Needs Improvement"))
BEST_EXAMPLES = 10


def improvement(baseline: Decimal, trained: Decimal) -> Decimal:
    """(trained - baseline) ÷ baseline × 100, to a whole percent (half-even); scores are at least 1."""
    return ((trained - baseline) / baseline * 100).quantize(Decimal(1), ROUND_HALF_EVEN)


def badge_for(percent: Decimal) -> str:
    return next(label for floor, label in BADGES if floor is None or percent >= floor)


def colour_of(label: str) -> str:
    return "green" if label.startswith("✓") else "yellow" if label.startswith("⚠") else "red"


@dataclass(frozen=True)
class Change:
    """A score before and after: "3.2 → 4.5 (41% improvement)"."""

    name: str
    baseline: Decimal
    trained: Decimal

    @property
    def improvement(self) -> Decimal:
        return improvement(self.baseline, self.trained)

    @property
    def text(self) -> str:
        return f"{shown(self.baseline)} → {shown(self.trained)} ({self.improvement}% improvement)"


@dataclass(frozen=True)
class Example:
    """A before/after pair: the scenario, both replies, their scores and what changed."""

    item: Generated
    scored: Scored

    @property
    def gain(self) -> Decimal:
        return self.scored.trained_score - self.scored.baseline_score

    @property
    def notes(self) -> str:
        """Which scores rose, most first: "Empathy +3, Appropriateness +2, Clarity +1"."""
        order = [c.id for c in EI_CHARACTERISTICS]
        names = {c.id: c.name for c in EI_CHARACTERISTICS}
        rises = sorted(((self.scored.trained[c] - self.scored.baseline[c], c) for c in order
                        if c in self.scored.trained), key=lambda rise: -rise[0])
        told = [f"{names[c]} {'+' if d > 0 else ''}{shown(d).normalize():f}" for d, c in rises if d != 0]
        return ", ".join(told) or "No change"


@dataclass(frozen=True)
class EiReport:
    scenarios: int
    scored: tuple[Scored, ...]
    unscored: Mapping[str, str]
    overall: Change
    subscores: tuple[Change, ...]
    best: tuple[Example, ...]

    @property
    def improvement(self) -> Decimal:
        return self.overall.improvement

    @property
    def badge(self) -> str:
        return badge_for(self.improvement)

    @property
    def headline(self) -> str:
        """FR6.2.1's "Overall Emotional Intelligence Score: 3.2/5 (baseline) → 4.5/5 (trained) = 41% improvement"."""
        return (f"Overall Emotional Intelligence Score: {shown(self.overall.baseline)}/5 (baseline) → "
                f"{shown(self.overall.trained)}/5 (trained) = {self.improvement}% improvement")


def ei_report(items: Sequence[Generated], scores: Mapping[str, Scored], unscored: Mapping[str, str]) -> EiReport | None:
    """None when no scenario is scored yet."""
    scored = [(item, scores[item.key]) for item in items if item.key in scores]
    if not scored:
        return None
    overall = Change("Overall", mean([s.baseline_score for _, s in scored]), mean([s.trained_score for _, s in scored]))
    subscores = tuple(Change(c.name, mean([s.baseline[c.id] for _, s in scored]),
                             mean([s.trained[c.id] for _, s in scored])) for c in EI_CHARACTERISTICS)
    examples = sorted((Example(item, s) for item, s in scored), key=lambda e: -e.gain)
    best = tuple(e for e in examples if e.gain > 0)[:BEST_EXAMPLES]
    return EiReport(len(items), tuple(s for _, s in scored), dict(unscored), overall, subscores, best)
