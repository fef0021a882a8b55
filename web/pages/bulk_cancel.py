"""Bulk cancel from the jobs list (FR2.2.1's reasons): each selected job through the application,
then one answer naming those cancelled and those that could not be, and why."""

from __future__ import annotations

import asyncio
from uuid import UUID

from litestar import MediaType, Request, post
from litestar.datastructures import State
from litestar.response import Redirect

from domain.job_status import TERMINAL, CancelReason
from projections.job_reads import get_job
from projections.job_search import MAX_PER_PAGE
from web.auth import actor_of, local_path
from web.clock import utcnow
from web.errors import DOMAIN_ERRORS, message_of
from web.flows import Actor
from web.forms import redirect_with
from web.job_format import CANCEL_REASONS

ENDED = {s.value for s in TERMINAL}


@post("/jobs/bulk-cancel", media_type=MediaType.HTML)
async def bulk_cancel(request: Request, state: State) -> Redirect:
    """Cancels each selected job through the application; reports those it could not, and why."""
    form = await request.form()
    back = local_path(str(form.get("next") or ""), "/jobs")
    back = back if back.startswith("/jobs") else "/jobs"
    selected = list(dict.fromkeys(str(v) for v in form.getall("job_id", [])))
    reason = str(form.get("reason") or "")
    if problem := refusal(selected, reason, bool(form.get("confirm"))):
        return redirect_with(back, error=problem)
    notes = str(form.get("notes") or "").replace("\x00", "").strip()[:2000]
    actor = actor_of(request)
    cancelled: list[str] = []
    refused: list[str] = []
    for value in selected[:MAX_PER_PAGE]:
        name, problem = await cancel_one(state, value, CancelReason(reason), notes, actor)
        if problem is not None:
            refused.append(f"{name} ({problem})")
        else:
            cancelled.append(name)
    notice = f"Cancelled {jobs(len(cancelled))}: {', '.join(cancelled)}." if cancelled else ""
    error = f"Could not cancel {jobs(len(refused))}: {'; '.join(refused)}." if refused else ""
    return redirect_with(back, notice=notice, error=error)


def refusal(selected: list[str], reason: str, confirmed: bool) -> str | None:
    """What is missing from the form, in the order the form asks for it."""
    if not selected:
        return "Select at least one job to cancel"
    if reason not in CANCEL_REASONS:
        return "Choose a reason for cancellation"
    if not confirmed:
        return "Tick “I understand this action cannot be undone” to cancel the jobs"
    return None


async def cancel_one(state: State, value: str, reason: CancelReason, notes: str,
                     actor: Actor) -> tuple[str, str | None]:
    """(the job's name, why it was not cancelled or None)."""
    try:
        job_id = UUID(value)
    except ValueError:
        return f"“{value[:40]}”", "not a job id"
    row = await get_job(state.pool, job_id)
    name = row["name"] if row else str(job_id)
    if row is not None and row["status"] in ENDED:  # the selection may hold ended jobs (to compare or export)
        return name, f"already {row['status']}"
    try:
        await asyncio.to_thread(state.store.app.cancel_job, job_id, reason, notes, actor.name, utcnow())
    except DOMAIN_ERRORS as exc:
        return name, message_of(exc)
    return name, None


def jobs(n: int) -> str:
    return f"{n} job" if n == 1 else f"{n} jobs"


routes = [bulk_cancel]
