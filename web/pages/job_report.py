"""FR4.2.2 "Generate Report": a completed job's training report as a PDF, named
`{job_name}-training-report-{timestamp}.pdf`; `?preview=1` opens it in the browser instead of
downloading it. Each download is recorded on the job (the audit trail's export count). Its 30-day
share link is web/pages/shared_links.py."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import datetime
from uuid import UUID

from litestar import MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from domain.applications import JobNotFoundError
from domain.job_status import JobStatus
from web.auth import actor_of
from web.clock import utcnow
from web.detail_format import STATUS_LABELS
from web.job_page import error_page
from web.pages.job_downloads import safe_name
from web.report_data import read_report
from web.report_pdf import render


@get("/jobs/{job_id:uuid}/report.pdf", media_type=MediaType.HTML)
async def training_report(request: Request, state: State, job_id: FromPath[UUID],
                          preview: FromQuery[bool] = False) -> Response:
    now = utcnow()
    built = await report_of(state, job_id, now)
    if not isinstance(built, tuple):
        return built
    if not preview:
        actor = actor_of(request)
        await asyncio.to_thread(state.store.app.update_job, job_id,
                                lambda j: j.record_export("training-report", actor.name, now))
    return pdf_response(*built, now, inline=preview)


# A public link may be opened often: the PDF of a job as it stands (its version) is kept, a few of
# them, and at most two are drawn at once.
_SHARED: OrderedDict[tuple[UUID, int], tuple[str, bytes]] = OrderedDict()
_SHARED_MOST = 16
_RENDERING = asyncio.Semaphore(2)


async def shared_pdf(state: State, job_id: UUID, now: datetime) -> tuple[str, bytes] | Response:
    try:
        version = (await asyncio.to_thread(state.store.app.get_job, job_id)).version
    except JobNotFoundError as exc:
        return error_page(exc)
    key = (job_id, version)
    async with _RENDERING:
        if key not in _SHARED:
            built = await report_of(state, job_id, now)
            if not isinstance(built, tuple):
                return built
            _SHARED[key] = built
            while len(_SHARED) > _SHARED_MOST:
                _SHARED.popitem(last=False)
        _SHARED.move_to_end(key)
        return _SHARED[key]


async def report_of(state: State, job_id: UUID, now: datetime) -> tuple[str, bytes] | Response:
    """(job name, PDF), or the page saying why there is none."""
    settings = state.settings

    def build() -> tuple[str, bytes] | Template:
        data = read_report(state.store.app, state.pool.conninfo, job_id, settings.budget.team,
                           settings.budget.time_zone, now)
        if data.job.status is not JobStatus.COMPLETED:
            return not_completed(data.job.status)
        return data.job.name, render(data)

    try:
        return await asyncio.to_thread(build)
    except JobNotFoundError as exc:
        return error_page(exc)


def not_completed(status: JobStatus) -> Template:
    return Template("error.html", status_code=409, context={
        "title": "No training report yet",
        "message": "A training report is made for a completed job;"
                   f" this one is {STATUS_LABELS[status.value].lower()}."})


def pdf_response(name: str, pdf: bytes, now: datetime, inline: bool) -> Response:
    filename = f"{safe_name(name)}-training-report-{now:%Y%m%d-%H%M%S}.pdf"
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{filename}"',
                             "Cache-Control": "no-store"})


routes = [training_report]
