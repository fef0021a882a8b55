"""The job page's forms: cancel (FR2.2.1), pause and resume (FR2.2.2), retry / suggested fix / resume (FR3.3.1, FR3.3.2,
FR3.2.2) and notes. A refusal shows the page again with the message and the form as sent."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from litestar import MediaType, Request, Response, post
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath

from domain.aggregates.budget import BudgetExceededError, PermissionDeniedError
from domain.applications import JobNotFoundError
from domain.job_metadata import NOTE_MAX
from domain.job_status import CancelReason
from domain.money import usd
from web import job_actions
from web.auth import actor_of
from web.clock import utcnow
from web.errors import DOMAIN_ERRORS, message_of, status_of
from web.forms import redirect_with
from web.job_format import CANCEL_REASONS
from web.job_page import PageInput, error_page, render_page
from web.retry_form import RetryForm, retry_request

RETRIED = {"same": "Retry", "suggested": "Retry with the suggested fix", "resume": "Resume from the checkpoint"}


@dataclass
class CancelForm:
    reason: str = ""
    notes: str = ""
    confirm: str = ""


@dataclass
class NoteForm:
    text: str = ""


async def refused(request: Request, state: State, job_id: UUID, exc: Exception, message: str | None = None,
                  form: dict[str, Any] | None = None) -> Response:
    """A domain refusal: the error page for a job not found, else the page with the message."""
    if isinstance(exc, JobNotFoundError):
        return error_page(exc)
    return await render_page(request, state, job_id, PageInput(), error=message or message_of(exc),
                             status_code=status_of(exc), form=form)


@post("/jobs/{job_id:uuid}/cancel", media_type=MediaType.HTML)
async def cancel_form(request: Request, state: State, job_id: FromPath[UUID],
                      data: Annotated[CancelForm, Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Response:
    """FR2.2.1: a reason from the list, optional notes, and the confirmation box ticked."""
    if problem := cancel_problem(data):
        return await render_page(request, state, job_id, PageInput(), error=problem, status_code=400,
                                 form={"cancel": vars(data)})
    app, actor, now = state.store.app, actor_of(request), utcnow()
    try:
        await asyncio.to_thread(app.cancel_job, job_id, CancelReason(data.reason), data.notes, actor.name, now)
        job = await asyncio.to_thread(app.get_job, job_id)
    except DOMAIN_ERRORS as exc:
        return await refused(request, state, job_id, exc)
    spent = usd(job.cost(now).total_cost)
    notice = (f"Job cancelled. Final cost: {spent}. GPU instance terminated." if not job.running_pods() else
              f"Job cancelled. Cost so far: {spent}. The GPU instance is being terminated (within 60 seconds).")
    return redirect_with(f"/jobs/{job_id}", notice=notice)


def cancel_problem(data: CancelForm) -> str | None:
    """What is wrong with the form, in the order the form asks for it."""
    if data.reason not in {r.value for r in CANCEL_REASONS}:
        return "Choose a reason for cancellation"
    if len(data.notes.strip()) > NOTE_MAX:
        return f"Notes must be at most {NOTE_MAX} characters (got {len(data.notes.strip())})"
    if data.confirm != "yes":
        return "Tick “I understand this action cannot be undone” to cancel the job"
    return None


@post("/jobs/{job_id:uuid}/pause", media_type=MediaType.HTML)
async def pause_form(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    """FR2.2.2's Pause button (web/job_actions.py's logic)."""
    try:
        await job_actions.pause(actor_of(request), state, job_id)
    except PermissionDeniedError as exc:
        return error_page(exc)
    except DOMAIN_ERRORS as exc:
        return await refused(request, state, job_id, exc)
    return redirect_with(f"/jobs/{job_id}", notice="Pausing: the pod saves a checkpoint at the next step and stops."
                         " Nothing is spent while the job is paused; its budget reservation is kept.")


@post("/jobs/{job_id:uuid}/resume", media_type=MediaType.HTML)
async def resume_form(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    """The Resume button of a paused job: queued again, continuing from its checkpoint."""
    try:
        await job_actions.resume(actor_of(request), state, job_id)
    except PermissionDeniedError as exc:
        return error_page(exc)
    except DOMAIN_ERRORS as exc:
        return await refused(request, state, job_id, exc)
    return redirect_with(f"/jobs/{job_id}", notice="Resumed: the job is queued again and continues from its"
                         " checkpoint on its next pod.")


@post("/jobs/{job_id:uuid}/retry", media_type=MediaType.HTML)
async def retry_form(request: Request, state: State, job_id: FromPath[UUID],
                     data: Annotated[RetryForm, Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Response:
    """FR3.3.1 / FR3.3.2 / FR3.2.2 through the JSON route's logic (web/job_actions.py)."""
    form = {"retry": vars(data)}
    try:
        retry = retry_request(data)
    except ValueError as exc:
        return await render_page(request, state, job_id, PageInput(), error=str(exc), status_code=400, form=form)
    if retry.override_justification and actor_of(request).role not in ("manager", "admin"):
        return error_page(PermissionDeniedError("Only a manager or admin may override the budget limit"), 403)
    try:
        made = await job_actions.retry(actor_of(request), state, job_id, retry)
    except PermissionDeniedError as exc:
        return error_page(exc)
    except DOMAIN_ERRORS as exc:
        shown = exc.figures + ". " + message_of(exc) if isinstance(exc, BudgetExceededError) else None
        return await refused(request, state, job_id, exc, shown, form)
    return redirect_with(f"/jobs/{made['id']}", notice=retry_notice(data.mode, made))


def retry_notice(mode: str, made: dict[str, Any]) -> str:
    """What was queued, with the changes made and the retry logic's warnings."""
    changes = "; ".join(made["changes"])
    return f"{RETRIED[mode]} queued{f' ({changes})' if changes else ''}." + "".join(f" {w}" for w in made["warnings"])


@post("/jobs/{job_id:uuid}/notes", media_type=MediaType.HTML)
async def note_form(request: Request, state: State, job_id: FromPath[UUID],
                    data: Annotated[NoteForm, Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Response:
    """A timestamped note by the signed-in person (Markdown, shown sanitized)."""
    actor = actor_of(request)
    try:
        await asyncio.to_thread(state.store.app.update_job, job_id,
                                lambda job: job.add_note(data.text, actor.name, utcnow()))
    except DOMAIN_ERRORS as exc:
        return await refused(request, state, job_id, exc, form={"note": data.text})
    return redirect_with(f"/jobs/{job_id}", notice="Note added.")


routes = [cancel_form, pause_form, resume_form, retry_form, note_form]
