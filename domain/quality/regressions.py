"""Emotional-intelligence regressions (FR6.2.2): the scenarios whose trained reply scored below the
baseline's, their severity, the patterns among them (persona, emotional arc, topic), the gate's
findings and the corrective actions.

As everywhere in quality validation, figures are judged as shown: a scenario's score is the mean of
its three scores shown to one decimal; its decrease is (baseline - trained) ÷ baseline × 100 on those
shown scores, to a whole percent (half-even): "Scenario #23: Baseline 4.2/5, Trained 3.8/5 (-10%
regression)". The spec gives each severity two conditions; both must hold:

- major: a decrease of more than 20 % and a trained score below 3/5;
- moderate: a decrease of at least 10 % and a trained score below 4/5;
- minor: any other regression (under 10 %, or the trained score still 4/5 or more).

The gate: 10 % or more of the scored scenarios regressed, or any major regression, blocks delivery;
fewer regressions are a warning to review ("3 minor regressions detected. Review before client
delivery.")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from domain.quality.generations import Generated
from domain.quality.scores import Scored, shown

MINOR, MODERATE, MAJOR = "minor", "moderate", "major"
SEVERITIES = (MAJOR, MODERATE, MINOR)
BLOCK_SHARE = Decimal(10)  # percent of the scored scenarios
PATTERN_KEYS = (("persona", "persona"), ("emotional_arc", "emotional arc"), ("topic", "topic"))


def severity_of(decrease: Decimal, trained: Decimal) -> str:
    if decrease > 20 and trained < 3:
        return MAJOR
    if decrease >= 10 and trained < 4:
        return MODERATE
    return MINOR


@dataclass(frozen=True)
class Regression:
    number: int  # the scenario's place in its suite, from 1
    item: Generated
    baseline: Decimal  # shown scores
    trained: Decimal

    @property
    def decrease(self) -> Decimal:
        return ((self.baseline - self.trained) / self.baseline * 100).quantize(Decimal(1), ROUND_HALF_EVEN)

    @property
    def severity(self) -> str:
        return severity_of(self.decrease, self.trained)

    @property
    def text(self) -> str:
        return (f"Scenario #{self.number} ({self.item.id}): Baseline {self.baseline}/5, Trained {self.trained}/5 "
                f"(-{self.decrease}% regression, {self.severity})")


@dataclass(frozen=True)
class RegressionReport:
    scored: int
    regressions: tuple[Regression, ...]

    @property
    def share(self) -> Decimal:
        """Regressions as a whole percent of the scored scenarios (FR6.2.2's "3 of 50 scenarios (6%)")."""
        return (Decimal(len(self.regressions)) * 100 / self.scored).quantize(Decimal(1), ROUND_HALF_EVEN) \
            if self.scored else Decimal(0)

    @property
    def headline(self) -> str:
        return f"Number of regressions: {len(self.regressions)} of {self.scored} scenarios ({self.share}%)"

    def count(self, severity: str) -> int:
        return sum(r.severity == severity for r in self.regressions)

    @property
    def blocks(self) -> tuple[str, ...]:
        found = []
        if self.regressions and self.share >= BLOCK_SHARE:
            found.append(f"{self.headline}: {BLOCK_SHARE}% or more regressed")
        if majors := self.count(MAJOR):
            found.append(f"{majors} major regression{'s' if majors != 1 else ''} (a decrease over 20% to below 3/5)")
        return tuple(found)

    @property
    def warning(self) -> str | None:
        """FR6.2.2's "3 minor regressions detected. Review before client delivery." (None: none, or a block)."""
        if not self.regressions or self.blocks:
            return None
        counts = [f"{n} {severity}" for severity in SEVERITIES if (n := self.count(severity))]
        kinds = " and ".join(counts)
        plural = "s" if len(self.regressions) != 1 else ""
        return f"{kinds} regression{plural} detected. Review before client delivery."

    def common(self, key: str) -> list[tuple[str, int]]:
        """Values of `key` (persona, emotional_arc, topic) shared by at least two regressions and at least
        half of them, most first."""
        counts: dict[str, int] = {}
        for r in self.regressions:
            if value := getattr(r.item, key):
                counts[value] = counts.get(value, 0) + 1
        total = len(self.regressions)
        return [(v, n) for v, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= 2 and n * 2 >= total]

    @property
    def patterns(self) -> tuple[str, ...]:
        """FR6.2.2's root cause analysis: "2 of 3 regressions involve 'Pragmatic Skeptic' persona - may need
        more training data"."""
        return tuple(f"{n} of {len(self.regressions)} regressions involve '{value}' {noun} - may need more "
                     "training data" for key, noun in PATTERN_KEYS for value, n in self.common(key))

    @property
    def corrective_actions(self) -> tuple[str, ...]:
        """FR6.2.2's corrective actions, made specific to what regressed."""
        if not self.regressions:
            return ()
        personas = [v for v, _ in self.common("persona")] or list(
            dict.fromkeys(r.item.persona for r in self.regressions))
        named = ", ".join(f"'{p}'" for p in personas[:5])
        return (f"Add more training data for the affected scenarios: {named} conversations",
                "Adjust hyperparameters: reduce the learning rate (a retry with half of it is suggested), or "
                "increase regularization",
                "Retry training with a different configuration")


def regressions(items: Sequence[Generated], scores: Mapping[str, Scored]) -> RegressionReport:
    """Every scored scenario whose trained score (as shown) is below its baseline's, in suite order."""
    found = []
    for number, item in enumerate(items, start=1):
        scored = scores.get(item.key)
        if scored is None:
            continue
        baseline, trained = shown(scored.baseline_score), shown(scored.trained_score)
        if trained < baseline:
            found.append(Regression(number, item, baseline, trained))
    return RegressionReport(sum(item.key in scores for item in items), tuple(found))
