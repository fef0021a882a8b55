"""The Quality tab's actions and exports (FR6.1, FR6.3; the tab itself is `/jobs/{id}?tab=quality`):
the category analysis and question-by-question CSVs, the figures as JSON, a manager's release of a
blocked adapter, and evaluating a completed job again — as forms and as JSON API calls."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from litestar import MediaType, Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from pydantic import BaseModel, Field

from domain.aggregates.budget import BudgetExceededError
from projections.job_detail import read_job
from web.auth import actor_of
from web.clock import utcnow
from web.errors import DOMAIN_ERRORS, message_of, status_of
from web.forms import redirect_with
from web.job_page import PageInput, render_page
from web.quality_actions import override, reevaluate
from web.quality_judged import EI_COLUMNS, brand_columns, brand_rows, ei_rows
from web.quality_results import ResultsUnavailableError, item_results
from web.quality_review import review_of
from web.quality_tab import question_texts
from web.quality_view import CATEGORY_COLUMNS, QUESTION_COLUMNS, as_csv, category_rows, gate_view, question_rows

QUALITY_TAB = PageInput(tab="quality")


async def _job(state: State, job_id: UUID) -> dict[str, Any]:
    detail = await read_job(state.pool, job_id, utcnow())
    if detail is None:
        raise NotFoundException(f"no training job {job_id} (it may still be on its way to the read model)")
    return detail["job"]


async def _evaluated(state: State, job_id: UUID) -> tuple[dict[str, Any], Any]:
    job = await _job(state, job_id)
    if not job.get("evaluation"):
        raise NotFoundException("This job has no evaluation results"
                                + (f": {job['evaluation_failure']}" if job.get("evaluation_failure") else ""))
    try:
        return job, await item_results(state, job["evaluation"])
    except ResultsUnavailableError as exc:
        raise NotFoundException(str(exc)) from None


def _download(request: Request, state: State, job_id: UUID, kind: str, body: str) -> Response:
    """The CSV, its export recorded on the job once sent (FR4.2.1's audit of exports)."""
    actor = actor_of(request).name
    record = BackgroundTask(asyncio.to_thread, state.store.app.update_job, job_id,
                            lambda j: j.record_export(f"quality-{kind}-csv", actor, utcnow()))
    return Response(body, media_type="text/csv; charset=utf-8", background=record,
                    headers={"Content-Disposition": f'attachment; filename="job-{job_id}-{kind}.csv"'})


@get("/jobs/{job_id:uuid}/quality/categories.csv")
async def categories_csv(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    """FR6.1.2 "Export detailed category analysis as CSV"."""
    _, results = await _evaluated(state, job_id)
    return _download(request, state, job_id, "categories", as_csv(CATEGORY_COLUMNS, category_rows(results)))


@get("/jobs/{job_id:uuid}/quality/questions.csv")
async def questions_csv(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    """FR6.3.1 "Export detailed question-by-question results as CSV" (every suite)."""
    job, results = await _evaluated(state, job_id)
    texts = await question_texts(state, job)
    return _download(request, state, job_id, "questions", as_csv(QUESTION_COLUMNS, question_rows(results, texts)))


async def _judged(state: State, job_id: UUID) -> tuple[Any, list[Any]]:
    """The job's generated replies and the review's sources (each source's scores as they stand)."""
    job, results = await _evaluated(state, job_id)
    if results.generations is None or not results.generations.parts:
        raise NotFoundException("This job's evaluation generated no replies to score")
    review = await review_of(state, job)
    return results.generations, review.sources() if review is not None else []


@get("/jobs/{job_id:uuid}/quality/ei.csv")
async def ei_csv(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    """FR6.2.1 "Export full evaluation results (all 50 scenarios) as CSV": a row per scenario per source."""
    generations, sources = await _judged(state, job_id)
    return _download(request, state, job_id, "ei", as_csv(EI_COLUMNS, ei_rows(generations, sources)))


@get("/jobs/{job_id:uuid}/quality/brand-voice.csv")
async def brand_voice_csv(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    """FR6.4.1 "Export detailed scoring (30 responses × 10 characteristics) as CSV"."""
    generations, sources = await _judged(state, job_id)
    return _download(request, state, job_id, "brand-voice",
                     as_csv(brand_columns(generations), brand_rows(generations, sources)))


@get("/api/jobs/{job_id:uuid}/quality")
async def api_quality(state: State, job_id: FromPath[UUID]) -> dict[str, Any]:
    """The gate's outcome, the recorded figures, the suites, a failure or the progress, and the scoring of the
    generated replies as it stands (`review`: the judge's and the people's progress, the judging cost)."""
    job = await _job(state, job_id)
    evaluation = job.get("evaluation")
    review = await review_of(state, job) if evaluation else None
    return {"job_id": str(job_id), "gate": gate_view(job), "summary": evaluation["summary"] if evaluation else None,
            "results": evaluation["results"] if evaluation else None, "suites": job.get("suites"),
            "evaluation_failure": job.get("evaluation_failure"), "evaluation_progress": job.get("evaluation_progress"),
            "evaluates": str(job["evaluates"]) if job.get("evaluates") else None,
            "review": review_progress(review)}


def review_progress(review: Any) -> dict[str, Any] | None:
    if review is None:
        return None
    return {"id": str(review.id), "items": len(review.items),
            "judge": {"judged": len(review.judged), "unscored": len(review.unscored), "complete": review.judge_complete,
                      "cost": str(review.cost), "prompt_tokens": review.prompt_tokens,
                      "completion_tokens": review.completion_tokens},
            "people": {"reviewers": {r: len(review.scored_by(r)) for r in review.reviewers},
                       "complete": review.people_complete}}


class Override(BaseModel):
    justification: str = Field(max_length=2000)


class Reevaluate(BaseModel):
    suite_ids: list[str] = Field(default_factory=list, max_length=20)
    override_justification: str | None = Field(default=None, max_length=2000)


@post("/api/jobs/{job_id:uuid}/delivery-override", status_code=200)
async def api_override(request: Request, state: State, job_id: FromPath[UUID], data: Override) -> dict[str, Any]:
    """A manager or admin releases an adapter the gate blocked: `{"justification"}` (20+ characters)."""
    await override(state, actor_of(request), job_id, data.justification)
    return {"id": str(job_id), "released": True}


@post("/api/jobs/{job_id:uuid}/reevaluate", status_code=201)
async def api_reevaluate(request: Request, state: State, job_id: FromPath[UUID], data: Reevaluate) -> dict[str, Any]:
    """A new job evaluating this completed job's adapter: `{"suite_ids": [...], "override_justification"?}`."""
    new_id, warnings = await reevaluate(state, actor_of(request), job_id, data.suite_ids, data.override_justification)
    return {"id": str(new_id), "evaluates": str(job_id), "warnings": warnings}


@post("/jobs/{job_id:uuid}/quality/override", media_type=MediaType.HTML)
async def override_form(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    form = await request.form()
    justification = str(form.get("justification") or "")
    try:
        await override(state, actor_of(request), job_id, justification)
    except DOMAIN_ERRORS as exc:
        return await render_page(request, state, job_id, QUALITY_TAB, error=message_of(exc),
                                 status_code=status_of(exc), form={"override": justification})
    return redirect_with(f"/jobs/{job_id}?tab=quality", notice="Adapter released for delivery; the release and its"
                                                                " justification are in the event log.")


@post("/jobs/{job_id:uuid}/reevaluate", media_type=MediaType.HTML)
async def reevaluate_form(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    form = await request.form()
    try:
        new_id, warnings = await reevaluate(state, actor_of(request), job_id, form.getall("suite_ids", []),
                                            str(form.get("override_justification") or "") or None)
    except DOMAIN_ERRORS as exc:
        shown = exc.figures + ". " + message_of(exc) if isinstance(exc, BudgetExceededError) else message_of(exc)
        return await render_page(request, state, job_id, QUALITY_TAB, error=shown, status_code=status_of(exc))
    return redirect_with(f"/jobs/{new_id}", notice="Re-evaluation queued." + "".join(f" {w}" for w in warnings))


routes = [categories_csv, questions_csv, ei_csv, brand_voice_csv, api_quality, api_override, api_reevaluate,
          override_form, reevaluate_form]
