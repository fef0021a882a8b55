"""The first page: jobs and a quick new-job form (until the jobs list and new-job pages replace it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from litestar import MediaType, Request, get, post
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from web import queries
from web.auth import actor_of
from web.errors import DOMAIN_ERRORS, message_of
from web.flows import create_job
from web.forms import redirect_with, split_tags


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


@get("/", media_type=MediaType.HTML)
async def index(state: State, error: str | None = None, notice: str | None = None) -> Template:
    return Template("index.html", context={
        "jobs": await queries.list_jobs(state.pool), "files": await queries.list_files(state.pool, True),
        "error": error, "notice": notice})


@post("/jobs", media_type=MediaType.HTML)
async def create_job_form(request: Request, state: State,
                          data: Annotated[JobForm, Body(media_type=RequestEncodingType.URL_ENCODED)]) -> Redirect:
    try:
        _, warnings = await create_job(
            state, actor_of(request), training_file_id=data.training_file_id, preset=data.preset or None,
            gpu_tier=data.gpu_tier, name=data.name or None, description=data.description or None,
            tags=split_tags(data.tags), client=data.client or None, project=data.project or None,
            notes=data.notes or None)
    except DOMAIN_ERRORS as exc:
        return redirect_with("/", error=getattr(exc, "figures", None) or message_of(exc))
    return redirect_with("/", notice=" ".join(warnings) or "Job queued.")


routes = [index, create_job_form]
