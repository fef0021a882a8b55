"""New job (FR1.1.2, FR1.1.3, FR1.2.1, FR1.2.2, FR1.3.1): the form creates a configured job, or
edits one before it starts; the review page (review_job.py) starts it."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any
from uuid import UUID

from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from domain.aggregates.catalog_file import CatalogFile
from domain.applications import TrainingFileNotFoundError
from domain.preset_choice import HyperparameterError
from domain.presets import InsufficientVramError, PresetLockedError, UnknownPresetError
from domain.training_file import IneligibleTrainingFileError
from web.auth import actor_of
from web.clock import utcnow
from web.errors import DOMAIN_ERRORS, message_of, status_of
from web.flows import create_job
from web.job_form import JobInput
from web.limit_increase import request_increase
from web.new_job_view import NewJobPage, editable_job
from web.quote import TIERS
from web.template_library.prefill import from_job, from_template

FILE_ERRORS = (TrainingFileNotFoundError, IneligibleTrainingFileError)
PRESET_ERRORS = (PresetLockedError, UnknownPresetError, InsufficientVramError)


def render(template: str, context: dict[str, Any], status: int = 200) -> Template:
    return Template(template, context=context, status_code=status)


def field_of(exc: Exception) -> str:
    """The form field a domain refusal is about."""
    if isinstance(exc, FILE_ERRORS):
        return "training_file_id"
    if isinstance(exc, HyperparameterError):  # a carried setting (template, clone) out of range
        return f"setting_{exc.field}"
    return "preset" if isinstance(exc, PRESET_ERRORS) else "form"


@get("/jobs/new", media_type=MediaType.HTML)
async def new_job_page(request: Request, state: State, file: FromQuery[str | None] = None,
                       edit: FromQuery[str | None] = None,
                       preset: FromQuery[str | None] = None, gpu_tier: FromQuery[str | None] = None,
                       template: FromQuery[str | None] = None,
                       clone: FromQuery[str | None] = None) -> Template:
    """Steps: training file, preset, GPU, details; the cost panel beside them (`?file=` preselects;
    `?template=` starts from a template, FR5.2.2; `?clone=` from another job's settings, FR8.1.2)."""
    editing = await editable_job(state, edit)
    carried_error = None
    if editing is not None:
        values = JobInput.of_job(editing)
    else:
        values = JobInput(training_file_id=(file or "")[:64], preset=(preset or "")[:40].lower(),
                          gpu_tier=gpu_tier if gpu_tier in {t.value for t in TIERS} else "spot")
        if template:
            values, carried_error = await from_template(state, actor_of(request), template[:64], values)
        elif clone:
            values, carried_error = await from_job(state, actor_of(request), clone[:64], values)
    page = await NewJobPage.load(state, actor_of(request), values, editing, preselect=True)
    if editing is not None:
        kept = page.default_name() if editing.name == page.default_name() else ""
        page.values = replace(page.values, name_default=kept)
    gone = "That job cannot be edited: it was not found or has already started."
    return render("new_job.html", await page.context(error=gone if edit and editing is None else carried_error))


@post("/jobs/new", media_type=MediaType.HTML)
async def create_job_form(request: Request, state: State) -> Response:
    """Creates (or, editing, updates) the configured job, never starting it: the review page does."""
    form = await request.form()
    values = JobInput.of(form)
    editing = await editable_job(state, values.job_id) if values.job_id else None
    if values.job_id and editing is None:
        return render("error.html", {"title": "Cannot edit this job",
                                     "message": "It was not found or has already started."}, 409)
    if editing is not None:
        values = replace(values, training_file_id=str(CatalogFile.id_for(editing.training_file.sha256)))
    page = await NewJobPage.load(state, actor_of(request), values, editing)
    if form.get("action") == "refresh":
        return render("new_job.html", await page.context())
    if errors := page.errors():
        return render("new_job.html", await page.context(errors, error="Please correct the fields marked below."), 400)
    try:
        job_id = await save(page)
    except DOMAIN_ERRORS as exc:
        return render("new_job.html", await page.context({field_of(exc): message_of(exc)}, error=message_of(exc)),
                      status_of(exc))
    return Redirect(f"/jobs/{job_id}/review", status_code=303)


async def save(page: NewJobPage) -> UUID:
    """Creates the configured job, or reconfigures the one being edited; returns its id."""
    options = page.values.options(page.name())
    probability = page.history.interruption_probability
    if page.editing is None:
        job_id, _ = await create_job(page.state, page.actor, training_file_id=page.values.file_uuid(), start=False,
                                     interruption_probability=probability, coefficients=page.history.coefficients,
                                     **options)
        return job_id
    await asyncio.to_thread(page.state.store.app.reconfigure_job, page.editing.id, **options,
                            successful_jobs=page.successful_jobs, interruption_probability=probability,
                            coefficients=page.history.coefficients, actor=page.actor.name, at=utcnow())
    return page.editing.id


@post("/jobs/new/limit-increase", media_type=MediaType.HTML)
async def new_job_limit_increase(request: Request, state: State) -> Response:
    """"Increase Budget Limit" from the cost panel: the form comes back as it was, with the answer."""
    form = await request.form()
    actor = actor_of(request)
    values = JobInput.of(form)
    editing = await editable_job(state, values.job_id) if values.job_id else None
    page = await NewJobPage.load(state, actor, values, editing)
    problem, notice = await request_increase(state, form, actor, page.budget)
    if problem:
        return render("new_job.html", await page.context({"limit": problem}, error=problem, open_limit=True), 400)
    return render("new_job.html", await page.context(notice=notice))


routes = [new_job_page, create_job_form, new_job_limit_increase]
