"""The judged parts of an evaluation (FR6.2.1, FR6.2.2, FR6.4.1) as a job's summary carries them: for
each source (the model judge, people), its EI benchmark, its regressions and its brand-voice report,
in JSON-safe form (scores as strings, as shown); and what the gate takes from them: the regressions
of each complete source, and a review reason while replies wait to be scored."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from domain.quality.brand_voice import BrandReport, brand_report
from domain.quality.ei_report import EiReport, ei_report
from domain.quality.generations import BRAND_VOICE, EI, Generations
from domain.quality.regressions import RegressionReport, regressions
from domain.quality.scores import SourceScores, shown

NOUNS = {EI: ("emotional intelligence", "scenarios"), BRAND_VOICE: ("brand voice", "responses")}


def reports(generations: Generations, source: SourceScores
            ) -> tuple[EiReport | None, RegressionReport | None, BrandReport | None]:
    def unscored(part: str) -> dict[str, str]:
        keys = {g.key for g in generations.items(part)}
        return {k: why for k, why in source.unscored.items() if k in keys}

    ei = ei_report(generations.ei, source.items, unscored(EI)) if generations.ei else None
    found = regressions(generations.ei, source.items) if ei is not None else None
    brand = (brand_report(generations.rubric, generations.brand_voice, source.items, unscored(BRAND_VOICE))
             if generations.rubric is not None and generations.brand_voice else None)
    return ei, found, brand


def source_summary(generations: Generations, source: SourceScores) -> dict[str, Any]:
    ei, found, brand = reports(generations, source)
    return {"source": source.source, "label": source.label, "complete": source.complete,
            "scorers": list(source.scorers), "items": len(generations.all_items()),
            "scored": len(source.items), "unscored": len(source.unscored),
            "ei": ei_summary(ei) if ei else None, "regressions": regression_summary(found) if found else None,
            "brand_voice": brand_summary(brand) if brand else None}


def _s(value: Decimal) -> str:
    return str(shown(value))


def ei_summary(report: EiReport) -> dict[str, Any]:
    return {"scenarios": report.scenarios, "scored": len(report.scored), "unscored": len(report.unscored),
            "overall": {"baseline": _s(report.overall.baseline), "trained": _s(report.overall.trained),
                        "improvement_percent": str(report.improvement)},
            "subscores": [{"name": c.name, "baseline": _s(c.baseline), "trained": _s(c.trained),
                           "improvement_percent": str(c.improvement)} for c in report.subscores],
            "badge": report.badge, "headline": report.headline}


def regression_summary(report: RegressionReport) -> dict[str, Any]:
    return {"scored": report.scored, "count": len(report.regressions), "share_percent": str(report.share),
            "minor": report.count("minor"), "moderate": report.count("moderate"), "major": report.count("major"),
            "headline": report.headline, "warning": report.warning, "blocks": list(report.blocks),
            "patterns": list(report.patterns), "corrective_actions": list(report.corrective_actions),
            "personas": [v for v, _ in report.common("persona")],
            "list": [{"id": r.item.id, "number": r.number, "baseline": str(r.baseline), "trained": str(r.trained),
                      "decrease_percent": str(r.decrease), "severity": r.severity, "persona": r.item.persona,
                      "emotional_arc": r.item.emotional_arc, "topic": r.item.topic, "text": r.text}
                     for r in report.regressions]}


def brand_summary(report: BrandReport) -> dict[str, Any]:
    return {"rubric": report.rubric.name, "responses": report.responses, "scored": len(report.scored),
            "unscored": len(report.unscored), "overall": str(report.overall),
            "baseline_overall": str(report.baseline_overall), "alignment_percent": str(report.alignment),
            "badge": report.badge, "target_score": str(report.rubric.thresholds.target_score),
            "meets_target": report.meets_target, "headline": report.headline,
            "characteristics": [{"id": c.characteristic.id, "name": c.characteristic.name, "baseline": _s(c.baseline),
                                 "trained": _s(c.trained), "word": c.word, "flagged": c.flagged, "text": c.text}
                                for c in report.characteristics],
            "flagged": [c.text for c in report.flagged]}


def gate_findings(generations: Generations | None, sources: Sequence[SourceScores]
                  ) -> tuple[list[tuple[str, RegressionReport]], list[str]]:
    """(each complete source's regressions, the review reasons for what is not scored)."""
    if generations is None or not generations.parts:
        return [], []
    complete = [s for s in sources if s.complete]
    found = []
    pending = []
    for source in complete:
        _, report, _ = reports(generations, source)
        if report is not None:
            found.append((source.label, report))
        if source.unscored:
            pending.append(f"The {source.label} could not score {len(source.unscored)} of "
                           f"{len(generations.all_items())} replies: review them on the Quality tab")
    if not complete:
        told = " and ".join(f"{NOUNS[p][0]} ({len(generations.items(p))} {NOUNS[p][1]})" for p in generations.parts)
        pending.append(f"{told[0].upper()}{told[1:]} not scored yet: a model judge or reviewers score the replies"
                       " (Quality tab)")
    return found, pending
