"""Knowledge retention (FR6.3.1) and client domain probes (FR6.3.2): each model's answer to each
multiple-choice question (the choice it gives the highest log-likelihood), accuracy, retention =
trained accuracy ÷ baseline accuracy, the questions that regressed, and each category's retention
against its threshold (critical categories: 100 % unless the suite says otherwise).

Percentages are judged as they are shown, rounded half-even to a whole percent (FR6.3.1's "97.7 %,
rounds to 98 %"), so a figure and its verdict never disagree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

PASSED, WARNING = Decimal(95), Decimal(90)
VERDICTS = ((PASSED, "✓ Passed"), (WARNING, "⚠ Warning"), (Decimal(0), "✗ Failed"))


@dataclass(frozen=True)
class Answer:
    question_id: str
    category: str
    difficulty: str | None
    correct: str
    baseline: str
    trained: str
    critical: bool = False

    @property
    def regressed(self) -> bool:
        return self.baseline == self.correct and self.trained != self.correct


@dataclass(frozen=True)
class Retention:
    """Both models' results on one set of questions (a suite, or one category of it)."""

    name: str
    questions: int
    baseline_correct: int
    trained_correct: int
    regressed: tuple[Answer, ...]
    threshold: Decimal = PASSED
    critical: bool = False

    @property
    def baseline_accuracy(self) -> Decimal:
        return whole_percent(self.baseline_correct, self.questions)

    @property
    def trained_accuracy(self) -> Decimal:
        return whole_percent(self.trained_correct, self.questions)

    @property
    def percent(self) -> Decimal:
        """Trained ÷ baseline correct answers; 100 when the base model answered none right (nothing
        it knew could be lost)."""
        return whole_percent(self.trained_correct, self.baseline_correct) if self.baseline_correct else Decimal(100)

    @property
    def verdict(self) -> str:
        return next(label for floor, label in VERDICTS if self.percent >= floor)

    @property
    def below_threshold(self) -> bool:
        return self.percent < self.threshold

    @property
    def text(self) -> str:
        """"Retention rate: 98% (85/87 = 97.7%)"."""
        exact = (Decimal(self.trained_correct) * 100 / self.baseline_correct).quantize(Decimal("0.1")) \
            if self.baseline_correct else Decimal(100)
        return (f"Retention rate: {self.percent}% ({self.trained_correct}/{self.baseline_correct} = {exact}%)"
                if self.baseline_correct else "Retention rate: 100% (the base model answered none correctly)")


def whole_percent(part: int, whole: int) -> Decimal:
    return (Decimal(part) * 100 / whole).quantize(Decimal(1), ROUND_HALF_EVEN) if whole else Decimal(0)


def retention(name: str, answers: Sequence[Answer], threshold: Decimal = PASSED, critical: bool = False
              ) -> Retention:
    if not answers:
        raise ValueError("retention needs at least one answered question")
    return Retention(name, len(answers), sum(a.baseline == a.correct for a in answers),
                     sum(a.trained == a.correct for a in answers), tuple(a for a in answers if a.regressed),
                     threshold, critical)


def by_category(answers: Sequence[Answer], critical: Mapping[str, Decimal]) -> list[Retention]:
    """Each category's retention in order of first appearance; a critical category (the suite's
    thresholds, or a question marked critical: 100 %) is held to its own threshold."""
    groups: dict[str, list[Answer]] = {}
    for answer in answers:
        groups.setdefault(answer.category, []).append(answer)
    return [retention(name, group, threshold_of(name, group, critical),
                      name in critical or any(a.critical for a in group)) for name, group in groups.items()]


def threshold_of(category: str, answers: Sequence[Answer], critical: Mapping[str, Decimal]) -> Decimal:
    if category in critical:
        return Decimal(critical[category])
    return Decimal(100) if any(a.critical for a in answers) else PASSED


def regressions_by_category(result: Retention) -> list[str]:
    """"5 retirement planning questions regressed", most first."""
    counts: dict[str, int] = {}
    for answer in result.regressed:
        counts[answer.category] = counts.get(answer.category, 0) + 1
    return [f"{n} {category} question{'s' if n != 1 else ''} regressed"
            for category, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def advice(result: Retention) -> list[str]:
    """FR6.3.1's recommendation when knowledge was lost."""
    if result.percent >= PASSED:
        return []
    return [*regressions_by_category(result), "Retrain with lower learning rate to prevent overfitting"]
