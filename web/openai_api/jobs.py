"""`/v1/fine_tuning/jobs`: create (created, configured, started and its budget reserved in one save),
list, retrieve, cancel, pause and resume, and the job's events and checkpoints, in OpenAI's shapes. Lists read the
read models; a single job reads the read model, or the aggregate until the read model has it (so a
job answers at once after its create, as OpenAI's do)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal
from uuid import UUID

from litestar import Request, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, QueryParameter
from pydantic import BaseModel, ConfigDict, Field

from domain.aggregates.training_job import TrainingJob
from domain.applications import JobNotFoundError, TrainingFileNotFoundError
from domain.job_status import CancelReason
from domain.preset_choice import HyperparameterError, RequestedHyperparameters
from domain.training_file import VALIDATION_FILE_NOT_FOUND, IneligibleValidationFileError
from projections import cursor_pages
from projections.queries import configured_hyperparameters
from web import job_actions
from web.auth import actor_of
from web.clock import utcnow
from web.flows import launch_job
from web.openai_api.errors import OpenAIError, not_found
from web.openai_api.events import checkpoint_object, event_object
from web.openai_api.job_views import JobFacts, job_object, model_name
from web.openai_api.lists import envelope, metadata_filter, numbered_cursor, unknown_cursor, uuid_cursor


class Hyperparameters(BaseModel):
    """Each "auto" or a number, checked by `requested` (Litestar validates leniently: `true` would be 1)."""

    model_config = ConfigDict(extra="forbid")
    n_epochs: Any = None
    batch_size: Any = None
    learning_rate_multiplier: Any = None


class Supervised(BaseModel):
    hyperparameters: Hyperparameters | None = None


class Method(BaseModel):
    type: Literal["supervised", "dpo", "reinforcement"]
    supervised: Supervised | None = None
    dpo: dict[str, Any] | None = None
    reinforcement: dict[str, Any] | None = None


class CreateJob(BaseModel):
    """OpenAI's create parameters, and ours (`preset`, `gpu_tier`, `name`, `override_justification`,
    and what the pod evaluates as the JSON API's create takes it, sent with the client's `extra_body`)."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1, max_length=200)
    training_file: str
    validation_file: str | None = None
    hyperparameters: Hyperparameters | None = None
    method: Method | None = None
    suffix: str | None = None
    seed: Any = None
    metadata: dict[str, Any] | None = None
    integrations: list[Any] | None = None
    preset: str | None = None
    gpu_tier: Literal["spot", "on_demand"] = "spot"
    name: str | None = Field(default=None, max_length=200)
    override_justification: str | None = Field(default=None, max_length=2000)
    probe_suite_ids: list[UUID] = Field(default_factory=list, max_length=10)  # FR6.3.2, from GET /api/suites
    knowledge_retention: bool = True  # FR6.3.1: the shipped knowledge suite
    emotional_intelligence: bool = True  # FR6.2.1: the shipped EI scenarios
    brand_voice: bool = True  # FR6.4.1: replies to a rubric's prompts (rubric_id's, else Elena Morales')
    rubric_id: UUID | None = None


# What the job's pod evaluates: passed on as the JSON API's create passes it (web/flows.evaluation_suites).
EVALUATION = ("probe_suite_ids", "knowledge_retention", "emotional_intelligence", "brand_voice", "rubric_id")


def requested(data: CreateJob) -> RequestedHyperparameters:
    """The hyperparameters asked for ("auto" = the preset's), from either place OpenAI accepts them."""
    if data.method is not None and data.method.type != "supervised":
        raise OpenAIError(400, f"Only supervised fine-tuning is available (method.type '{data.method.type}' is"
                               " not)", "method.type", "unsupported_method")
    nested = data.method.supervised.hyperparameters if data.method and data.method.supervised else None
    if nested is not None and data.hyperparameters is not None:
        raise OpenAIError(400, "Send hyperparameters in method.supervised.hyperparameters or at the top level, not"
                               " both", "hyperparameters", "invalid_hyperparameters")
    asked = nested or data.hyperparameters or Hyperparameters()
    place = hyperparameters_place(data)
    seed = data.seed
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise OpenAIError(400, f"seed must be a whole number (got {json.dumps(seed)})", "seed", "invalid_seed")
    return RequestedHyperparameters(
        _asked(asked.n_epochs, "n_epochs", place), _asked(asked.batch_size, "batch_size", place),
        _asked(asked.learning_rate_multiplier, "learning_rate_multiplier", place, whole=False), seed)


def _asked(value: Any, name: str, place: str, whole: bool = True) -> Any:
    """None for "auto" (or left out), else the number as sent."""
    if value is None or value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
        kind = "a whole number" if whole else "a number"
        raise OpenAIError(400, f'{name} must be "auto" or {kind} (got {json.dumps(value)})', f"{place}.{name}",
                          "invalid_hyperparameters")
    return value


def hyperparameters_place(data: CreateJob) -> str:
    nested = data.method is not None and data.method.supervised is not None
    return "method.supervised.hyperparameters" if nested else "hyperparameters"


def check_supported(data: CreateJob, base_model: str) -> None:
    if data.model != base_model:
        raise OpenAIError(400, f"Model '{data.model}' cannot be fine-tuned here: this pipeline fine-tunes"
                               f" '{base_model}' (PIPELINE_AGENT_BASE_MODEL)", "model", "model_not_available")
    if data.integrations:
        raise OpenAIError(400, "Integrations (Weights & Biases) are not supported: the job page and"
                               " /v1/fine_tuning/jobs/{id}/events carry the metrics", "integrations",
                          "integrations_not_supported")


def training_file_id(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise no_training_file(value) from None


def validation_file_id(value: str | None) -> UUID | None:
    """The catalogued file to validate on instead of a hold-out of the training file (None: the hold-out)."""
    try:
        return None if value is None else UUID(value)
    except ValueError:
        raise no_validation_file(str(value)) from None


def no_validation_file(value: str) -> OpenAIError:
    return OpenAIError(400, f"No validation file with id '{value}': upload it with POST /v1/files",
                       "validation_file", "invalid_validation_file")


def no_training_file(value: str) -> OpenAIError:
    return OpenAIError(400, f"No training file with id '{value}': upload it with POST /v1/files", "training_file",
                       "invalid_training_file")


@post("/fine_tuning/jobs", status_code=200)
async def create_job(request: Request, state: State, data: CreateJob) -> dict[str, Any]:
    """Starts at once, as OpenAI's do: queued with its estimated maximum reserved on this month's budget."""
    base_model = state.settings.agent.base_model
    check_supported(data, base_model)
    options = {"requested": requested(data), "labels": data.metadata or {}, "suffix": data.suffix,
               "base_model": data.model, "preset": data.preset, "gpu_tier": data.gpu_tier, "name": data.name,
               "validation_file_id": validation_file_id(data.validation_file),
               **{choice: getattr(data, choice) for choice in EVALUATION}}
    file_id = training_file_id(data.training_file)
    try:
        job_id, warnings = await launch_job(state, actor_of(request), training_file_id=file_id,
                                            override_justification=data.override_justification, **options)
    except TrainingFileNotFoundError:
        raise no_training_file(data.training_file) from None
    except IneligibleValidationFileError as exc:
        if str(exc) == VALIDATION_FILE_NOT_FOUND:
            raise no_validation_file(str(data.validation_file)) from None
        raise  # invalid or empty: answered with its reason, naming validation_file (errors.PARAMS)
    except HyperparameterError as exc:
        raise OpenAIError(400, str(exc), "seed" if exc.field == "seed" else f"{hyperparameters_place(data)}."
                                         f"{exc.field}", "invalid_hyperparameters") from None
    return {**await from_aggregate(state, job_id), "warnings": warnings}


@get("/fine_tuning/jobs")
async def list_jobs(request: Request, state: State, after: FromQuery[str | None] = None,
                    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20) -> dict[str, Any]:
    """Newest first; `metadata[k]=v` keeps the jobs with every such pair, `metadata=null` those with none."""
    labels, unlabelled = metadata_filter(dict(request.query_params.items()))
    page = await cursor_pages.jobs_page(state.pool, after=uuid_cursor(after, "fine-tuning job"), limit=limit,
                                        labels=labels, unlabelled=unlabelled)
    if page is None:
        raise unknown_cursor(str(after), "fine-tuning job")
    return envelope(await job_objects(state, page.items), page.has_more)


async def job_objects(state: State, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = [row["id"] for row in found]
    hyperparameters = await configured_hyperparameters(state.pool, ids)
    metrics = await cursor_pages.completion_metrics(state.pool, ids)
    now = utcnow()
    return [present(state, JobFacts.of_row(row, hyperparameters.get(row["id"], {}), metrics.get(row["id"], {}), now))
            for row in found]


def present(state: State, facts: JobFacts) -> dict[str, Any]:
    settings = state.settings
    return job_object(facts, default_model=settings.agent.base_model, organization=settings.budget.team,
                      time_zone=settings.budget.time_zone, now=utcnow())


async def from_aggregate(state: State, job_id: UUID) -> dict[str, Any]:
    job = await asyncio.to_thread(state.store.app.get_job, job_id)
    return present(state, JobFacts.of_job(job, utcnow()))


def job_uuid(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise not_found("fine-tuning job", value, "fine_tuning_job_id") from None


async def aggregate(state: State, job_id: str) -> TrainingJob:
    try:
        return await asyncio.to_thread(state.store.app.get_job, job_uuid(job_id))
    except JobNotFoundError:
        raise not_found("fine-tuning job", job_id, "fine_tuning_job_id") from None


@get("/fine_tuning/jobs/{job_id:str}")
async def retrieve_job(state: State, job_id: FromPath[str]) -> dict[str, Any]:
    row = await cursor_pages.job_row(state.pool, job_uuid(job_id))
    if row is None:  # not in the read model yet (or no such job)
        return present(state, JobFacts.of_job(await aggregate(state, job_id), utcnow()))
    return (await job_objects(state, [row]))[0]


@post("/fine_tuning/jobs/{job_id:str}/cancel", status_code=200)
async def cancel_job(request: Request, state: State, job_id: FromPath[str]) -> dict[str, Any]:
    """Cancels as the job page does (reason `other`); a job that has ended answers 409."""
    job = await aggregate(state, job_id)
    await asyncio.to_thread(state.store.app.cancel_job, job.id, CancelReason.OTHER,
                            "Cancelled through the OpenAI-compatible API", actor_of(request).name, utcnow())
    return await from_aggregate(state, job.id)


@post("/fine_tuning/jobs/{job_id:str}/pause", status_code=200)
async def pause_job(request: Request, state: State, job_id: FromPath[str]) -> dict[str, Any]:
    """FR2.2.2 as the job page pauses: the job reads `pausing` while its pod stops, then `paused`; a job
    that is not training answers 409."""
    job = await aggregate(state, job_id)
    await job_actions.pause(actor_of(request), state, job.id)
    return await from_aggregate(state, job.id)


@post("/fine_tuning/jobs/{job_id:str}/resume", status_code=200)
async def resume_job(request: Request, state: State, job_id: FromPath[str]) -> dict[str, Any]:
    """A paused job is queued again (`queued`) and continues from its checkpoint; otherwise 409."""
    job = await aggregate(state, job_id)
    await job_actions.resume(actor_of(request), state, job.id)
    return await from_aggregate(state, job.id)


@get("/fine_tuning/jobs/{job_id:str}/events")
async def list_events(state: State, job_id: FromPath[str], after: FromQuery[str | None] = None,
                      limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 20) -> dict[str, Any]:
    """The job's event log newest first (as OpenAI lists them)."""
    job = await aggregate(state, job_id)
    page = await cursor_pages.events_page(state.pool, job.id, after=numbered_cursor(after, "ftevent-", "event"),
                                          limit=limit)
    return envelope([event_object(row) for row in page.items], page.has_more)


@get("/fine_tuning/jobs/{job_id:str}/checkpoints")
async def list_checkpoints(state: State, job_id: FromPath[str], after: FromQuery[str | None] = None,
                           limit: Annotated[int, QueryParameter(ge=1, le=100)] = 10) -> dict[str, Any]:
    """The checkpoints the job saved, newest first, with the losses at their steps."""
    job = await aggregate(state, job_id)
    page = await cursor_pages.checkpoints_page(state.pool, job.id,
                                               after=numbered_cursor(after, "ftckpt-", "checkpoint"), limit=limit)
    name = model_name(job.base_model or state.settings.agent.base_model, job.suffix, job.id)
    return envelope([checkpoint_object(row, job.id, name) for row in page.items], page.has_more)


routes = [create_job, list_jobs, retrieve_job, cancel_job, pause_job, resume_job, list_events, list_checkpoints]
