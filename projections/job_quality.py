"""What the jobs read model keeps of a job's quality validation (FR6.1, FR6.3): the gate's outcome
and the headline figures, as columns the list, /compare, the analytics and the finance filters use,
taken from the summary the Evaluated event carries (never recomputed here)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.aggregates.training_job import TrainingJob as J


def suites(event: J.SuitesAttached) -> dict[str, Any]:
    def one(ref: Any) -> dict[str, Any]:
        return {"id": str(ref.suite_id), "name": ref.name}

    return {"knowledge": one(event.knowledge) if event.knowledge else None, "probes": [one(p) for p in event.probes],
            "ei": one(event.ei) if event.ei else None, "rubric": one(event.rubric) if event.rubric else None}


def evaluated(event: J.Evaluated, job: Any) -> None:
    """The latest evaluation replaces an earlier one, and any override of it."""
    summary = event.summary
    perplexity = summary.get("perplexity") or {}
    knowledge = summary.get("knowledge") or {}
    job.evaluation = {"results": event.results.as_dict(), "summary": summary, "attempt": event.attempt,
                      "evaluated_by": str(event.evaluated_by) if event.evaluated_by else None,
                      "at": event.at.isoformat()}
    job.quality_outcome = str(summary.get("outcome")) if summary.get("outcome") else None
    job.quality_overridden, job.delivery_override = False, None
    job.perplexity_baseline = _float(perplexity.get("baseline"))
    job.perplexity_trained = _float(perplexity.get("trained"))
    job.perplexity_improvement = _decimal(perplexity.get("improvement_percent"))
    job.retention_percent = _decimal(knowledge.get("retention_percent"))
    job.evaluation_failure, job.evaluation_progress = None, None
    job.judging_status = "pending" if summary.get("generations") else None
    job.ei_improvement = job.ei_regressions = job.brand_alignment = None


def judged(event: J.Judged, job: Any) -> None:
    """The evaluation's summary with its replies' scores: the gate's outcome and the headline figures of the
    first complete source (the model judge's, else the people's)."""
    summary = event.summary
    job.evaluation = dict(job.evaluation or {}) | {"summary": summary, "judged_at": event.at.isoformat()}
    job.quality_outcome = str(summary.get("outcome")) if summary.get("outcome") else None
    if not event.keeps_release:
        job.quality_overridden, job.delivery_override = False, None
    sources = [s for s in summary.get("judged") or [] if s.get("complete")]
    if any(s["source"] == "model" for s in sources):
        job.judging_status = "judged"
    first = sources[0] if sources else {}
    ei, brand = first.get("ei") or {}, first.get("brand_voice") or {}
    job.ei_improvement = _decimal((ei.get("overall") or {}).get("improvement_percent"))
    job.ei_regressions = (first.get("regressions") or {}).get("count")
    job.brand_alignment = _decimal(brand.get("alignment_percent"))


def judging_charged(event: J.JudgingCharged, job: Any) -> None:
    """The job's one review's cumulative cost (a job pays for the review of its own pod's results)."""
    job.judging_cost = event.cost


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    return Decimal(str(value))


# The gate's outcome as a filter (the jobs list, finance and analytics): conditions on `jobs`.
QUALITY_FILTERS = {
    "pass": "quality_outcome = 'pass'",
    "review": "quality_outcome = 'review'",
    "block": "quality_outcome = 'block' AND NOT quality_overridden",
    "released": "quality_outcome = 'block' AND quality_overridden",
    "not_evaluated": "quality_outcome IS NULL",
}
QUALITY_LABELS = {"pass": "Approved (pass)", "review": "Review", "block": "Blocked",
                  "released": "Blocked, released by a manager", "not_evaluated": "Not evaluated"}
# Light columns for lists and comparisons (the full evaluation is on the job's own row).
LIST_COLUMNS = ("quality_outcome, quality_overridden, perplexity_baseline, perplexity_trained, perplexity_improvement,"
                " retention_percent, evaluates, ei_improvement, ei_regressions, brand_alignment, judging_status,"
                " judging_cost")
DETAIL_COLUMNS = "evaluation, evaluation_failure, evaluation_progress, delivery_override, suites"


def check_quality_filter(value: str | None) -> None:
    if value is not None and value not in QUALITY_FILTERS:
        raise ValueError(f"unknown quality outcome {value!r}; known: {', '.join(QUALITY_FILTERS)}")


def jobs_with_outcome(value: str, id_column: str = "job_id") -> str:
    """A condition on another read model's rows (`id_column`: their job id) for one gate outcome."""
    check_quality_filter(value)
    return f"{id_column} IN (SELECT id FROM jobs WHERE {QUALITY_FILTERS[value]})"


def judging_pending() -> str:
    """Evaluated jobs whose generated replies the model judge has not finished, oldest first (the judging
    loop's work, handlers/judging.py)."""
    return "SELECT id FROM jobs WHERE judging_status = 'pending' ORDER BY created_at, id"
