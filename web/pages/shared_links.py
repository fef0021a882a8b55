"""Share links for a completed job's artefacts (web/share_links.py): the training report for 30
days (FR4.2.2), the deployment package for 48 hours (FR4.3.1). POST .../share makes one and shows it
to copy (recorded on the job, and by id on its sharing record), POST /api/jobs/{id}/share-links the
same for scripts and `pipeline jobs share-link`; GET /shared/... is public
(web/auth.py PUBLIC) and serves what a valid, unexpired, unrevoked link names — 403 for a link that
is not valid, 410 for an expired or revoked one. Links are listed and revoked on the job's page
(web/pages/job_sharing.py)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.response import Template
from pydantic import BaseModel

from domain.aggregates.training_job import TrainingJob
from domain.applications import JobNotFoundError
from domain.job_status import JobStatus
from web import share_links
from web.auth import actor_of
from web.clock import utcnow
from web.job_page import error_page
from web.pages.job_downloads import not_downloadable, package_file
from web.pages.job_report import not_completed, pdf_response, shared_pdf
from web.share_links import PACKAGE, REPORT, Purpose

PATHS = {REPORT.key: "reports", PACKAGE.key: "packages"}


@post("/jobs/{job_id:uuid}/report/share", media_type=MediaType.HTML, status_code=200)
async def share_report(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    return await make_link(request, state, job_id, REPORT)


@post("/jobs/{job_id:uuid}/deployment-package/share", media_type=MediaType.HTML, status_code=200)
async def share_package(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    return await make_link(request, state, job_id, PACKAGE)


async def make_link(request: Request, state: State, job_id: UUID, purpose: Purpose) -> Response:
    made = await issue_link(request, state, job_id, purpose)
    if isinstance(made, Template):
        return made
    job, url, shared = made
    hours = int(purpose.lasts.total_seconds() // 3600)
    return Template("shared_link.html", context={
        "job": job, "what": purpose.noun, "url": url, "expires": shared.expires_at,
        "lasts": f"{hours // 24} days" if hours % 24 == 0 and hours > 48 else f"{hours} hours"})


class NewLink(BaseModel):
    purpose: Literal["report", "package"]


@post("/api/jobs/{job_id:uuid}/share-links", status_code=201)
async def api_share_link(request: Request, state: State, job_id: FromPath[UUID], data: NewLink) -> dict[str, Any]:
    """A report (30 days) or deployment package (48 hours) link, as the job page's buttons make one;
    refused with the page's own sentence."""
    made = await issue_link(request, state, job_id, REPORT if data.purpose == "report" else PACKAGE)
    if isinstance(made, Template):
        raise HTTPException(status_code=made.status_code, detail=str((made.context or {}).get("message")))
    _, url, shared = made
    return {"job_id": str(job_id), "purpose": data.purpose, "url": url, "link_id": str(shared.link_id),
            "expires_at": shared.expires_at.isoformat()}


async def issue_link(request: Request, state: State, job_id: UUID, purpose: Purpose
                     ) -> Template | tuple[TrainingJob, str, share_links.Shared]:
    """A new link recorded on the job and its sharing record, or the page that says why not."""
    secret, now, actor = state.settings.notifications.approval_secret.get_secret_value(), utcnow(), actor_of(request)
    if not secret:
        return Template("error.html", status_code=409, context={
            "title": "Sharing is not set up",
            "message": "Share links need PIPELINE_APPROVAL_SECRET on this deployment (docs/operations.md)."})
    try:
        job = await asyncio.to_thread(state.store.app.get_job, job_id)
    except JobNotFoundError as exc:
        return error_page(exc)
    if job.status is not JobStatus.COMPLETED:
        return not_completed(job.status)
    if purpose is PACKAGE and (refusal := not_downloadable(job)) is not None:
        return refusal  # deleted, or blocked by the quality gate
    if purpose is PACKAGE and actor.name != job.created_by and actor.role not in ("manager", "admin"):
        # the package carries training prompts and their target responses: its owner's call
        return Template("error.html", status_code=403, context={
            "title": "Not yours to share",
            "message": "Only the job's creator, a manager or an admin may share its deployment package."})
    if not await asyncio.to_thread(state.store.app.can_view_job, job_id, actor.name, actor.role):
        return Template("error.html", status_code=403, context={
            "title": "Not allowed", "message": private_message(job.created_by)})
    token, shared = share_links.share(purpose, job_id, actor.name, secret, now)
    assert shared.link_id is not None
    link_id = shared.link_id
    await asyncio.to_thread(state.store.app.update_sharing, job_id, actor.name,
                            lambda s: s.issue_link(link_id, purpose.key, shared.expires_at, actor.name, now), now)
    await asyncio.to_thread(state.store.app.update_job, job_id,
                            lambda j: j.record_export(f"{purpose.key}-link", actor.name, now))
    return job, f"{state.settings.web.public_base_url}/shared/{PATHS[purpose.key]}/{token}", shared


@get("/shared/reports/{token:str}", media_type=MediaType.HTML)
async def shared_report(state: State, token: FromPath[str]) -> Response:
    """Public (no sign-in): the report a valid, unexpired link names."""
    now = utcnow()
    shared = await opened(state, REPORT, token, now)
    if isinstance(shared, Template):
        return shared
    built = await shared_pdf(state, shared.job_id, now)
    return pdf_response(*built, now, inline=True) if isinstance(built, tuple) else built


@get("/shared/packages/{token:str}", media_type=MediaType.HTML)
async def shared_package(state: State, token: FromPath[str]) -> Response:
    """Public (no sign-in): the deployment package a valid, unexpired link names."""
    shared = await opened(state, PACKAGE, token, utcnow())
    if isinstance(shared, Template):
        return shared
    try:
        job = await asyncio.to_thread(state.store.app.get_job, shared.job_id)
    except JobNotFoundError as exc:
        return error_page(exc)
    return await package_file(state, job, None)


async def opened(state: State, purpose: Purpose, token: str, now: datetime) -> share_links.Shared | Template:
    """What a valid link grants: signed by us, unexpired, and not revoked on the job's sharing
    record (read from the event store, so a revocation counts at once)."""
    try:
        shared = share_links.verify(purpose, token, state.settings.notifications.approval_secret.get_secret_value(),
                                    now)
    except share_links.InvalidLinkError as exc:
        expired = isinstance(exc, share_links.ExpiredLinkError)
        return Template("error.html", status_code=410 if expired else 403, context={
            "title": f"{purpose.noun.capitalize()} link {'expired' if expired else 'not valid'}", "message": str(exc)})
    sharing = await asyncio.to_thread(state.store.app.job_sharing, shared.job_id)
    if sharing is not None and sharing.link_revoked(shared.link_id, shared.issued_at or now):
        return Template("error.html", status_code=410, context={
            "title": f"{purpose.noun.capitalize()} link revoked",
            "message": f"This {purpose.noun} link was revoked: ask {shared.shared_by} for a new one"})
    return shared


def private_message(owner: str) -> str:
    return f"This job is private to {owner}: ask them (or a manager) to share it with the team."


routes = [share_report, share_package, api_share_link, shared_report, shared_package]
