"""Scores of generated replies (FR6.2.1, FR6.4.1): each characteristic 1-5 for the baseline's and the
trained model's reply to one prompt, by one scorer (the model judge, or one person), and a source's
scores per item: the judge's, or the people's averaged with their disagreement (FR6.2.1 "Human
Evaluation (or automated LLM-as-judge)")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

MODEL, PEOPLE = "model", "people"
SCORES = (1, 2, 3, 4, 5)
TENTH, HUNDREDTH = Decimal("0.1"), Decimal("0.01")


def mean(values: Sequence[Decimal | int]) -> Decimal:
    if not values:
        raise ValueError("a mean needs at least one value")
    return Decimal(sum(Decimal(v) for v in values)) / len(values)


def shown(value: Decimal, places: Decimal = TENTH) -> Decimal:
    """A score as the pages show it (one decimal by default), rounded half-even: figures are judged as shown."""
    return value.quantize(places, ROUND_HALF_EVEN)


def check_scores(scores: Mapping[str, object], characteristics: Sequence[str], whose: str) -> dict[str, int]:
    """Exactly the characteristics, each a whole number 1-5; raises ValueError saying which is wrong."""
    missing = [c for c in characteristics if c not in scores]
    extra = [c for c in scores if c not in characteristics]
    if missing or extra:
        told = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unknown {', '.join(extra)}"] if extra else [])
        raise ValueError(f"{whose}: " + "; ".join(told))
    checked = {}
    for name in characteristics:
        value = scores[name]
        if isinstance(value, bool) or not isinstance(value, int) or value not in SCORES:
            raise ValueError(f"{whose}: {name} is {value!r}, expected a whole number from 1 to 5")
        checked[name] = value
    return checked


@dataclass(frozen=True)
class Scored:
    """One item's scores from one source: per characteristic, the baseline's and the trained reply's
    (a person's or the judge's whole number, or the people's average), and how far scorers disagreed."""

    item_id: str
    baseline: Mapping[str, Decimal]
    trained: Mapping[str, Decimal]
    scorers: int = 1
    spread: Decimal = Decimal(0)  # the widest range (max - min) among scorers of any one score (0 for one scorer)
    reasons: tuple[str, ...] = ()

    @property
    def baseline_score(self) -> Decimal:
        return mean(list(self.baseline.values()))

    @property
    def trained_score(self) -> Decimal:
        return mean(list(self.trained.values()))


def averaged(item_id: str, by_scorer: Sequence[tuple[Mapping[str, int], Mapping[str, int]]]) -> Scored:
    """Several scorers' (baseline, trained) scores of one item: each characteristic averaged; the
    disagreement is the widest range (max - min) among the scorers on any one characteristic of either reply."""
    if not by_scorer:
        raise ValueError(f"{item_id}: no scores to average")
    names = list(by_scorer[0][0])
    baseline = {n: mean([b[n] for b, _ in by_scorer]) for n in names}
    trained = {n: mean([t[n] for _, t in by_scorer]) for n in names}
    ranges = [max(scores[n] for scores in column) - min(scores[n] for scores in column)
              for column in ([b for b, _ in by_scorer], [t for _, t in by_scorer]) for n in names]
    return Scored(item_id, baseline, trained, len(by_scorer), Decimal(max(ranges)))


@dataclass(frozen=True)
class SourceScores:
    """Who scored (the model judge or people), their scores by item, the items left unscored (with
    why), and whether every item was dealt with (only a complete source counts for the gate)."""

    source: str
    label: str
    items: Mapping[str, Scored]
    unscored: Mapping[str, str] = field(default_factory=dict)
    complete: bool = False
    scorers: tuple[str, ...] = ()
