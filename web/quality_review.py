"""People scoring a job's generated replies (FR6.2.1 "Human Evaluation", FR6.4.1 "Human evaluators score each
response"): the review of the job's results (opened on first use, its blind orders drawn and recorded), a
reviewer's scores of one item as shown (Response 1 and 2, never which is the baseline), and — once every
item has a reviewer's scores — the job's summary recomputed with them (TrainingJob.Judged)."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from litestar.datastructures import State

from domain.aggregates.quality_review import QualityReview, complete_sources
from domain.quality.results import EvaluationResults, summary
from domain.values import ArtifactRef
from web.clock import utcnow


def results_ref(job: dict[str, Any]) -> ArtifactRef | None:
    evaluation = job.get("evaluation")
    return ArtifactRef(**evaluation["results"]) if evaluation else None


async def review_of(state: State, job: dict[str, Any]) -> QualityReview | None:
    ref = results_ref(job)
    if ref is None:
        return None
    return await asyncio.to_thread(state.store.app.review, QualityReview.id_for(ref.sha256))


async def open_review(state: State, job: dict[str, Any], results: EvaluationResults) -> QualityReview:
    ref = results_ref(job)
    assert ref is not None and results.generations is not None
    producer = UUID(str((job.get("evaluation") or {}).get("evaluated_by") or job["id"]))
    return await asyncio.to_thread(state.store.app.open_review, producer, ref, results.generations, utcnow())


async def score(state: State, job: dict[str, Any], results: EvaluationResults, reviewer: str, item: str,
                first: dict[str, Any], second: dict[str, Any]) -> QualityReview:
    """Saves the reviewer's scores; when every item now has a reviewer's, the jobs evaluated on these results
    (this one and the job whose pod produced them) record the summary with the people's averages."""
    review = await open_review(state, job, results)
    app = state.store.app
    review = await asyncio.to_thread(app.score_by_person, review.id, item, reviewer, first, second, utcnow())
    sources = complete_sources(review)
    if review.people_complete and sources:
        figures = await asyncio.to_thread(summary, results, sources)
        for job_id in dict.fromkeys([UUID(str(job["id"])), review.job_id]):
            await asyncio.to_thread(app.record_judged, job_id, review.id, review.results.sha256, figures, utcnow())
    return review
