"""The queue tab (FR2.3.2): running jobs with their estimated finish, the queue in order with
estimated starts, manager promotion, and "Switch to on-demand" for a waiting job (FR3.1.3)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from uuid import UUID

from litestar import MediaType, Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Redirect, Template

from domain.queue import remaining
from projections.job_reads import get_job
from projections.job_search import MAX_PER_PAGE, JobSearch, find_jobs
from web import job_actions
from web.auth import actor_of, require_manager
from web.clock import utcnow
from web.errors import DOMAIN_ERRORS, message_of
from web.forms import redirect_with
from web.job_format import Fmt


@get("/queue", media_type=MediaType.HTML)
async def queue_page(request: Request, state: State) -> Template:
    """Running jobs with their estimated finish, then the queue in order with estimated starts
    (the same plan as GET /api/queue)."""
    now = utcnow()
    queued = await job_actions.queue_plan(state)
    running = await running_jobs(state, now)
    return Template("queue.html", context={
        "running": running, "queued": queued, "fmt": Fmt, "now": now, "max_running": state.settings.agent.max_running,
        "max_queued": state.settings.agent.max_queued, "can_promote": actor_of(request).role in ("manager", "admin"),
        "error": request.query_params.get("error"), "notice": request.query_params.get("notice")})


async def running_jobs(state: State, now: datetime) -> list[dict[str, Any]]:
    """Active jobs, first started first, each with its `estimated_finish` (from its progress)."""
    search = JobSearch(status=["active"], sort="started_at", descending=False, per_page=MAX_PER_PAGE, now=now)
    running = (await find_jobs(state.pool, search)).jobs
    for job in running:
        hours = job["estimated_duration_hours"]
        left = remaining(float(hours), float(job["progress_percent"] or 0) / 100) if hours is not None else None
        job["estimated_finish"] = now + left if left is not None and job["started_at"] else None
    return running


@post("/queue/{job_id:uuid}/promote", media_type=MediaType.HTML, guards=[require_manager])
async def promote_form(request: Request, state: State, job_id: FromPath[UUID]) -> Redirect:
    """FR2.3.2: a manager moves a queued job to the front (the same command as the API's promote)."""
    actor = actor_of(request)
    name = await name_of(state, job_id)
    try:
        await asyncio.to_thread(state.store.app.promote_job, job_id, actor=actor.name, role=actor.role, at=utcnow())
    except DOMAIN_ERRORS as exc:
        return redirect_with("/queue", error=f"{name}: {message_of(exc)}")
    return redirect_with("/queue", notice=f"{name} moved to the front of the queue.")


@post("/queue/{job_id:uuid}/on-demand", media_type=MediaType.HTML)
async def switch_to_on_demand(request: Request, state: State, job_id: FromPath[UUID]) -> Redirect:
    """FR3.1.3 "Switch to on-demand" for a job waiting for a GPU; its budget reservation grows with it."""
    actor = actor_of(request)
    name = await name_of(state, job_id)
    try:
        warnings = await asyncio.to_thread(state.store.app.switch_gpu_tier, job_id, "on_demand", actor=actor.name,
                                           role=actor.role, at=utcnow())
    except DOMAIN_ERRORS as exc:
        return redirect_with("/queue", error=f"{name}: {getattr(exc, 'figures', None) or message_of(exc)}")
    return redirect_with("/queue", notice=" ".join([f"{name} switched to an on-demand GPU.", *warnings]))


async def name_of(state: State, job_id: UUID) -> str:
    row = await get_job(state.pool, job_id)
    return row["name"] if row else f"Job {job_id}"


routes = [queue_page, promote_form, switch_to_on_demand]
