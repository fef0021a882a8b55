"""Review & start (FR1.3.2): the final check of a configured job; only its checklist starts it
(queued, its estimated maximum reserved on the month's budget), or it is discarded unstarted."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from domain.aggregates.budget import BudgetExceededError, InvalidBudgetCommandError, PermissionDeniedError
from domain.aggregates.training_job import JobAlreadyStartedError, TrainingJob
from domain.applications import JobNotFoundError
from domain.job_status import CancelReason, JobStatus
from web.auth import actor_of
from web.budget_view import load_budget
from web.clock import utcnow
from web.errors import DOMAIN_ERRORS, message_of, status_of
from web.flows import Actor, QueueFullError, check_queue
from web.forms import redirect_with
from web.limit_increase import request_increase
from web.review_view import CHECKLIST, CHECKLIST_ERROR, review_context


async def job_to_review(state: State, job_id: UUID, say_why: bool = False) -> TrainingJob | Response:
    """The configured job, or the answer instead: not found, or already started (its own page,
    with `say_why` saying so: a second Start Training)."""
    try:
        job = await asyncio.to_thread(state.store.app.get_job, job_id)
    except JobNotFoundError:
        return Template("error.html", context={"title": "Job not found",
                                               "message": f"There is no training job {job_id}."}, status_code=404)
    if job.status is not JobStatus.CONFIGURED:
        if say_why:
            try:
                job.check_startable()
            except JobAlreadyStartedError as exc:
                return redirect_with(f"/jobs/{job_id}", error=str(exc))
        return Redirect(f"/jobs/{job_id}", status_code=303)
    return job


async def review(state: State, actor: Actor, job: TrainingJob, status: int = 200, **extra: Any) -> Template:
    return Template("review_job.html", context=await review_context(state, actor, job, **extra), status_code=status)


@get("/jobs/{job_id:uuid}/review", media_type=MediaType.HTML)
async def review_page(request: Request, state: State, job_id: FromPath[UUID], notice: FromQuery[str | None] = None,
                      error: FromQuery[str | None] = None) -> Response:
    """The final check before starting (FR1.3.2); a job already started goes to its own page."""
    job = await job_to_review(state, job_id)
    if not isinstance(job, TrainingJob):
        return job
    return await review(state, actor_of(request), job, notice=notice, error=error)


@post("/jobs/{job_id:uuid}/start", media_type=MediaType.HTML)
async def start_job_form(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    """Start Training: all three boxes checked, then queued with its reservation (or refused)."""
    job = await job_to_review(state, job_id, say_why=True)
    if not isinstance(job, TrainingJob):
        return job
    form = await request.form()
    actor = actor_of(request)
    checked = {key: bool(form.get(key)) for key, _ in CHECKLIST}
    justification = str(form.get("override_justification") or "")[:2000].strip() or None

    async def again(status: int, errors: dict[str, str], **extra: Any) -> Response:
        return await review(state, actor, job, status, checked=checked, errors=errors,
                            override_text=justification or "", **extra)

    if not all(checked.values()):  # each refusal is said once, beside what it concerns
        return await again(400, {"checklist": CHECKLIST_ERROR})
    try:
        await check_queue(state)
        warnings = await asyncio.to_thread(state.store.app.start_job, job_id, actor.name, actor.role, utcnow(),
                                           justification)
    except BudgetExceededError as exc:
        return await again(409, {}, refusal={"figures": exc.figures, "message": str(exc)})
    except InvalidBudgetCommandError as exc:
        return await again(400, {"override_justification": str(exc)}, refusal_open=True)
    except PermissionDeniedError as exc:
        return await again(403, {}, error=str(exc))
    except (QueueFullError, *DOMAIN_ERRORS) as exc:
        return await again(status_of(exc), {}, error=message_of(exc))
    return redirect_with(f"/jobs/{job_id}", notice=" ".join(warnings) or "Training queued: a GPU is being requested.")


@post("/jobs/{job_id:uuid}/discard", media_type=MediaType.HTML)
async def discard_job_form(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    """Cancel at review: the configured job is cancelled (it never started, so nothing was charged)."""
    job = await job_to_review(state, job_id)
    if not isinstance(job, TrainingJob):
        return job
    actor = actor_of(request)
    await asyncio.to_thread(state.store.app.cancel_job, job_id, CancelReason.OTHER,
                            "Discarded at review, before starting", actor.name, utcnow())
    return redirect_with("/jobs", notice=f"“{job.name[:100]}” was discarded before starting.")


@post("/jobs/{job_id:uuid}/limit-increase", media_type=MediaType.HTML)
async def review_limit_increase(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    """"Increase Budget Limit" from the review page."""
    job = await job_to_review(state, job_id)
    if not isinstance(job, TrainingJob):
        return job
    form = await request.form()
    actor = actor_of(request)
    problem, notice = await request_increase(state, form, actor, await load_budget(state, utcnow()))
    if not problem:
        return redirect_with(f"/jobs/{job_id}/review", notice=notice)
    typed = {"new_limit": str(form.get("new_limit") or "")[:20],
             "justification": str(form.get("limit_justification") or "")[:2000]}
    return await review(state, actor, job, 400, errors={"limit": problem}, error=problem, limit_open=True,
                        limit_values=typed)


routes = [review_page, start_job_form, discard_job_form, review_limit_increase]
