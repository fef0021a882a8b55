"""The delivery gate: one rule that turns a job's evaluation into pass, review or block, with the
reasons a person reads (FR6.3.1's and FR6.3.2's quality gates; FR6.1.1's badge is shown, not gated).

- knowledge retention < 90 % blocks (catastrophic forgetting); 90-94 % needs a review;
- a probe category below its threshold blocks when it is critical (named by the suite, e.g.
  compliance at 100 %, or holding a question marked critical), and needs a review otherwise;
- emotional-intelligence regressions (FR6.2.2) from each source that scored every scenario: 10 % or
  more of the scenarios regressed, or any major regression, blocks; fewer are a warning to review;
- generated replies not scored yet (by a model judge or people), or some a judge could not score,
  need a review;
- a blocked adapter is released by a manager's recorded override or by a new run that passes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from domain.quality.perplexity import Perplexity
from domain.quality.regressions import RegressionReport
from domain.quality.retention import PASSED, WARNING, Retention


class Outcome(StrEnum):
    PASS = "pass"
    REVIEW = "review"
    BLOCK = "block"


LABELS = {Outcome.PASS: "✓ Approved for delivery", Outcome.REVIEW: "⚠ Review before client delivery",
          Outcome.BLOCK: "✗ Delivery blocked"}


@dataclass(frozen=True)
class ProbeResult:
    """One client probe suite: its overall retention and each category's, against its threshold."""

    suite: str
    overall: Retention
    categories: Sequence[Retention]


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reasons: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def label(self) -> str:
        return LABELS[self.outcome]


def judge(perplexity: Perplexity | None, knowledge: Retention | None,
          probes: Sequence[ProbeResult] = (), regressions: Sequence[tuple[str, RegressionReport]] = (),
          pending: Sequence[str] = ()) -> Verdict:
    """`regressions`: (who scored, their report) for each complete source; `pending`: what is not scored yet."""
    blocks, reviews, notes = [], [], []
    if perplexity is not None:
        notes.append(f"Perplexity {perplexity.baseline:.1f} → {perplexity.trained:.1f}: "
                     f"{perplexity.improvement_percent:.0f}% improvement ({perplexity.badge})")
    if knowledge is not None:
        told = f"Knowledge retention {knowledge.percent}% ({knowledge.verdict})"
        if knowledge.percent < WARNING:
            blocks.append(f"{told}: below 90%, catastrophic forgetting detected")
        elif knowledge.percent < PASSED:
            reviews.append(f"{told}: minor knowledge loss, 90-94%")
    for probe in probes:
        for category in probe.categories:
            if not category.below_threshold:
                continue
            line = (f"{probe.suite}: {category.name} knowledge {category.percent}% retention "
                    f"(acceptable threshold: {category.threshold}%)")
            (blocks if category.critical else reviews).append(line)
    for source, report in regressions:
        blocks.extend(f"EI regressions ({source}): {finding}" for finding in report.blocks)
        if report.warning:
            reviews.append(f"EI regressions ({source}): {report.warning}")
    reviews.extend(pending)
    if blocks:
        return Verdict(Outcome.BLOCK, tuple(blocks + reviews), tuple(notes))
    if reviews:
        return Verdict(Outcome.REVIEW, tuple(reviews), tuple(notes))
    return Verdict(Outcome.PASS, (), tuple(notes))
