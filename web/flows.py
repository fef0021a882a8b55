"""The command flows pages and API share: add a training file; create, configure and start a job."""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

from litestar.datastructures import State, UploadFile

from domain.gpu_memory.job_check import MemoryCheck
from domain.training_file import MAX_FILE_BYTES
from handlers.pods.provider import SPOT_UNAVAILABLE, offers_spot
from infra.settings import Settings
from projections import job_reads
from web.catalog import AddedFile, TrainingFileTooLargeError, add_training_file
from web.job_history import load_history
from web.suite_catalog import job_suites, judged_suites

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Actor:
    """Who acts: the signed-in user (web/auth.py actor_of); the default is for routes without one."""

    name: str = "anonymous"
    role: str = "member"


ANONYMOUS = Actor()


async def add_uploaded_file(state: State, upload: UploadFile, name: str | None, actor: Actor) -> AddedFile:
    """Copies the upload to a temporary file chunk by chunk, then adds it to the catalog."""
    fd, tmp = tempfile.mkstemp(prefix="upload-", suffix=Path(upload.filename or "").suffix)
    try:
        written = 0
        with os.fdopen(fd, "wb") as sink:
            while chunk := await upload.read(CHUNK):
                written += len(chunk)
                if written > MAX_FILE_BYTES:
                    raise TrainingFileTooLargeError.of(Path(upload.filename or "The file").name)
                sink.write(chunk)
        named = Path(tmp).with_name(Path(upload.filename or "training-file.json").name)
        os.replace(tmp, named)
        tmp = str(named)
        return await add_training_file(state.objects, state.store.app, named, name, actor.name)
    finally:
        Path(tmp).unlink(missing_ok=True)


class QueueFullError(Exception):
    """FR2.3.2: every slot runs and the waiting queue is full."""


class SpotNotOfferedError(ValueError):
    """The pod provider rents no spot pods (RunPod's API v2)."""


def memory_check(settings: Settings) -> MemoryCheck:
    """The pre-flight memory check of the deployment's base model and GPU (docs/gpu-memory.md)."""
    return MemoryCheck(settings.agent.base_model, settings.agent.quantized, settings.agent.gpu_memory_gb)


def provider_terms(state: State, options: dict[str, Any]) -> None:
    """What the pod provider adds to a new job: its prices (RunPod's catalog, else our configured rates),
    the pre-flight memory check, and spot only where it is offered (refused with the reason otherwise)."""
    if options.get("gpu_tier", "spot") == "spot" and not offers_spot(state.settings.agent.pod_provider):
        raise SpotNotOfferedError(SPOT_UNAVAILABLE)
    options.setdefault("prices", state.get("prices"))
    options.setdefault("memory", memory_check(state.settings))


async def check_queue(state: State) -> None:
    active, queued = await job_reads.queue_load(state.pool)
    limit = state.settings.agent.max_running
    if active >= limit and queued >= state.settings.agent.max_queued:
        raise QueueFullError(f"Queue full ({min(active, limit)}/{limit} active jobs). "
                             "Wait for completion or cancel an active job.")


async def evaluation_suites(state: State, options: dict[str, Any]) -> None:
    """What a new job's pod evaluates, the same on every create path (pages, JSON API, OpenAI-compatible
    API): the choices (`probe_suite_ids`, `knowledge_retention`, `emotional_intelligence`, `brand_voice`,
    `rubric_id`) in `options` replaced by the suites they name."""
    # FR6.3: the shipped knowledge suite (unless `knowledge_retention` is False) and the probes named
    options["knowledge_suite"], options["probe_suites"] = await job_suites(
        state, options.pop("probe_suite_ids", None) or [], options.pop("knowledge_retention", True))
    # FR6.2.1, FR6.4.1: the replies its pod generates for scoring (the shipped EI scenarios, a rubric)
    options["ei_suite"], options["rubric"] = await judged_suites(
        state, options.pop("emotional_intelligence", True), options.pop("brand_voice", True),
        options.pop("rubric_id", None))


async def create_job(state: State, actor: Actor, *, training_file_id: UUID, start: bool = True,
                     override_justification: str | None = None, **options: Any) -> tuple[UUID, list[str]]:
    """Creates and configures a job from a catalogued file, then (by default) starts it, which
    reserves its estimated maximum on this month's budget. Returns the id and any warnings."""
    app = state.store.app
    provider_terms(state, options)
    if start:
        await check_queue(state)
    successful = await job_reads.successful_jobs(state.pool, actor.name)
    if "interruption_probability" not in options or "coefficients" not in options:
        history = await load_history(state)  # the API prices as the cost panel does (FR1.2.1)
        options.setdefault("interruption_probability", history.interruption_probability)
        options.setdefault("coefficients", history.coefficients)  # refitted on measured throughput
    now = datetime.now(timezone.utc)
    await evaluation_suites(state, options)
    template_id = options.pop("template_id", None)
    if template_id is not None:  # FR5.2.2 "Start from Template": the note, and the template's usage
        job_id = await asyncio.to_thread(app.create_job_from_template, template_id, training_file_id,
                                         created_by=actor.name, at=now, successful_jobs=successful, **options)
    else:
        job_id = await asyncio.to_thread(app.create_job_from_file, training_file_id, created_by=actor.name, at=now,
                                         successful_jobs=successful, **options)
    warnings: list[str] = []
    if start:
        try:
            warnings = await asyncio.to_thread(app.start_job, job_id, actor.name, actor.role, now,
                                               override_justification)
        except Exception as exc:
            exc.job_id = job_id  # the job stays configured: adjust it or raise the limit, then start it
            raise
    return job_id, warnings


async def launch_job(state: State, actor: Actor, *, training_file_id: UUID, override_justification: str | None = None,
                     **options: Any) -> tuple[UUID, list[str]]:
    """Creates, configures and starts a job in one save (the OpenAI-compatible create): priced and
    evaluated as create_job prices and evaluates it; a refusal (file, preset, budget, queue) leaves
    no job, reservation or claim behind (the shipped suites are catalogued on first use either way)."""
    provider_terms(state, options)
    await check_queue(state)
    successful = await job_reads.successful_jobs(state.pool, actor.name)
    history = await load_history(state)
    options.setdefault("interruption_probability", history.interruption_probability)
    options.setdefault("coefficients", history.coefficients)
    await evaluation_suites(state, options)
    return await asyncio.to_thread(state.store.app.launch_job_from_file, training_file_id, actor=actor.name,
                                   role=actor.role, at=datetime.now(timezone.utc),
                                   override_justification=override_justification, successful_jobs=successful,
                                   **options)
