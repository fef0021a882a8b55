"""The new-job form's checks, field by field in the domain's words (FR1.1.1-FR1.1.3, FR1.3.1); the
application checks them again when it creates or reconfigures the job."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from domain.gpu import GPU_MEMORY_GB, PricingTier
from domain.job_metadata import (
    InvalidMetadataError,
    clean_description,
    clean_label,
    clean_name,
    clean_note,
    clean_tags,
)
from domain.presets import InsufficientVramError, PresetLockedError, UnknownPresetError, check_unlocked, preset_named
from web.errors import message_of
from web.job_form import JobInput
from web.quote import TIERS

if TYPE_CHECKING:
    from web.new_job_view import NewJobPage


def form_errors(page: NewJobPage) -> dict[str, str]:
    """Every field's problem; an expensive on-demand choice must be confirmed (FR1.1.3)."""
    v, errors = page.values, {}
    if page.editing is None and (problem := file_error(v, page.file)):
        errors["training_file_id"] = problem
    if problem := preset_error(v.preset, page.file, page.successful_jobs):
        errors["preset"] = problem
    if v.gpu_tier not in {t.value for t in TIERS}:
        errors["gpu_tier"] = "Choose Spot Instance or On-Demand Instance"
    errors |= detail_errors(v, page.name())
    if "gpu_tier" not in errors and (question := unconfirmed_on_demand(page)):
        errors |= {"gpu_tier": question, "confirm_on_demand": "confirm"}
    return errors


def length_check(page: NewJobPage) -> dict[str, Any] | None:
    """Issue #17: whether the agent would cut the file's longest examples with the chosen preset, in figures (the
    JSON estimate) and in words (the page's warning); None where the file's example lengths are not known."""
    cut = page.length_cut()
    if cut is None:
        return None
    return {"estimated": True, "seq_len": cut.seq_len, "examples": cut.total, "examples_cut": cut.examples,
            "percent_cut": round(cut.percent, 1), "most_tokens_cut": cut.most_tokens, "warning": cut.warning}


def file_error(v: JobInput, file: Mapping[str, Any] | None) -> str | None:
    if not v.training_file_id:
        return "Choose a training file"
    if file is None:
        return "Training file not found"
    return file["refusal"] or None


def preset_error(name: str, file: Mapping[str, Any] | None, successful_jobs: int) -> str | None:
    try:
        preset = preset_named(name)
        if file is not None:
            check_unlocked(preset, file["conversations"], successful_jobs)
        preset.check_fits(GPU_MEMORY_GB)
    except (UnknownPresetError, PresetLockedError, InsufficientVramError) as exc:
        return message_of(exc)
    return None


def detail_errors(v: JobInput, name: str) -> dict[str, str]:
    """Name, description, notes, tags, client and project (FR1.3.1)."""
    checks: dict[str, Callable[[], Any]] = {
        "name": lambda: clean_name(name), "description": lambda: clean_description(v.description),
        "notes": lambda: v.notes.strip() and clean_note(v.notes), "tags": lambda: clean_tags(v.all_tags()),
        "client": lambda: clean_label(v.client, "Client"), "project": lambda: clean_label(v.project, "Project")}
    errors = {}
    for key, check in checks.items():
        try:
            check()
        except InvalidMetadataError as exc:
            errors[key] = str(exc)
    return errors


def unconfirmed_on_demand(page: NewJobPage) -> str | None:
    """The confirmation question, while an on-demand choice that needs one is not confirmed yet."""
    quote = page.quote()
    if quote is None or page.tier() is not PricingTier.ON_DEMAND or page.values.confirm_on_demand:
        return None
    return quote.confirmation.message if quote.confirmation is not None else None
