"""The delivery gate's outcome in the completion notice (email and Slack; docs/quality-validation.md):
the job as it was right after Completed carries the evaluation recorded with it. Its generated replies
(FR6.2.1, FR6.4.1) are scored later: the notice says they await scoring, and the "replies scored" notice
(TrainingJob.Judged) carries their figures."""

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
    facts.extend(judged_facts(summary))
    return GateNotice(f" — {label}", tuple(facts), tuple(summary.get("reasons") or ()), job.delivery_blocked,
                      float(ppl["improvement_percent"]) if ppl else None)


def judged_facts(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """Each complete source's EI, regressions and brand voice; or that the replies await scoring."""
    generated = summary.get("generations")
    if not generated:
        return []
    sources = [s for s in summary.get("judged") or [] if s.get("complete")]
    if not sources:
        parts = [f"{generated['ei']['scenarios']} EI scenarios"] if generated.get("ei") else []
        voice = generated.get("brand_voice")
        parts += [f"{voice['responses']} brand-voice responses"] if voice else []
        return [("Replies to score", f"{' and '.join(parts)}: awaiting a model judge or reviewers")]
    facts = []
    for source in sources:
        who = source["label"]
        if ei := source.get("ei"):
            overall = ei["overall"]
            facts.append((f"Emotional intelligence ({who})", f"{overall['baseline']} → {overall['trained']}/5"
                                                              f" ({overall['improvement_percent']}% improvement,"
                                                              f" {ei['badge']})"))
        if found := source.get("regressions"):
            facts.append((f"EI regressions ({who})", found["headline"].removeprefix("Number of regressions: ")))
        if brand := source.get("brand_voice"):
            facts.append((f"Brand voice ({who})", f"{brand['overall']}/5, {brand['alignment_percent']}% alignment"
                                                   f" ({brand['badge']})"))
    return facts
