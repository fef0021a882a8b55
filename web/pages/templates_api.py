"""The configuration templates JSON API (FR5.2.2): list (filters, sorts) and read templates with their
analytics, save a completed job as one, edit, delete (with `confirm=true`), and start a job from one.
Refusals are the domain's messages (400 invalid, 403 not allowed, 404 not found or private, 409 not
saveable); nothing is stored on a refusal."""

from __future__ import annotations

import asyncio
from typing import Any, Literal
from uuid import UUID

from litestar import Request, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, FromQuery
from pydantic import BaseModel, Field

from projections.templates import SORTS, get_template, list_templates
from web.auth import actor_of
from web.clock import utcnow
from web.flows import create_job
from web.pages.templates import save_from_job
from web.template_library.views import as_json


class SaveTemplate(BaseModel):
    job_id: UUID
    name: str = Field(max_length=500)
    description: str | None = Field(default=None, max_length=5000)
    visibility: Literal["private", "team"] = "private"
    tags: list[str] = Field(default_factory=list, max_length=50)


class EditTemplate(BaseModel):
    description: str | None = Field(default=None, max_length=5000)
    tags: list[str] | None = Field(default=None, max_length=50)
    visibility: Literal["private", "team"] | None = None


class StartFromTemplate(BaseModel):
    training_file_id: UUID
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    notes: str | None = Field(default=None, max_length=20000)
    tags: list[str] = Field(default_factory=list, max_length=50)
    client: str | None = Field(default=None, max_length=1000)
    project: str | None = Field(default=None, max_length=1000)
    preset: Literal["conservative", "balanced", "aggressive"] | None = None
    gpu_tier: Literal["spot", "on_demand"] | None = None
    overrides: dict[str, float | int | str] | None = Field(default=None, max_length=10)
    start: bool = False
    override_justification: str | None = Field(default=None, max_length=2000)


@get("/api/templates")
async def api_templates(request: Request, state: State, creator: FromQuery[str | None] = None,
                        tag: FromQuery[str | None] = None,
                        visibility: FromQuery[Literal["private", "team"] | None] = None, sort: FromQuery[str] = "name",
                        descending: FromQuery[bool] = False) -> list[dict[str, Any]]:
    """The templates you may use, with usage count, success rate and averages (FR5.2.2)."""
    if sort not in SORTS:
        raise ClientException(f"sort must be one of {', '.join(SORTS)} (got {sort!r})")
    rows = await list_templates(state.pool, actor_of(request).name, creator=creator, tag=tag, visibility=visibility,
                                sort=sort, descending=descending)
    return [as_json(r) for r in rows]


@get("/api/templates/{template_id:uuid}")
async def api_template(request: Request, state: State, template_id: FromPath[UUID]) -> dict[str, Any]:
    row = await get_template(state.pool, template_id, actor_of(request).name)
    if row is None:
        raise NotFoundException(f"no template {template_id} that you may see (it may still be on its way to the"
                                " read model)")
    return as_json(row)


@post("/api/templates", status_code=201)
async def api_save_template(request: Request, state: State, data: SaveTemplate) -> dict[str, Any]:
    """"Save as Template" on a completed job whose configuration succeeds more than 90% of the time."""
    template_id = await save_from_job(state, data.job_id, actor_of(request), name=data.name,
                                      description=data.description, visibility=data.visibility, tags=data.tags)
    return {"id": str(template_id), "name": " ".join(data.name.split())}


@patch("/api/templates/{template_id:uuid}")
async def api_edit_template(request: Request, state: State, template_id: FromPath[UUID],
                            data: EditTemplate) -> dict[str, Any]:
    """Description, tags and visibility (FR5.2.2); a field left out keeps its value."""
    actor, app = actor_of(request), state.store.app
    current = await asyncio.to_thread(app.template, template_id)
    current.check_visible_to(actor.name)
    await asyncio.to_thread(app.edit_template, template_id,
                            description=current.description if data.description is None else data.description,
                            tags=current.tags if data.tags is None else data.tags,
                            visibility=data.visibility or current.visibility, actor=actor.name, role=actor.role,
                            at=utcnow())
    edited = await asyncio.to_thread(app.template, template_id)
    return {"id": str(template_id), "description": edited.description, "tags": edited.tags,
            "visibility": edited.visibility}


@delete("/api/templates/{template_id:uuid}", status_code=200)
async def api_delete_template(request: Request, state: State, template_id: FromPath[UUID],
                              confirm: FromQuery[bool] = False
                              ) -> dict[str, Any]:
    """Needs `?confirm=true`; the jobs started from the template keep their settings."""
    if not confirm:
        raise ClientException("Deleting a template needs confirmation: send confirm=true")
    actor = actor_of(request)
    await asyncio.to_thread(state.store.app.delete_template, template_id, actor=actor.name, role=actor.role,
                            at=utcnow())
    return {"id": str(template_id), "deleted": True}


@post("/api/templates/{template_id:uuid}/jobs", status_code=201)
async def api_start_from_template(request: Request, state: State, template_id: FromPath[UUID],
                                  data: StartFromTemplate) -> Response[dict[str, Any]]:
    """A job from the template (its preset, GPU tier and settings unless given here), its notes
    starting with "Started from template: {name}"; configured, or started with `start`."""
    actor = actor_of(request)
    template = await asyncio.to_thread(state.store.app.template, template_id)
    template.check_visible_to(actor.name)
    options = data.model_dump(exclude={"training_file_id", "start", "override_justification", "overrides"})
    options |= {"preset": data.preset or template.preset, "gpu_tier": data.gpu_tier or template.gpu_tier,
                "overrides": {**template.overrides, **(data.overrides or {})}, "template_id": template_id}
    job_id, warnings = await create_job(state, actor, training_file_id=data.training_file_id, start=data.start,
                                        override_justification=data.override_justification, **options)
    return Response({"id": str(job_id), "template_id": str(template_id), "started": data.start,
                     "warnings": warnings}, status_code=201)


routes = [api_templates, api_template, api_save_template, api_edit_template, api_delete_template,
          api_start_from_template]
