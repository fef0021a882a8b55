"""The web process: HTML pages and the JSON API, reading projections, commanding the application."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote_plus
from uuid import UUID

from litestar import Litestar, MediaType, Response, get, post
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.datastructures import State, UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import ClientException, NotFoundException
from litestar.openapi import OpenAPIConfig
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field

from domain.job_status import CancelReason
from pipeline import bus, health
from pipeline.eventstore import EventStore
from pipeline.objectstore import ObjectStore
from pipeline.settings import Settings
from projections.job_search import JobSearch
from web import exports, finance, job_actions, job_views, notifications, queries
from web.errors import DOMAIN_ERRORS, domain_error_response, message_of
from web.flows import ANONYMOUS, add_uploaded_file, check_queue, create_job

HERE = Path(__file__).parent


class CreateJob(BaseModel):
    training_file_id: UUID
    name: str | None = Field(default=None, max_length=200)
    preset: Literal["conservative", "balanced", "aggressive"] | None = None
    gpu_tier: Literal["spot", "on_demand"] = "spot"
    description: str | None = Field(default=None, max_length=5000)
    notes: str | None = Field(default=None, max_length=20000)
    tags: list[str] = Field(default_factory=list, max_length=50)
    client: str | None = Field(default=None, max_length=1000)
    project: str | None = Field(default=None, max_length=1000)
    start: bool = True
    override_justification: str | None = Field(default=None, max_length=2000)


class CreatedJob(BaseModel):
    id: UUID
    started: bool
    warnings: list[str]


class CancelJob(BaseModel):
    reason: CancelReason
    notes: str = Field(default="", max_length=2000)


@dataclass
class JobForm:
    training_file_id: UUID
    preset: str = ""
    gpu_tier: str = "spot"
    name: str = ""
    description: str = ""
    tags: str = ""
    client: str = ""
    project: str = ""
    notes: str = ""


@dataclass
class FileForm:
    file: UploadFile
    name: str = ""


def _redirect(path: str, **message: str) -> Redirect:
    query = "&".join(f"{k}={quote_plus(v[:500])}" for k, v in message.items() if v)
    return Redirect(f"{path}?{query}" if query else path, status_code=303)


# --- pages -----------------------------------------------------------------------------------

@get("/", media_type=MediaType.HTML)
async def index(state: State, error: str | None = None, notice: str | None = None) -> Template:
    return Template("index.html", context={
        "jobs": await queries.list_jobs(state.pool), "files": await queries.list_files(state.pool, True),
        "error": error, "notice": notice})


@post("/jobs", media_type=MediaType.HTML)
async def create_job_form(state: State, data: Annotated[JobForm, Body(media_type=RequestEncodingType.URL_ENCODED)]
                          ) -> Redirect:
    try:
        _, warnings = await create_job(
            state, ANONYMOUS, training_file_id=data.training_file_id, preset=data.preset or None,
            gpu_tier=data.gpu_tier, name=data.name or None, description=data.description or None,
            tags=[t for t in data.tags.replace(",", " ").split() if t], client=data.client or None,
            project=data.project or None, notes=data.notes or None)
    except DOMAIN_ERRORS as exc:
        return _redirect("/", error=getattr(exc, "figures", None) or message_of(exc))
    return _redirect("/", notice=" ".join(warnings) or "Job queued.")


@get("/files", media_type=MediaType.HTML)
async def files_page(state: State, error: str | None = None, notice: str | None = None) -> Template:
    return Template("files.html", context={"files": await queries.list_files(state.pool), "error": error,
                                           "notice": notice})


@post("/files", media_type=MediaType.HTML)
async def upload_file_form(state: State, data: Annotated[FileForm, Body(media_type=RequestEncodingType.MULTI_PART)]
                           ) -> Redirect:
    if not data.file.filename:
        return _redirect("/files", error="Choose a training file")
    try:
        added = await add_uploaded_file(state, data.file, data.name or None, ANONYMOUS)
    except DOMAIN_ERRORS as exc:
        return _redirect("/files", error=message_of(exc))
    if not added.report.ok:
        return _redirect("/files", error=f"{added.name}: {added.report.first_problem.message}")
    return _redirect("/files", notice=f"{added.name} added: {added.stats.conversation_count} conversations")


# --- JSON API --------------------------------------------------------------------------------

@get("/api/files")
async def api_list_files(state: State) -> list[dict[str, Any]]:
    return await queries.list_files(state.pool)


@post("/api/files", status_code=201)
async def api_upload_file(state: State, data: Annotated[FileForm, Body(media_type=RequestEncodingType.MULTI_PART)]
                          ) -> dict[str, Any]:
    added = await add_uploaded_file(state, data.file, data.name or None, ANONYMOUS)
    return {"id": added.file_id, "name": added.name, "status": "active" if added.report.ok else "invalid",
            "problem_count": added.report.problem_count,
            "problems": [{"place": p.place, "message": p.message} for p in added.report.problems],
            "conversation_count": added.stats.conversation_count if added.stats else 0,
            "training_pair_count": added.stats.training_pair_count if added.stats else 0}


@get("/api/jobs")
async def api_list_jobs(
    state: State, status: FromQuery[list[str] | None] = None, preset: FromQuery[str | None] = None,
    gpu_tier: FromQuery[str | None] = None, created_by: FromQuery[str | None] = None,
    client: FromQuery[str | None] = None, project: FromQuery[str | None] = None,
    tags: FromQuery[list[str] | None] = None, text: FromQuery[str | None] = None,
    created_from: FromQuery[datetime | None] = None, created_to: FromQuery[datetime | None] = None,
    cost_from: FromQuery[Decimal | None] = None, cost_to: FromQuery[Decimal | None] = None,
    sort: FromQuery[str] = "created_at", descending: FromQuery[bool] = True, page: FromQuery[int] = 1,
    per_page: FromQuery[int] = 200,
) -> Response[list[dict[str, Any]]]:
    """Jobs newest first, or filtered, searched (`text`) and sorted (FR2.3.1); X-Total-Count has the number matching."""
    try:
        search = JobSearch(status=status or (), preset=preset, gpu_tier=gpu_tier, created_by=created_by, client=client,
                           project=project, tags=tags or (), text=text, created_from=created_from,
                           created_to=created_to, cost_from=cost_from, cost_to=cost_to, sort=sort,
                           descending=descending, page=page, per_page=per_page)
    except ValueError as exc:
        raise ClientException(str(exc)) from None
    found = await queries.search_jobs(state.pool, search)
    return Response(found.jobs, headers={"X-Total-Count": str(found.total)})


@get("/api/jobs/{job_id:uuid}")
async def api_get_job(state: State, job_id: UUID) -> dict[str, Any]:
    row = await queries.get_job(state.pool, job_id)
    if row is None:
        raise NotFoundException(f"no training job {job_id} (it may still be on its way to the read model)")
    return row


@post("/api/jobs", status_code=201)
async def api_create_job(state: State, data: CreateJob) -> CreatedJob:
    options = data.model_dump(exclude={"training_file_id", "start", "override_justification"})
    job_id, warnings = await create_job(state, ANONYMOUS, training_file_id=data.training_file_id, start=data.start,
                                        override_justification=data.override_justification, **options)
    return CreatedJob(id=job_id, started=data.start, warnings=warnings)


@post("/api/jobs/{job_id:uuid}/start", status_code=200)
async def api_start_job(state: State, job_id: UUID, override_justification: str | None = None) -> CreatedJob:
    await check_queue(state)
    warnings = await asyncio.to_thread(state.store.app.start_job, job_id, ANONYMOUS.name, ANONYMOUS.role,
                                       datetime.now(timezone.utc), override_justification)
    return CreatedJob(id=job_id, started=True, warnings=warnings)


@post("/api/jobs/{job_id:uuid}/cancel", status_code=200)
async def api_cancel_job(state: State, job_id: UUID, data: CancelJob) -> dict[str, str]:
    await asyncio.to_thread(state.store.app.cancel_job, job_id, data.reason, data.notes, ANONYMOUS.name,
                            datetime.now(timezone.utc))
    return {"id": str(job_id), "status": "cancelled"}


class PodFault(BaseModel):
    action: Literal["preempt", "kill", "freeze", "no_capacity", "slow_start"]
    count: int = Field(default=1, ge=0, le=600)  # no_capacity 0: capacity is back


@post("/api/jobs/{job_id:uuid}/faults", status_code=200)
async def api_inject_fault(state: State, job_id: UUID, data: PodFault) -> dict[str, Any]:
    """Fault injection on the local pod provider (tests, demos): preempt = SIGTERM, kill = SIGKILL,
    no_capacity = the next `count` pod requests fail, slow_start = each pod start takes `count` s."""
    reply = await state.nc.request("control.pods", json.dumps({"job_id": str(job_id), **data.model_dump()}).encode(),
                                   timeout=10)
    answer = json.loads(reply.data)
    if not answer.get("ok"):
        raise ClientException(status_code=409, detail=answer.get("error", "fault refused"))
    return answer


@get("/health")
async def health_check(state: State) -> Response[dict[str, Any]]:
    try:
        async with state.pool.connection(timeout=5) as conn:
            report = await health.collect(conn, state.nc)
    except Exception as exc:  # noqa: BLE001 - health reports every failure instead of raising
        report = {"status": "down", "database": f"error: {type(exc).__name__}: {exc}", "nats":
                  "ok" if state.nc.is_connected else "disconnected"}
    return Response(report, status_code=200 if report["status"] == "ok" else 503)


def create_app(settings: Settings, database_url: str, nats_url: str) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        nc = await bus.connect(nats_url, "web", settings.connect_timeout_s)
        pool = AsyncConnectionPool(database_url, min_size=1, max_size=8, open=False)
        await pool.open(wait=True, timeout=settings.connect_timeout_s)
        store = await asyncio.to_thread(EventStore.open, database_url, 5, settings.budget_policy())
        app.state.update(nc=nc, pool=pool, store=store, objects=ObjectStore(nc.jetstream()), settings=settings)
        try:
            yield
        finally:
            store.close()
            await pool.close()
            await nc.close()

    return Litestar(
        route_handlers=[index, create_job_form, files_page, upload_file_form, api_list_files, api_upload_file,
                        api_list_jobs, api_get_job, api_create_job, api_start_job, api_cancel_job, api_inject_fault,
                        health_check, job_actions.router, exports.router, finance.router, notifications.router,
                        job_views.api_job_detail,
                        create_static_files_router(path="/static", directories=[HERE / "static"])],
        lifespan=[lifespan],
        exception_handlers={cls: domain_error_response for cls in DOMAIN_ERRORS},
        template_config=TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine),
        openapi_config=OpenAPIConfig(title="LoRA Pipeline API", version="0.1.0"),
        request_max_body_size=256 * 1024 * 1024,
        debug=False,
    )
