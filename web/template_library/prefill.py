"""What "Start from Template" (FR5.2.2) and "Clone Configuration" (FR8.1.2) put into the new-job
form: the preset, GPU tier and changed settings (all still editable), the training file of a cloned
job, and the note — "Started from template: {name}" — that the application keeps on the job."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from litestar.datastructures import State

from domain.aggregates.catalog_file import CatalogFile
from domain.aggregates.template import TemplateNotFoundError
from domain.applications import JobNotFoundError
from domain.job_metadata import COMMON_TAGS, InvalidJobError
from domain.presets import UnknownPresetError, preset_named
from domain.training_settings import CHECKPOINT_KEY, LABELS, SETTINGS, overrides_of
from web.flows import Actor
from web.job_form import JobInput, as_uuid

NO_TEMPLATE = "That template was not found: it was deleted, or it is someone's private template."
NO_JOB = "That job cannot be cloned: it was not found, has no configuration yet, or is private to its creator."


async def from_template(state: State, actor: Actor, template_id: str, values: JobInput) -> tuple[JobInput, str | None]:
    """The form as the template fills it, or the values unchanged and why not."""
    found = as_uuid(template_id)
    try:
        if found is None:
            raise TemplateNotFoundError(NO_TEMPLATE)
        template = await asyncio.to_thread(state.store.app.template, found)
        template.check_visible_to(actor.name)
    except TemplateNotFoundError:
        return values, NO_TEMPLATE
    return replace(values, preset=template.preset, gpu_tier=template.gpu_tier, template_id=str(template.id),
                   settings=tuple((k, str(v)) for k, v in template.overrides.items()), notes=template.note), None


async def from_job(state: State, actor: Actor, job_id: str, values: JobInput) -> tuple[JobInput, str | None]:
    """The form with a job's settings, file and documentation, if `actor` may see that job."""
    found = as_uuid(job_id)
    app = state.store.app
    try:
        if found is None or not await asyncio.to_thread(app.can_view_job, found, actor.name, actor.role):
            return values, NO_JOB
        job = await asyncio.to_thread(app.get_job, found)
    except JobNotFoundError:
        return values, NO_JOB
    config = job.configuration or {}
    if not config.get("preset"):
        return values, NO_JOB
    try:
        overrides = overrides_of(config["preset"], config.get("hyperparameters") or {})
    except (UnknownPresetError, InvalidJobError):
        return values, NO_JOB  # a configuration made by hand, outside the presets
    return replace(values, training_file_id=str(CatalogFile.id_for(job.training_file.sha256)),
                   preset=config["preset"], gpu_tier=config.get("gpu_tier", "spot"), clone_of=str(job.id),
                   settings=tuple((k, str(v)) for k, v in overrides.items()), description=job.description,
                   tags=tuple(t for t in job.tags if t in COMMON_TAGS),
                   custom_tags=" ".join(t for t in job.tags if t not in COMMON_TAGS), client=job.client or "",
                   project=job.project or "", notes=f"Configuration cloned from job “{job.name}” ({job.id})"), None


def setting_fields(values: JobInput, preset: str, default_checkpoint: int) -> list[dict[str, Any]]:
    """The carried settings as inputs: each with the preset's own value as its placeholder."""
    try:
        base = preset_named(preset).as_config()
    except UnknownPresetError:
        base = {}
    return [{"key": key, "label": LABELS[key], "value": values.setting(key),
             "placeholder": str(default_checkpoint if key == CHECKPOINT_KEY else base.get(key, ""))}
            for key in SETTINGS]
