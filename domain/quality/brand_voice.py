"""Brand-voice consistency (FR6.4.1, and a client's own rubric, FR6.4.2) from one source's scores:
each characteristic's average over the scored responses (the trained model's, with the baseline's
beside it), the overall voice consistency (the mean of the characteristic averages), the alignment
(overall ÷ 5), the rubric's badge, the characteristics under its flag line, and the five responses
that improved most.

The overall score is judged as shown, to two decimals (half-even), against the rubric's badges (FR6.4.1:
4.5, 4.25, 4.0); the alignment is shown to one decimal so that it never seems to contradict the badge
(4.24/5 is 84.8 %, "⚠ Acceptable Alignment")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from domain.quality.generations import Generated
from domain.quality.model import Characteristic, Rubric
from domain.quality.scores import HUNDREDTH, TENTH, Scored, mean, shown

BEFORE_AFTER = 5
WORDS = ((Decimal("4.5"), "excellent"), (Decimal("4.2"), "strong"), (Decimal("4.0"), "good"))


@dataclass(frozen=True)
class CharacteristicScore:
    characteristic: Characteristic
    baseline: Decimal
    trained: Decimal
    flag_below: Decimal

    @property
    def flagged(self) -> bool:
        return shown(self.trained) < self.flag_below

    @property
    def word(self) -> str:
        """FR6.4.1's words: "4.5/5 (excellent)", "4.2/5 (strong)", "4.1/5 (good)", "2.8/5 (needs improvement)"."""
        if self.flagged:
            return "needs improvement"
        return next((word for floor, word in WORDS if shown(self.trained) >= floor), "fair")

    @property
    def text(self) -> str:
        return f"{self.characteristic.name}: {shown(self.trained)}/5 ({self.word})"


@dataclass(frozen=True)
class Example:
    item: Generated
    scored: Scored

    @property
    def gain(self) -> Decimal:
        return self.scored.trained_score - self.scored.baseline_score


@dataclass(frozen=True)
class BrandReport:
    rubric: Rubric
    responses: int
    scored: tuple[Scored, ...]
    unscored: Mapping[str, str]
    characteristics: tuple[CharacteristicScore, ...]
    best: tuple[Example, ...]

    @property
    def overall(self) -> Decimal:
        return shown(mean([c.trained for c in self.characteristics]), HUNDREDTH)

    @property
    def baseline_overall(self) -> Decimal:
        return shown(mean([c.baseline for c in self.characteristics]), HUNDREDTH)

    @property
    def alignment(self) -> Decimal:
        """Percent of the top score, to one decimal: 4.3/5 is 86.0 %."""
        return shown(self.overall * 20, TENTH)

    @property
    def badge(self) -> str:
        return self.rubric.thresholds.badge_for(self.overall).label

    @property
    def meets_target(self) -> bool:
        return self.overall >= self.rubric.thresholds.target_score

    @property
    def headline(self) -> str:
        """"Overall voice consistency: 4.30/5 (86.0% alignment, target ≥85%)"."""
        target = shown(self.rubric.thresholds.target_score * 20, TENTH).normalize()
        return (f"Overall voice consistency: {self.overall}/5 ({self.alignment}% alignment, target ≥{target:f}%)")

    @property
    def flagged(self) -> tuple[CharacteristicScore, ...]:
        return tuple(c for c in self.characteristics if c.flagged)


def brand_report(rubric: Rubric, items: Sequence[Generated], scores: Mapping[str, Scored],
                 unscored: Mapping[str, str]) -> BrandReport | None:
    """None when no response is scored yet."""
    scored = [(item, scores[item.key]) for item in items if item.key in scores]
    if not scored:
        return None
    flag = rubric.thresholds.flag_below
    characteristics = tuple(CharacteristicScore(c, mean([s.baseline[c.id] for _, s in scored]),
                                                mean([s.trained[c.id] for _, s in scored]), flag)
                            for c in rubric.characteristics)
    examples = sorted((Example(item, s) for item, s in scored), key=lambda e: -e.gain)
    return BrandReport(rubric, len(items), tuple(s for _, s in scored), dict(unscored), characteristics,
                       tuple(e for e in examples if e.gain > 0)[:BEFORE_AFTER])
