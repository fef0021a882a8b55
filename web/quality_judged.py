"""The judged parts of the Quality tab (FR6.2.1, FR6.2.2, FR6.4.1, FR6.4.2) and their CSV exports: for each
source that scored the replies (the model judge, people), the EI benchmark with its badge and ten best
before/after examples, the regressions with their severity, patterns and corrective actions, the brand
voice per characteristic with its badge, flags and five examples; the judge's progress and cost; the
people's progress and disagreement. Computed by the domain from the item-level results and the review
(as it stands: a source still scoring is shown as partial; only a complete one counts for the gate)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from domain.aggregates.quality_review import QualityReview
from domain.quality.brand_voice import BrandReport
from domain.quality.ei_report import EiReport
from domain.quality.ei_report import colour_of as badge_colour
from domain.quality.generations import BRAND_VOICE, EI, PART_TITLES, Generated, Generations
from domain.quality.judged import reports
from domain.quality.regressions import RegressionReport
from domain.quality.scores import Scored, SourceScores, shown

DISAGREE = Decimal(2)  # reviewers this far apart on one score are shown side by side


def judged_context(generations: Generations | None, review: QualityReview | None, reviewer: str,
                   judge_configured: bool) -> dict[str, Any] | None:
    """None when the evaluation generated no replies (an older agent, or none asked for)."""
    if generations is None or not generations.parts:
        return None
    parts = [{"part": p, "title": PART_TITLES[p], "total": len(generations.items(p)),
              "mine": sum(1 for g in generations.items(p) if review is not None and reviewer in review.people.get(
                  g.key, {}))} for p in generations.parts]
    context: dict[str, Any] = {"parts": parts, "judge_configured": judge_configured, "sources": [],
                               "rubric": generations.rubric.name if generations.rubric else None,
                               "max_new_tokens": generations.max_new_tokens, "judge": None, "people": None}
    if review is None:
        return context
    total = len(review.items)
    if review.judged or review.unscored:
        context["judge"] = {"done": len(review.judged) + len(review.unscored), "scored": len(review.judged),
                            "total": total,
                            "unscored": [{"item": k, **u} for k, u in review.unscored.items()],
                            "cost": review.cost, "prompt_tokens": review.prompt_tokens,
                            "completion_tokens": review.completion_tokens, "complete": review.judge_complete}
    if review.people:
        counts = {r: len(review.scored_by(r)) for r in review.reviewers}
        context["people"] = {"reviewers": counts, "total": total, "complete": review.people_complete,
                             "scored_items": sum(1 for k in review.items if review.people.get(k))}
    context["sources"] = [source_view(generations, source) for source in review.sources()]
    return context


def source_view(generations: Generations, source: SourceScores) -> dict[str, Any]:
    ei, found, brand = reports(generations, source)
    return {"source": source.source, "label": source.label, "complete": source.complete,
            "scored": len(source.items), "total": len(generations.all_items()),
            "ei": ei_view(ei) if ei else None, "regressions": regression_view(found) if found else None,
            "brand": brand_view(brand) if brand else None,
            "disagreements": disagreements(generations, source)}


def ei_view(report: EiReport) -> dict[str, Any]:
    return {"headline": report.headline, "badge": report.badge, "colour": badge_colour(report.badge),
            "improvement": report.improvement, "baseline": shown(report.overall.baseline),
            "trained": shown(report.overall.trained), "scored": len(report.scored), "scenarios": report.scenarios,
            "unscored": len(report.unscored),
            "subscores": [{"name": c.name, "baseline": shown(c.baseline), "trained": shown(c.trained),
                           "improvement": c.improvement, "text": f"{c.name} subscore: {c.text}"}
                          for c in report.subscores],
            "best": [example(e.item, e.scored) | {"notes": e.notes} for e in report.best]}


def regression_view(report: RegressionReport) -> dict[str, Any]:
    return {"headline": report.headline, "count": len(report.regressions), "share": report.share,
            "blocks": list(report.blocks), "warning": report.warning, "patterns": list(report.patterns),
            "corrective_actions": list(report.corrective_actions),
            "severity": {s: report.count(s) for s in ("major", "moderate", "minor")},
            "list": [{"text": r.text, "severity": r.severity, "number": r.number, "id": r.item.id,
                      "persona": r.item.persona, "arc": r.item.emotional_arc, "topic": r.item.topic,
                      "baseline": r.baseline, "trained": r.trained, "decrease": r.decrease}
                     for r in report.regressions]}


def brand_view(report: BrandReport) -> dict[str, Any]:
    return {"headline": report.headline, "badge": report.badge, "colour": badge_colour(report.badge),
            "overall": report.overall, "baseline_overall": report.baseline_overall, "alignment": report.alignment,
            "meets_target": report.meets_target, "scored": len(report.scored), "responses": report.responses,
            "rubric": report.rubric.name,
            "characteristics": [{"name": c.characteristic.name, "description": c.characteristic.description,
                                 "baseline": shown(c.baseline), "trained": shown(c.trained), "word": c.word,
                                 "flagged": c.flagged, "text": c.text} for c in report.characteristics],
            "flagged": [c.text for c in report.flagged],
            "best": [example(e.item, e.scored) for e in report.best]}


def example(item: Generated, scored: Scored) -> dict[str, Any]:
    return {"id": item.id, "prompt": item.prompt, "persona": item.persona, "topic": item.topic,
            "baseline": item.baseline, "trained": item.trained, "baseline_score": shown(scored.baseline_score),
            "trained_score": shown(scored.trained_score), "reasons": list(scored.reasons)}


def disagreements(generations: Generations, source: SourceScores) -> list[dict[str, Any]]:
    """Items where several reviewers differ by DISAGREE points or more on some score, widest first."""
    items = {g.key: g for g in generations.all_items()}
    wide = [s for s in source.items.values() if s.scorers > 1 and s.spread >= DISAGREE]
    return [{"item": items[s.item_id].id, "part": PART_TITLES[items[s.item_id].part], "spread": s.spread,
             "scorers": s.scorers} for s in sorted(wide, key=lambda s: (-s.spread, s.item_id)) if s.item_id in items]


# --- CSV exports (FR6.2.1 "all 50 scenarios", FR6.4.1 "30 responses × 10 characteristics") ----------------

EI_COLUMNS = ("source", "scenario", "id", "category", "difficulty", "persona", "emotional_arc", "topic",
              "baseline_empathy", "baseline_clarity", "baseline_appropriateness", "baseline_score",
              "trained_empathy", "trained_clarity", "trained_appropriateness", "trained_score", "regression",
              "decrease_percent", "severity", "scorers", "disagreement", "judge_reason", "unscored_reason", "prompt",
              "baseline_response", "trained_response")


def ei_rows(generations: Generations, sources: Sequence[SourceScores]) -> Iterable[dict[str, Any]]:
    """One row per scenario per source (every scenario, scored or not)."""
    for source in sources:
        _, found, _ = reports(generations, source)
        regressed = {r.item.key: r for r in found.regressions} if found else {}
        for number, item in enumerate(generations.ei, start=1):
            scored = source.items.get(item.key)
            row: dict[str, Any] = {"source": source.label, "scenario": number, "id": item.id,
                                   "category": item.category, "difficulty": item.difficulty, "persona": item.persona,
                                   "emotional_arc": item.emotional_arc, "topic": item.topic, "prompt": item.prompt,
                                   "baseline_response": item.baseline, "trained_response": item.trained,
                                   "unscored_reason": source.unscored.get(item.key, "")}
            if scored is not None:
                row |= _scores(scored) | {"scorers": scored.scorers, "disagreement": scored.spread,
                                          "judge_reason": " ".join(scored.reasons)}
                regression = regressed.get(item.key)
                row |= {"regression": regression is not None,
                        "decrease_percent": regression.decrease if regression else "",
                        "severity": regression.severity if regression else ""}
            yield row


def brand_columns(generations: Generations) -> tuple[str, ...]:
    ids = [c.id for c in generations.characteristics(BRAND_VOICE)]
    return ("source", "response", "id", "persona", "topic", *ids, "trained_score", *(f"baseline_{i}" for i in ids),
            "baseline_score", "scorers", "disagreement", "judge_reason", "unscored_reason", "prompt",
            "baseline_response", "trained_response")


def brand_rows(generations: Generations, sources: Sequence[SourceScores]) -> Iterable[dict[str, Any]]:
    for source in sources:
        for number, item in enumerate(generations.brand_voice, start=1):
            scored = source.items.get(item.key)
            row: dict[str, Any] = {"source": source.label, "response": number, "id": item.id, "persona": item.persona,
                                   "topic": item.topic, "prompt": item.prompt, "baseline_response": item.baseline,
                                   "trained_response": item.trained,
                                   "unscored_reason": source.unscored.get(item.key, "")}
            if scored is not None:
                row |= {k: shown(v) for k, v in scored.trained.items()}
                row |= {f"baseline_{k}": shown(v) for k, v in scored.baseline.items()}
                row |= {"trained_score": shown(scored.trained_score), "baseline_score": shown(scored.baseline_score),
                        "scorers": scored.scorers, "disagreement": scored.spread,
                        "judge_reason": " ".join(scored.reasons)}
            yield row


def _scores(scored: Scored) -> dict[str, Any]:
    out: dict[str, Any] = {f"baseline_{k}": shown(v) for k, v in scored.baseline.items()}
    out |= {f"trained_{k}": shown(v) for k, v in scored.trained.items()}
    return out | {"baseline_score": shown(scored.baseline_score), "trained_score": shown(scored.trained_score)}


def has_part(generations: Generations | None, part: str) -> bool:
    return generations is not None and bool(generations.items(part))


PARTS: Mapping[str, str] = {EI: "ei", BRAND_VOICE: "brand-voice"}
