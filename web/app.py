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
from uuid import UUID

import nats.errors
import psycopg
from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State, UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import (
    ClientException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.params import Body, FromPath, FromQuery
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field

from domain.job_status import CancelReason
from handlers.pods.runpod_prices import price_source
from infra import bus
from infra.eventstore import EventStore
from infra.leadership import instance_name, registered
from infra.objectstore import ObjectStore
from infra.settings import Settings
from projections import job_reads
from projections.catalog import list_files
from projections.job_search import JobSearch, find_jobs
from web import (
    auth,
    banners,
    exports,
    finance,
    health,
    job_actions,
    job_views,
    markdown,
    notification_area,
    notifications,
    openai_api,
    pages,
    request_checks,
    webhooks,
)
from web.auth import actor_of
from web.errors import DOMAIN_ERRORS, domain_error_response, log_unexpected, not_found, unstorable_value
from web.flows import add_uploaded_file, check_queue, create_job
from web.job_format import Fmt
from web.sharing.access import check_job_access

HERE = Path(__file__).parent


class CreateJob(BaseModel):
    training_file_id: UUID
    validation_file_id: UUID | None = None  # validated on instead of a hold-out of the training file
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
    # FR6.3: client probe suites from GET /api/suites; the shipped knowledge suite unless false
    probe_suite_ids: list[UUID] = Field(default_factory=list, max_length=10)
    knowledge_retention: bool = True
    # FR6.2.1, FR6.4.1: replies to the shipped EI scenarios and to a rubric's prompts (a rubric_id from
    # GET /api/suites, else Elena Morales'), scored by a model judge or people; false leaves one out
    emotional_intelligence: bool = True
    brand_voice: bool = True
    rubric_id: UUID | None = None


class CreatedJob(BaseModel):
    id: UUID
    started: bool
    warnings: list[str]


class CancelJob(BaseModel):
    reason: CancelReason
    notes: str = Field(default="", max_length=2000)


@dataclass
class FileForm:
    file: UploadFile
    name: str = ""


# --- JSON API --------------------------------------------------------------------------------

@get("/api/files")
async def api_list_files(state: State) -> list[dict[str, Any]]:
    return await list_files(state.pool)


@post("/api/files", status_code=201)
async def api_upload_file(request: Request, state: State,
                          data: Annotated[FileForm, Body(media_type=RequestEncodingType.MULTI_PART)]
                          ) -> Response[dict[str, Any]]:
    """201 with the new entry; 200 with the existing one when these bytes are catalogued already
    (`already_catalogued` says under which name, and whether `name` was recorded as an alias)."""
    added = await add_uploaded_file(state, data.file, data.name or None, actor_of(request))
    return Response({
        "id": added.file_id, "name": added.name, "status": "active" if added.report.ok else "invalid",
        "problem_count": added.report.problem_count,
        "problems": [{"place": p.place, "message": p.message} for p in added.report.problems],
        "conversation_count": added.stats.conversation_count if added.stats else 0,
        "training_pair_count": added.stats.training_pair_count if added.stats else 0,
        "already_catalogued": added.already_catalogued}, status_code=200 if added.already_catalogued else 201)


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
    found = await find_jobs(state.pool, search)
    return Response(found.jobs, headers={"X-Total-Count": str(found.total)})


@get("/api/jobs/{job_id:uuid}")
async def api_get_job(state: State, job_id: FromPath[UUID]) -> dict[str, Any]:
    row = await job_reads.get_job(state.pool, job_id)
    if row is None:
        raise NotFoundException(f"no training job {job_id} (it may still be on its way to the read model)")
    return row


@post("/api/jobs", status_code=201)
async def api_create_job(request: Request, state: State, data: CreateJob) -> CreatedJob:
    options = data.model_dump(exclude={"training_file_id", "start", "override_justification"})
    job_id, warnings = await create_job(state, actor_of(request), training_file_id=data.training_file_id,
                                        start=data.start, override_justification=data.override_justification,
                                        **options)
    return CreatedJob(id=job_id, started=data.start, warnings=warnings)


@post("/api/jobs/{job_id:uuid}/start", status_code=200)
async def api_start_job(request: Request, state: State, job_id: FromPath[UUID],
                        override_justification: FromQuery[str | None] = None
                        ) -> CreatedJob:
    await check_queue(state)
    actor = actor_of(request)
    warnings = await asyncio.to_thread(state.store.app.start_job, job_id, actor.name, actor.role,
                                       datetime.now(timezone.utc), override_justification)
    return CreatedJob(id=job_id, started=True, warnings=warnings)


@post("/api/jobs/{job_id:uuid}/cancel", status_code=200)
async def api_cancel_job(request: Request, state: State, job_id: FromPath[UUID], data: CancelJob) -> dict[str, str]:
    await asyncio.to_thread(state.store.app.cancel_job, job_id, data.reason, data.notes, actor_of(request).name,
                            datetime.now(timezone.utc))
    return {"id": str(job_id), "status": "cancelled"}


POD_FAULTS = ("preempt", "kill", "freeze")  # faults aimed at a job's running pod; the others at the provider


class PodFault(BaseModel):
    action: Literal["preempt", "kill", "freeze", "no_capacity", "slow_start"]
    count: int = Field(default=1, ge=0, le=600)  # no_capacity 0: capacity is back


@post("/api/jobs/{job_id:uuid}/faults", status_code=200, guards=[auth.require_admin])
async def api_inject_fault(state: State, job_id: FromPath[UUID], data: PodFault) -> dict[str, Any]:
    """Fault injection on the local pod provider (tests, demos): preempt = SIGTERM, kill = SIGKILL,
    no_capacity = the next `count` pod requests fail, slow_start = each pod start takes `count` s."""
    try:
        reply = await state.nc.request("control.pods",
                                       json.dumps({"job_id": str(job_id), **data.model_dump()}).encode(), timeout=10)
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError, TimeoutError):
        raise ClientException(status_code=409, detail="No local pod provider answers: fault injection needs the"
                              " handlers worker with PIPELINE_POD_PROVIDER=local") from None
    answer = json.loads(reply.data)
    if not answer.get("ok"):
        raise ClientException(status_code=409, detail=answer.get("error", "fault refused"))
    if data.action in POD_FAULTS and not answer.get("pods"):  # a finished job, or one whose pod has not started
        job = await asyncio.to_thread(state.store.app.get_job, job_id)
        raise ClientException(status_code=409, detail=f"This job has no running pod (status: {job.status.value}):"
                                                       f" there is nothing to {data.action}")
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


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
    # Scripts only from /static: a <script> that slipped into a page would not run either.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
                               " img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none';"
                               " base-uri 'self'; form-action 'self'",
}


async def add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def before_request(request: Request) -> Response | None:
    """Unusable input is refused with its place before any route runs; pages then get their banners."""
    refused = await request_checks.refuse_unusable_input(request)
    if refused is None:
        await load_banners(request)
    return refused


async def load_banners(request: Request) -> None:
    """Pages show the signed-in user's notification area (the bell, its count and list) and, under
    the header, banners only for what needs action now (web/notification_area.py)."""
    user = auth.user_of(request)
    if user is None or request.method not in ("GET", "POST") or "text/html" not in request.headers.get("accept", ""):
        return  # a refused form's page shows the area too
    found = await notification_area.inbox(request.app.state.pool, user.name, request.app.state.settings.budget.team)
    request.state.inbox = found
    request.state.banners = found["banners"]


def template_config() -> TemplateConfig:
    def configure(engine: JinjaTemplateEngine) -> None:
        auth.register_template_helpers(engine)
        engine.engine.filters["markdown"] = markdown.render
        engine.engine.globals["status_label"] = Fmt.status  # partials/status.html, the badge on every page

    return TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine, engine_callback=configure)


def create_app(settings: Settings, database_url: str, nats_url: str) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        nc = await bus.connect(nats_url, "web", settings.runtime.connect_timeout_s)
        pool = AsyncConnectionPool(database_url, min_size=1, max_size=8, open=False,
                                   check=AsyncConnectionPool.check_connection)  # rides out a PostgreSQL restart
        await pool.open(wait=True, timeout=settings.runtime.connect_timeout_s)
        store = await asyncio.to_thread(EventStore.open, database_url, 5, settings.budget_policy())
        app.state.update(nc=nc, pool=pool, store=store, objects=ObjectStore(nc.jetstream()), settings=settings,
                         prices=price_source(settings))  # RunPod's catalog, or our configured rates
        try:
            async with registered(database_url, "web", instance_name(settings.runtime.instance),  # /health lists it
                                  settings.runtime.lease_s, lambda: nc.is_connected):
                yield
        finally:
            store.close()
            await pool.close()
            await nc.close()

    return Litestar(
        route_handlers=[*auth.routes, *pages.all_routes(), api_list_files, api_upload_file,
                        api_list_jobs, api_get_job, api_create_job, api_start_job, api_cancel_job, api_inject_fault,
                        health_check, banners.router, job_actions.router, exports.router, finance.router,
                        notifications.router, webhooks.router, job_views.api_job_detail, openai_api.router,
                        create_static_files_router(  # the PDFs' fonts too: the pages' emoji font (app.css)
                            path="/static", directories=[HERE / "static", HERE / "reports" / "fonts"])],
        lifespan=[lifespan],
        exception_handlers={**{cls: domain_error_response for cls in DOMAIN_ERRORS},
                            NotAuthorizedException: auth.unauthorized, PermissionDeniedException: auth.forbidden,
                            NotFoundException: openai_api.under_v1(not_found),
                            MethodNotAllowedException: openai_api.under_v1(), psycopg.DataError: unstorable_value},
        middleware=[DefineMiddleware(auth.AuthMiddleware, exclude=auth.PUBLIC)],
        guards=[auth.check_csrf, check_job_access],
        before_request=before_request,
        after_request=add_security_headers,
        after_exception=[log_unexpected],
        template_config=template_config(),
        openapi_config=OpenAPIConfig(title="LoRA Pipeline API", version="0.1.0"),
        request_max_body_size=256 * 1024 * 1024,
        debug=False,
    )
