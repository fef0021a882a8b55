"""FR4.2.2 "Generate Report": a completed job's training report as a PDF, named
`{job_name}-training-report-{timestamp}.pdf`; `?preview=1` opens it in the browser instead of
downloading it. Each download is recorded on the job (the audit trail's export count)."""

from __future__ import annotations

import asyncio
from uuid import UUID

from litestar import MediaType, Request, Response, get
from litestar.datastructures import State
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
async def training_report(request: Request, state: State, job_id: UUID, preview: bool = False) -> Response:
    settings, now = state.settings, utcnow()

    def build() -> tuple[str, bytes] | Template:
        data = read_report(state.store.app, state.pool.conninfo, job_id, settings.team, settings.time_zone, now)
        if data.job.status is not JobStatus.COMPLETED:
            return Template("error.html", status_code=409, context={
                "title": "No training report yet",
                "message": f"A training report is made for a completed job; this one is"
                           f" {STATUS_LABELS[data.job.status.value].lower()}."})
        return data.job.name, render(data)

    try:
        built = await asyncio.to_thread(build)
    except JobNotFoundError as exc:
        return error_page(exc)
    if isinstance(built, Template):
        return built
    name, pdf = built
    if not preview:
        actor = actor_of(request)
        await asyncio.to_thread(state.store.app.update_job, job_id,
                                lambda j: j.record_export("training-report", actor.name, now))
    filename = f"{safe_name(name)}-training-report-{now:%Y%m%d-%H%M%S}.pdf"
    disposition = "inline" if preview else "attachment"
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'{disposition}; filename="{filename}"',
                             "Cache-Control": "no-store"})


routes = [training_report]
