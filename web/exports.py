"""Downloads of a job's data: its training metrics as CSV or JSON (FR4.2.1), streamed, under the
spec's file name, or both in a ZIP with the charts as PNG; each download is recorded on the job
for the audit trail."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from uuid import UUID

import psycopg
from litestar import Request, Response, Router, get
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Stream

from web.job_actions import actor_of
from web.reports import metrics_export


async def _download(request: Request, state: State, job_id: UUID, fmt: metrics_export.Format) -> Stream:
    actor = actor_of(request)

    def build() -> tuple[str, list[str]]:
        with psycopg.connect(state.pool.conninfo) as conn:
            name, body = metrics_export.export(conn, state.store.app, job_id, fmt, actor.name,
                                               datetime.now(timezone.utc))
            return name, list(body)

    name, chunks = await asyncio.to_thread(build)
    media = "text/csv" if fmt == "csv" else "application/json"
    return Stream(iter(chunks), media_type=media,
                  headers={"Content-Disposition": f'attachment; filename="{name}"'})


@get("/api/jobs/{job_id:uuid}/metrics.csv", media_type="text/csv")
async def metrics_csv(request: Request, state: State, job_id: FromPath[UUID]) -> Stream:
    return await _download(request, state, job_id, "csv")


@get("/api/jobs/{job_id:uuid}/metrics.json")
async def metrics_json(request: Request, state: State, job_id: FromPath[UUID]) -> Stream:
    return await _download(request, state, job_id, "json")


@get("/api/jobs/{job_id:uuid}/metrics.zip", media_type="application/zip")
async def metrics_package(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    """FR4.2.1 "include charts (loss curves) as embedded PNG in export package": CSV, JSON and PNGs."""
    actor = actor_of(request)

    def build() -> tuple[str, bytes]:
        with psycopg.connect(state.pool.conninfo) as conn:
            return metrics_export.package(conn, state.store.app, job_id, actor.name, datetime.now(timezone.utc))

    name, body = await asyncio.to_thread(build)
    return Response(body, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


router = Router(path="/", route_handlers=[metrics_csv, metrics_json, metrics_package])
