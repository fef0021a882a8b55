"""The web process: HTML pages and the JSON API, reading projections, commanding applications."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID, uuid4

from litestar import Litestar, MediaType, Response, get, post
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.datastructures import State, UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.params import Body
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field

from domain.aggregates.training_job import InvalidJobError
from domain.values import ArtifactRef
from pipeline import bus, health
from pipeline.eventstore import EventStore
from pipeline.objectstore import ArtifactMissingError, ObjectStore
from pipeline.settings import Settings

HERE = Path(__file__).parent
FILES_BUCKET = "files"
ANONYMOUS = "anonymous"  # until sign-in lands (issue 7), every job's creator is this


class ArtifactRefModel(BaseModel):
    bucket: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=512)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class CreateJob(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    training_file: ArtifactRefModel


class JobView(BaseModel):
    id: UUID
    name: str
    status: str
    training_file: ArtifactRefModel
    created_by: str
    created_at: datetime
    updated_at: datetime


class CreatedJob(BaseModel):
    id: UUID
    status: str


@dataclass
class JobForm:
    name: str
    file: UploadFile


JOB_COLUMNS = "id, name, status, training_file, created_by, created_at, updated_at"


async def list_jobs(pool: AsyncConnectionPool, limit: int = 200) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(f"SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at DESC, id LIMIT %s", (limit,))
        return await cur.fetchall()


def safe_name(filename: str | None) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(filename or "upload").name).strip("._")
    return cleaned[:100] or "upload"


async def store_upload(state: State, upload: UploadFile) -> ArtifactRef:
    name = f"{uuid4()}/{safe_name(upload.filename)}"
    return await state.objects.put_fileobj(FILES_BUCKET, name, upload.file)


async def create_job(state: State, name: str, ref: ArtifactRef) -> UUID:
    await state.objects.check(ref)
    return await asyncio.to_thread(
        state.store.jobs.create_and_queue, name, ref, ANONYMOUS, datetime.now(timezone.utc))


@get("/", media_type=MediaType.HTML)
async def index(state: State, error: str | None = None) -> Template:
    return Template("index.html", context={"jobs": await list_jobs(state.pool), "error": error})


@post("/jobs", media_type=MediaType.HTML)
async def create_job_form(
    state: State, data: Annotated[JobForm, Body(media_type=RequestEncodingType.MULTI_PART)]
) -> Redirect:
    if not data.file.filename:
        return Redirect("/?error=Choose+a+training+file")
    try:
        ref = await store_upload(state, data.file)
        await create_job(state, data.name, ref)
    except (InvalidJobError, ArtifactMissingError) as exc:
        return Redirect(f"/?error={_quote(str(exc))}")
    return Redirect("/", status_code=303)


@get("/api/jobs")
async def api_list_jobs(state: State) -> list[JobView]:
    return [JobView(**row) for row in await list_jobs(state.pool)]


@get("/api/jobs/{job_id:uuid}")
async def api_get_job(state: State, job_id: UUID) -> JobView:
    async with state.pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = %s", (job_id,))
        row = await cur.fetchone()
    if row is None:
        raise NotFoundException(f"no training job {job_id} (it may still be on its way to the read model)")
    return JobView(**row)


@post("/api/jobs", status_code=201)
async def api_create_job(state: State, data: CreateJob) -> CreatedJob:
    ref = ArtifactRef(**data.training_file.model_dump())
    try:
        job_id = await create_job(state, data.name, ref)
    except (InvalidJobError, ArtifactMissingError) as exc:
        raise ValidationException(str(exc)) from None
    return CreatedJob(id=job_id, status="queued")


@post("/api/files", status_code=201)
async def api_upload_file(
    state: State, data: Annotated[UploadFile, Body(media_type=RequestEncodingType.MULTI_PART)]
) -> ArtifactRefModel:
    return ArtifactRefModel(**(await store_upload(state, data)).as_dict())


@get("/health")
async def health_check(state: State) -> Response[dict[str, Any]]:
    try:
        async with state.pool.connection(timeout=5) as conn:
            report = await health.collect(conn, state.nc)
    except Exception as exc:  # noqa: BLE001 - health reports every failure instead of raising
        report = {"status": "down", "database": f"error: {type(exc).__name__}: {exc}", "nats":
                  "ok" if state.nc.is_connected else "disconnected"}
    return Response(report, status_code=200 if report["status"] == "ok" else 503)


def _quote(text: str) -> str:
    from urllib.parse import quote_plus

    return quote_plus(text[:300])


def create_app(settings: Settings, database_url: str, nats_url: str) -> Litestar:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        nc = await bus.connect(nats_url, "web", settings.connect_timeout_s)
        pool = AsyncConnectionPool(database_url, min_size=1, max_size=8, open=False)
        await pool.open(wait=True, timeout=settings.connect_timeout_s)
        store = await asyncio.to_thread(EventStore.open, database_url)
        app.state.update(nc=nc, pool=pool, store=store, objects=ObjectStore(nc.jetstream()))
        try:
            yield
        finally:
            store.close()
            await pool.close()
            await nc.close()

    return Litestar(
        route_handlers=[index, create_job_form, api_list_jobs, api_get_job, api_create_job,
                        api_upload_file, health_check,
                        create_static_files_router(path="/static", directories=[HERE / "static"])],
        lifespan=[lifespan],
        template_config=TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine),
        openapi_config=OpenAPIConfig(title="LoRA Pipeline API", version="0.1.0"),
        request_max_body_size=1024 * 1024 * 1024,
        debug=False,
    )
