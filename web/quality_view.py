"""The job page's Quality tab (FR6.1.1, FR6.1.2, FR6.3.1, FR6.3.2) and its CSV exports: the gate's
outcome with its reasons, perplexity with its badge and bar chart, perplexity by persona, arc and
topic with the heatmap and recommendations, knowledge retention with the regressed questions, and
each probe suite by category against its threshold. The headline figures are the event's summary;
the tables are computed by the domain from the item-level results."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from domain.quality.delivery import OVERRIDE_JUSTIFICATION_MIN, block_reason
from domain.quality.gate import LABELS, Outcome
from domain.quality.perplexity import (
    CATEGORIES,
    Perplexity,
    by_category,
    colour_of,
    heatmap,
    perplexity,
    recommendations,
)
from domain.quality.results import EvaluationResults, SuiteAnswers
from domain.quality.retention import Retention, advice, regressions_by_category
from domain.quality.retention import by_category as retention_by_category
from web.pages.jobs_export import cell

CATEGORY_TITLES = {"persona": "Persona", "emotional_arc": "Emotional arc", "topic": "Training topic"}
OUTCOME_CLASSES = {"pass": "ok", "review": "warn", "block": "bad"}


def gate_view(job: Mapping[str, Any]) -> dict[str, Any] | None:
    """The gate's outcome as the page, the list and the API show it; None when not evaluated."""
    evaluation = job.get("evaluation")
    if not evaluation:
        return None
    summary = evaluation["summary"]
    outcome = str(summary.get("outcome"))
    override = job.get("delivery_override")
    blocked = outcome == Outcome.BLOCK and not override
    label = LABELS[Outcome(outcome)] if outcome in set(Outcome) else outcome
    return {"outcome": outcome, "label": label, "class": "ok" if override else OUTCOME_CLASSES.get(outcome, "warn"),
            "reasons": summary.get("reasons") or [],
            "notes": summary.get("notes") or [], "override": override, "blocked": blocked,
            "block_reason": block_reason(summary) if blocked else None, "attempt": evaluation["attempt"],
            "evaluated_by": evaluation.get("evaluated_by"), "at": evaluation["at"]}


def perplexity_view(summary: Mapping[str, Any], results: EvaluationResults | None) -> dict[str, Any] | None:
    figures = summary.get("perplexity")
    if not figures:
        return None
    whole = results.perplexity() if results is not None and results.samples else None
    view = dict(figures) | {"colour": colour_of(float(figures["improvement_percent"])),
                            "interpretation": whole.interpretation if whole else None,
                            "chart": bar_chart(float(figures["baseline"]), float(figures["trained"]))}
    if results is None or not results.samples:
        return view
    samples = results.samples
    personas, arcs, grid = heatmap(samples)
    view |= {"categories": [{"key": key, "title": CATEGORY_TITLES[key], "rows": [
                 {"name": r.name, **_figures(r.perplexity), "best": r.best, "worst": r.worst, "text": r.text}
                 for r in by_category(samples, key)]} for key in CATEGORIES],
             "heatmap": {"personas": personas, "arcs": arcs, "rows": [
                 {"persona": persona, "cells": [{"improvement": c.improvement, "colour": c.colour,
                                                 "conversations": c.conversations} for c in row]}
                 for persona, row in zip(personas, grid, strict=True)]},
             "recommendations": recommendations(samples, results.coverage)}
    return view


def _figures(p: Perplexity) -> dict[str, Any]:
    return {"baseline": p.baseline, "trained": p.trained, "improvement": p.improvement_percent,
            "colour": colour_of(p.improvement_percent), "conversations": p.conversations, "tokens": p.tokens}


WIDTH, HEIGHT, TOP, BOTTOM, LEFT = 360, 200, 16, 28, 40


def bar_chart(baseline: float, trained: float) -> dict[str, Any]:
    """FR6.1.1's "bar chart comparing baseline vs trained", server-drawn (SVG geometry)."""
    top = max(baseline, trained, 1e-9) * 1.15
    inner = HEIGHT - TOP - BOTTOM

    def bar(x: int, value: float, label: str, kind: str) -> dict[str, Any]:
        height = round(value / top * inner, 1)
        return {"x": x, "y": round(HEIGHT - BOTTOM - height, 1), "width": 90, "height": height, "label": label,
                "value": f"{value:.1f}", "kind": kind}

    return {"width": WIDTH, "height": HEIGHT, "baseline_y": HEIGHT - BOTTOM, "left": LEFT,
            "bars": [bar(LEFT + 40, baseline, "Base model", "baseline"), bar(LEFT + 180, trained, "Base + adapter",
                                                                               "trained")]}


def retention_view(suite: SuiteAnswers, shown: Mapping[str, Any], texts: Mapping[str, str]) -> dict[str, Any]:
    overall = suite.retention()
    categories = retention_by_category(suite.answers, suite.critical_categories)
    return dict(shown) | {
        "text": overall.text, "advice": advice(overall), "by_category": regressions_by_category(overall),
        "categories": [_category(c) for c in categories],
        "regressed": [{"id": a.question_id, "category": a.category, "difficulty": a.difficulty or "",
                       "question": texts.get(a.question_id, ""), "correct": a.correct, "baseline": a.baseline,
                       "trained": a.trained, "critical": a.critical} for a in overall.regressed]}


def _category(c: Retention) -> dict[str, Any]:
    return {"name": c.name, "questions": c.questions, "baseline_accuracy": c.baseline_accuracy,
            "trained_accuracy": c.trained_accuracy, "retention": c.percent, "threshold": c.threshold,
            "critical": c.critical, "below": c.below_threshold, "verdict": c.verdict, "regressed": len(c.regressed)}


def quality_context(job: Mapping[str, Any], results: EvaluationResults | None, unavailable: str | None,
                    texts: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """Everything the tab shows; `texts`: suite name → question id → text."""
    gate = gate_view(job)
    summary = (job.get("evaluation") or {}).get("summary") or {}
    context: dict[str, Any] = {
        "gate": gate, "failure": job.get("evaluation_failure"), "progress": job.get("evaluation_progress"),
        "suites": job.get("suites") or {"knowledge": None, "probes": []}, "evaluates": job.get("evaluates"),
        "unavailable": unavailable, "override_min": OVERRIDE_JUSTIFICATION_MIN,
        "perplexity": perplexity_view(summary, results), "knowledge": None, "probes": []}
    if results is not None and results.knowledge is not None and summary.get("knowledge"):
        context["knowledge"] = retention_view(results.knowledge, summary["knowledge"],
                                              texts.get(results.knowledge.suite, {}))
    elif summary.get("knowledge"):
        context["knowledge"] = summary_only(summary["knowledge"])
    shown = {p["suite"]: p for p in summary.get("probes") or []}
    if results is not None:
        context["probes"] = [retention_view(p, shown.get(p.suite, {"suite": p.suite}), texts.get(p.suite, {}))
                             for p in results.probes]
    else:
        context["probes"] = [summary_only(p) for p in shown.values()]
    return context


def summary_only(shown: Mapping[str, Any]) -> dict[str, Any]:
    """A suite's recorded figures when its item-level results cannot be read: no question list."""
    return dict(shown) | {"regressed": [], "categories": [
        {"name": c["suite"], "questions": c["questions"], "baseline_accuracy": c["baseline_accuracy"],
         "trained_accuracy": c["trained_accuracy"], "retention": c["retention_percent"], "threshold": c["threshold"],
         "critical": c["critical"], "below": Decimal(c["retention_percent"]) < Decimal(c["threshold"]),
         "regressed": c["regressed"]} for c in shown.get("categories") or []]}


# --- CSV exports --------------------------------------------------------------------------------

CATEGORY_COLUMNS = ("analysis", "category", "persona", "emotional_arc", "conversations", "tokens",
                    "baseline_perplexity", "trained_perplexity", "improvement_percent", "best", "worst",
                    "training_conversations")
QUESTION_COLUMNS = ("suite", "question_id", "category", "difficulty", "critical", "question", "correct_answer",
                    "baseline_answer", "trained_answer", "baseline_correct", "trained_correct", "regressed")


def category_rows(results: EvaluationResults) -> Iterable[dict[str, Any]]:
    """FR6.1.2 "Export detailed category analysis as CSV": overall, each persona, arc and topic,
    and each persona × arc cell with its training coverage."""
    if not results.samples:
        return
    whole = results.perplexity()
    assert whole is not None
    yield {"analysis": "overall", "category": "all", **_csv_figures(whole)}
    for key in CATEGORIES:
        for row in by_category(results.samples, key):
            yield {"analysis": key, "category": row.name, **_csv_figures(row.perplexity), "best": row.best,
                   "worst": row.worst}
    personas, arcs, grid = heatmap(results.samples)
    for persona, cells in zip(personas, grid, strict=True):
        for arc, square in zip(arcs, cells, strict=True):
            if square.improvement is None:
                continue
            pair = [s for s in results.samples if (s.persona, s.emotional_arc) == (persona, arc)]
            yield {"analysis": "persona_x_arc", "category": f"{persona} + {arc}", "persona": persona,
                   "emotional_arc": arc, **_csv_figures(perplexity(pair)),
                   "training_conversations": results.coverage.get((persona, arc), 0)}


def _csv_figures(p: Perplexity) -> dict[str, Any]:
    return {"conversations": p.conversations, "tokens": p.tokens, "baseline_perplexity": round(p.baseline, 4),
            "trained_perplexity": round(p.trained, 4), "improvement_percent": round(p.improvement_percent, 2)}


def question_rows(results: EvaluationResults, texts: Mapping[str, Mapping[str, str]]) -> Iterable[dict[str, Any]]:
    """FR6.3.1 "Export detailed question-by-question results as CSV", every suite."""
    for suite in ([results.knowledge] if results.knowledge else []) + list(results.probes):
        for a in suite.answers:
            yield {"suite": suite.suite, "question_id": a.question_id, "category": a.category,
                   "difficulty": a.difficulty or "", "critical": a.critical,
                   "question": texts.get(suite.suite, {}).get(a.question_id, ""), "correct_answer": a.correct,
                   "baseline_answer": a.baseline, "trained_answer": a.trained,
                   "baseline_correct": a.baseline == a.correct, "trained_correct": a.trained == a.correct,
                   "regressed": a.regressed}


def as_csv(columns: tuple[str, ...], rows: Iterable[Mapping[str, Any]]) -> str:
    """Texts a spreadsheet would run as a formula get a leading apostrophe (jobs_export.cell)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: cell(v) if isinstance(v, str) else v for k, v in row.items()})
    return out.getvalue()
