"""A catalogued training file as the new-job page's file step shows it (FR1.1.1): its statistics,
quality and whether a job can be created from it."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.training_file import IneligibleTrainingFileError, check_eligibility, quality_indicator

SCORES = (("empathy", "Empathy"), ("clarity", "Clarity"), ("appropriateness", "Appropriateness"))
SCAFFOLDING = (("personas", "Personas"), ("emotional_arcs", "Emotional arcs"), ("topics", "Topics"))


def readiness(row: Mapping[str, Any], for_job: bool = False) -> str | None:
    """None when a job can be created from the file, else the spec's refusal (FR1.1.1);
    `for_job`: the file of the job being edited, which it may keep using."""
    try:
        check_eligibility(found=True, stored=True, enrichment_status="completed",
                          first_problem=(row["problems"] or [None])[0], conversation_count=row["conversation_count"],
                          in_use=row["active_jobs"] > 0 and not for_job)
    except IneligibleTrainingFileError as exc:
        return str(exc)
    return None


def number(value: Any) -> Decimal | None:
    """A score as stored (a Decimal in the aggregate, a string in the read model's JSON)."""
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


def file_card(row: Mapping[str, Any], for_job: bool = False) -> dict[str, Any]:
    stats = row["stats"] or {}
    quality = stats.get("quality") or {}
    refusal = readiness(row, for_job)
    return {
        "id": str(row["id"]), "name": row["name"], "conversations": row["conversation_count"],
        "pairs": row["pair_count"], "quality": row["avg_quality"],
        "quality_indicator": quality_indicator(row["avg_quality"]),
        "scores": [(label, number(quality.get(key))) for key, label in SCORES],
        "scaffolding": [(label, stats.get(key) or []) for key, label in SCAFFOLDING],
        "human_reviewed": stats.get("human_reviewed_percent"), "size_bytes": stats.get("size_bytes"),
        "registered_at": row["registered_at"], "refusal": refusal,
        "example_tokens": stats.get("example_tokens"),  # (estimated tokens, examples): the length warning
        "readiness": "✓ Ready for Training" if refusal is None else f"⚠ {refusal}",
    }
