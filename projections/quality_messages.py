"""The event log's sentences for a job's quality validation (FR6.1, FR6.3): suites, re-evaluations,
progress, the gate's outcome with its reasons, a failed evaluation and a manager's release."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.aggregates.training_job import TrainingJob as J
from domain.quality.gate import LABELS, Outcome


def _suites(e: J.SuitesAttached) -> str:
    names = ([e.knowledge.name] if e.knowledge else []) + [p.name for p in e.probes]
    return f"Evaluation suites: {', '.join(names)}" if names else "Evaluation suites: none (perplexity only)"


def _evaluated(e: J.Evaluated) -> str:
    summary = e.summary
    outcome = summary.get("outcome")
    label = LABELS[Outcome(outcome)] if outcome in set(Outcome) else str(outcome)
    figures = []
    if ppl := summary.get("perplexity"):
        figures.append(f"perplexity {ppl['baseline']:.1f} → {ppl['trained']:.1f}"
                       f" ({ppl['improvement_percent']:.0f}% improvement, {ppl['badge']})")
    if knowledge := summary.get("knowledge"):
        figures.append(f"knowledge retention {knowledge['retention_percent']}% ({knowledge['verdict']})")
    for probe in summary.get("probes") or []:
        figures.append(f"{probe['suite']} retention {probe['retention_percent']}%")
    by = f" by re-evaluation job {e.evaluated_by}" if e.evaluated_by else ""
    reasons = summary.get("reasons") or []
    return (f"Evaluated{by}: {label}" + (f" — {'; '.join(figures)}" if figures else "")
            + (f". Reasons: {'; '.join(reasons)}" if reasons else ""))


def _judged(e: J.Judged) -> str:
    summary = e.summary
    outcome = summary.get("outcome")
    label = LABELS[Outcome(outcome)] if outcome in set(Outcome) else str(outcome)
    figures = []
    for source in summary.get("judged") or []:
        parts = []
        if ei := source.get("ei"):
            parts.append(f"EI {ei['overall']['baseline']} → {ei['overall']['trained']}/5"
                         f" ({ei['overall']['improvement_percent']}% improvement, {ei['badge']})")
        if found := source.get("regressions"):
            parts.append(f"{found['count']} of {found['scored']} scenarios regressed")
        if brand := source.get("brand_voice"):
            parts.append(f"brand voice {brand['overall']}/5 ({brand['alignment_percent']}% alignment,"
                         f" {brand['badge']})")
        figures.append(f"{source['label']}: {', '.join(parts) or 'no score'}")
    reasons = summary.get("reasons") or []
    return (f"Replies scored: {label}" + (f" — {'; '.join(figures)}" if figures else "")
            + (f". Reasons: {'; '.join(reasons)}" if reasons else "")
            + (". The manager's release stands" if e.keeps_release else ""))


MESSAGES: dict[type, Callable[[Any], str]] = {
    J.SuitesAttached: _suites,
    J.EvaluationRequested: lambda e: f"Re-evaluation of job {e.evaluates}'s adapter {e.adapter.name}, by {e.actor}",
    J.EvaluationProgressed: lambda e: f"Evaluating {e.part}: {e.done} of {e.total}",
    J.Evaluated: _evaluated,
    J.EvaluationFailed: lambda e: (f"Evaluation results could not be read ({e.reason}): no quality figures were"
                                   " recorded, and the job completes without a gate outcome"),
    J.DeliveryOverridden: lambda e: (f"Delivery released by {e.actor} despite the quality gate's {e.outcome}:"
                                     f" {e.justification}"),
    J.Judged: _judged,
    J.JudgingCharged: lambda e: (f"Judging cost so far: ${e.cost:.4f} for {e.items} replies judged"
                                 f" ({e.prompt_tokens:,} prompt and {e.completion_tokens:,} completion tokens)"),
}
WARNINGS = frozenset({J.EvaluationFailed, J.DeliveryOverridden})
METRICS = frozenset({J.EvaluationProgressed, J.JudgingCharged})
WARNS_WHEN: dict[type, Callable[[Any], bool]] = {J.Evaluated: lambda e: e.summary.get("outcome") != Outcome.PASS,
                                                 J.Judged: lambda e: e.summary.get("outcome") != Outcome.PASS}
