"""The configuration templates library (FR5.2.2): the library page (grid or list, filters by creator,
tag and visibility, sorts by name, created date and usage), a template's page with its analytics
and the jobs started from it, its edit and delete forms, and "Save as Template" on a completed job.
"Start from Template" is the new-job form with `?template=` (web/pages/new_job.py)."""

from __future__ import annotations

import asyncio
from uuid import UUID

from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from domain.aggregates.template import NAME_MAX, VISIBILITIES, TemplateNotFoundError
from domain.job_metadata import COMMON_TAGS
from projections.templates import SORTS, configuration_outcomes, get_template, list_templates, template_filters
from projections.templates import template_jobs as jobs_of
from web.auth import actor_of
from web.clock import utcnow
from web.errors import DOMAIN_ERRORS, message_of, status_of
from web.flows import Actor
from web.forms import redirect_with, split_tags
from web.job_page import PageInput, render_page
from web.template_library.views import card

VIEWS = ("grid", "list")


@get("/templates", media_type=MediaType.HTML)
async def library(request: Request, state: State, creator: FromQuery[str] = "", tag: FromQuery[str] = "",
                  visibility: FromQuery[str] = "",
                  sort: FromQuery[str] = "name", order: FromQuery[str] = "", view: FromQuery[str] = "grid",
                  notice: FromQuery[str | None] = None,
                  error: FromQuery[str | None] = None) -> Template:
    """FR5.2.2's library: every template this person may use, with its analytics."""
    actor = actor_of(request)
    sort = sort if sort in SORTS else "name"
    descending = order == "desc" if order else sort in ("created", "usage")
    rows = await list_templates(state.pool, actor.name, creator=creator[:100] or None, tag=tag[:40] or None,
                                visibility=visibility if visibility in VISIBILITIES else None, sort=sort,
                                descending=descending)
    every = state.settings.agent.checkpoint_every
    return Template("templates.html", context={
        "templates": [card(r, actor.name, actor.role, every) for r in rows], "filters": await template_filters(
            state.pool, actor.name), "chosen": {"creator": creator, "tag": tag, "visibility": visibility, "sort": sort,
                                                "order": "desc" if descending else "asc"},
        "view": view if view in VIEWS else "grid", "sorts": {"name": "Name", "created": "Created date",
                                                             "usage": "Usage count"},
        "notice": notice, "error": error})


@get("/templates/{template_id:uuid}", media_type=MediaType.HTML)
async def template_page(request: Request, state: State, template_id: FromPath[UUID],
                        notice: FromQuery[str | None] = None,
                        error: FromQuery[str | None] = None) -> Response:
    actor = actor_of(request)
    row = await get_template(state.pool, template_id, actor.name)
    if row is None:
        return await not_in_read_model(state, template_id, actor)
    return Template("template_detail.html", context={
        "t": card(row, actor.name, actor.role, state.settings.agent.checkpoint_every),
        "jobs": await jobs_of(state.pool, template_id), "visibilities": VISIBILITIES, "common_tags": COMMON_TAGS,
        "notice": notice, "error": error})


async def not_in_read_model(state: State, template_id: UUID, actor: Actor) -> Response:
    """Just saved (a moment away from the read model), or no template this person may see."""
    try:
        template = await asyncio.to_thread(state.store.app.template, template_id)
        template.check_visible_to(actor.name)
    except TemplateNotFoundError as exc:
        return Template("error.html", status_code=404, context={"title": "No such template", "message": str(exc)})
    return Template("template_detail.html", context={"pending": True, "name": template.name, "id": template_id})


@post("/templates/{template_id:uuid}/edit", media_type=MediaType.HTML)
async def edit_template(request: Request, state: State, template_id: FromPath[UUID]) -> Response:
    form, actor = await request.form(), actor_of(request)
    try:
        await asyncio.to_thread(state.store.app.edit_template, template_id,
                                description=str(form.get("description") or "")[:5000],
                                tags=split_tags(str(form.get("tags") or "").lower()[:2000]),
                                visibility=str(form.get("visibility") or ""), actor=actor.name, role=actor.role,
                                at=utcnow())
    except DOMAIN_ERRORS as exc:
        return redirect_with(f"/templates/{template_id}", error=message_of(exc))
    return redirect_with(f"/templates/{template_id}", notice="Template updated.")


@post("/templates/{template_id:uuid}/delete", media_type=MediaType.HTML)
async def delete_template(request: Request, state: State, template_id: FromPath[UUID]) -> Response:
    """Needs the confirmation box ticked; the jobs started from the template keep their settings."""
    form, actor = await request.form(), actor_of(request)
    if form.get("confirm") != "yes":
        return redirect_with(f"/templates/{template_id}", error="Tick “Delete this template” to confirm")
    try:
        await asyncio.to_thread(state.store.app.delete_template, template_id, actor=actor.name, role=actor.role,
                                at=utcnow())
    except DOMAIN_ERRORS as exc:
        return redirect_with(f"/templates/{template_id}", error=message_of(exc))
    return redirect_with("/templates", notice="Template deleted. The jobs started from it are unchanged.")


async def save_from_job(state: State, job_id: UUID, actor: Actor, *, name: str, description: str | None,
                        visibility: str, tags: list[str]) -> UUID:
    """FR5.2.2 "Save as Template": the job's configuration's outcomes decide (> 90% succeeded)."""
    job = await asyncio.to_thread(state.store.app.get_job, job_id)
    config = job.configuration or {}
    completed, failed = await configuration_outcomes(state.pool, config.get("preset") or "",
                                                     config.get("gpu_tier") or "spot")
    return await asyncio.to_thread(state.store.app.save_job_as_template, job_id, completed=completed, failed=failed,
                                   name=name, description=description, visibility=visibility, tags=tags,
                                   actor=actor.name, at=utcnow())


@post("/jobs/{job_id:uuid}/save-as-template", media_type=MediaType.HTML)
async def save_as_template(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    form, actor = await request.form(), actor_of(request)
    sent = {k: str(form.get(k) or "")[:5000] for k in ("name", "description", "visibility", "tags")}
    try:
        template_id = await save_from_job(state, job_id, actor, name=sent["name"][:NAME_MAX * 2],
                                          description=sent["description"] or None, visibility=sent["visibility"],
                                          tags=split_tags(sent["tags"].lower()))
    except DOMAIN_ERRORS as exc:
        return await render_page(request, state, job_id, PageInput(), error=message_of(exc),
                                 form=sent | {"template_error": message_of(exc)}, status_code=status_of(exc))
    return Redirect(f"/templates/{template_id}?notice=Template+saved.", status_code=303)


routes = [library, template_page, edit_template, delete_template, save_as_template]
