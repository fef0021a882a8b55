"""The delivery gate's outcome in the completion notice (email and Slack; docs/quality-validation.md):
the job as it was right after Completed carries the evaluation recorded with it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.quality.gate import LABELS, Outcome


@dataclass(frozen=True)
class GateNotice:
    suffix: str                                   # after the headline
    facts: tuple[tuple[str, str], ...]
    reasons: tuple[str, ...]
    blocked: bool
    improvement: float | None                    # perplexity improvement %, from the evaluation


def gate_notice(job: Any) -> GateNotice:
    if job.evaluation is None:
        why = f"not evaluated ({job.evaluation_failure['reason']})" if job.evaluation_failure else "not evaluated"
        return GateNotice("", (("Quality gate", why),), (), False, None)
    summary: dict[str, Any] = job.evaluation["summary"]
    outcome = str(summary.get("outcome"))
    label = LABELS[Outcome(outcome)] if outcome in set(Outcome) else outcome
    facts = [("Quality gate", label)]
    ppl = summary.get("perplexity")
    if ppl:
        facts.append(("Perplexity", f"{ppl['baseline']:.1f} → {ppl['trained']:.1f}"
                                    f" ({ppl['improvement_percent']:.0f}% improvement, {ppl['badge']})"))
    if knowledge := summary.get("knowledge"):
        facts.append(("Knowledge retention", f"{knowledge['retention_percent']}% ({knowledge['verdict']})"))
    for probe in summary.get("probes") or []:
        facts.append((f"Probes: {probe['suite']}", f"{probe['retention_percent']}% retention ({probe['verdict']})"))
    return GateNotice(f" — {label}", tuple(facts), tuple(summary.get("reasons") or ()), job.delivery_blocked,
                      float(ppl["improvement_percent"]) if ppl else None)
