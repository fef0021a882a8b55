"""A shared job's page, `/training-jobs/{id}` (FR8.1.2's shareable link): public (no sign-in,
web/auth.py PUBLIC) for a public job, for everyone signed in for a team job, for its creator,
managers and admins for a private one. It shows web/sharing/public_view.py's view and a live loss
curve fed by its own read-only stream scoped to this one job, which re-checks the job's visibility
every few seconds and ends ("revoked") as soon as the job is no longer shared with the viewer."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from litestar import MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, ServerSentEvent, Template
from litestar.response.sse import ServerSentEventMessage

from domain.applications import JobNotFoundError
from projections.loss_curve import poll, read_points
from web import auth, users
from web.clock import utcnow
from web.loss_curve import columns
from web.sharing.access import private_message
from web.sharing.public_view import as_json, progress, public_job

POLL_S = 1.0
RECHECK_S = 3.0
LIFETIME_S = 600.0
BATCH = 5000
NOT_SHARED = "This job is not shared publicly: sign in if you are on its team."


@dataclass(frozen=True)
class Viewer:
    name: str | None
    role: str = "member"


async def viewer_of(request: Request) -> Viewer:
    """Who looks (the auth middleware skips public paths): a session cookie or an API token, else nobody."""
    state, now = request.app.state, utcnow()
    header = request.headers.get("authorization", "")
    user = None
    if header[:7].lower() == "bearer ":
        user = await users.token_user(state.pool, header[7:].strip(), now)
    elif secret := request.cookies.get(auth.COOKIE):
        session = await users.session_of(state.pool, secret, now)
        user = session.user if session else None
    return Viewer(user.name, user.role) if user else Viewer(None)


async def allowed(state: State, job_id: UUID, viewer: Viewer) -> bool:
    return await asyncio.to_thread(state.store.app.can_view_job, job_id, viewer.name, viewer.role)


async def refusal(request: Request, state: State, job_id: UUID, viewer: Viewer, html: bool) -> Response | None:
    """None when `viewer` may see the job; else the answer: no such job, sign in first, or private."""
    try:
        if await allowed(state, job_id, viewer):
            return None
        owner = (await asyncio.to_thread(state.store.app.get_job, job_id)).created_by
    except JobNotFoundError:
        return problem(html, 404, "No such job", f"There is no training job {job_id}.")
    if viewer.name is None:
        if html:
            return Redirect(f"/login?next=/training-jobs/{job_id}", status_code=303)
        return problem(False, 404, "Not shared", NOT_SHARED)
    return problem(html, 403, "Not allowed", private_message(owner))


def problem(html: bool, status: int, title: str, message: str) -> Response:
    if html:
        return Template("error.html", status_code=status, context={"title": title, "message": message})
    return Response({"status_code": status, "detail": message}, status_code=status, media_type=MediaType.JSON)


async def view_of(state: State, job_id: UUID) -> dict[str, Any]:
    app = state.store.app
    job = await asyncio.to_thread(app.get_job, job_id)
    sharing = await asyncio.to_thread(app.job_sharing, job_id)
    creator = await users.display_name(state.pool, job.created_by)
    return public_job(job, creator, sharing.visibility if sharing else "private", utcnow())


@get("/training-jobs/{job_id:uuid}", media_type=MediaType.HTML)
async def shared_job_page(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    viewer = await viewer_of(request)
    refused = await refusal(request, state, job_id, viewer, html=True)
    if refused is not None:
        return refused
    view = await view_of(state, job_id)
    page = {"points": f"/training-jobs/{job_id}/points", "stream": f"/training-jobs/{job_id}/stream",
            "live": view["progress"]["live"]}
    return Template("shared_job.html", context={"job": view, "viewer": viewer, "page_data": page,
                                                "full_page": viewer.name is not None})


@get("/training-jobs/{job_id:uuid}/summary")
async def shared_job_summary(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    """The same view as JSON (configuration, progress, results, creator)."""
    refused = await refusal(request, state, job_id, await viewer_of(request), html=False)
    return refused or Response(as_json(await view_of(state, job_id)), media_type=MediaType.JSON)


@get("/training-jobs/{job_id:uuid}/points")
async def shared_job_points(request: Request, state: State, job_id: FromPath[UUID],
                            after: FromQuery[int] = -1) -> Response:
    refused = await refusal(request, state, job_id, await viewer_of(request), html=False)
    return refused or Response(await read_points(state.pool, job_id, after), media_type=MediaType.JSON)


@get("/training-jobs/{job_id:uuid}/stream")
async def shared_job_stream(request: Request, state: State, job_id: FromPath[UUID], after: FromQuery[int] = -1,
                            eval_after: FromQuery[int] = -1) -> Response:
    """`points` (new loss-curve rows), `progress` (status, step, epoch, loss), `end` once the job
    has ended, `revoked` when the job stops being shared with this viewer (then the stream ends)."""
    viewer = await viewer_of(request)
    refused = await refusal(request, state, job_id, viewer, html=False)
    return refused or ServerSentEvent(updates(state, job_id, viewer, after, eval_after))


async def updates(state: State, job_id: UUID, viewer: Viewer, after: int,
                  eval_after: int) -> AsyncIterator[ServerSentEventMessage]:
    started = checked = time.monotonic()
    version = ""
    yield ServerSentEventMessage(data=None, comment="live", retry=5000)
    while time.monotonic() - started < LIFETIME_S:
        if time.monotonic() - checked >= RECHECK_S:
            checked = time.monotonic()
            if not await allowed(state, job_id, viewer):
                yield ServerSentEventMessage(event="revoked", data=json.dumps({"message": NOT_SHARED}))
                return
        job, rows = await poll(state.pool, job_id, after, eval_after, BATCH)
        if job is None:
            return
        if rows:
            points = columns(rows)
            after, eval_after = max(after, points["last_step"]), max(eval_after, points["last_eval_step"])
            yield ServerSentEventMessage(event="points", data=json.dumps(points))
        if job["version"] != version:
            version = job["version"]
            aggregate = await asyncio.to_thread(state.store.app.get_job, job_id)
            yield ServerSentEventMessage(event="progress", data=json.dumps(progress(aggregate)))
            if not progress(aggregate)["live"] and len(rows) < BATCH:
                yield ServerSentEventMessage(event="end", data="{}")
                return
        if len(rows) < BATCH:
            await asyncio.sleep(POLL_S)


routes = [shared_job_page, shared_job_summary, shared_job_points, shared_job_stream]
