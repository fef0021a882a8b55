"""Queue and recovery actions on jobs (JSON API): the queue with estimated start times and manager
promotion (FR2.3.2), switching a waiting job to on-demand (FR3.1.3), pause and resume (FR2.2.2),
retry, retry with a suggested fix and resume from a checkpoint (FR3.3.1, FR3.3.2, FR3.2.2)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from litestar import Request, Router, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from pydantic import BaseModel, Field

from domain.queue import estimate_starts, remaining
from domain.retries import (
    RETRYABLE,
    RetryNotAllowedError,
    adjusted,
    check_retryable,
    same_configuration,
    suggested_fix,
)
from projections import job_reads
from web.auth import actor_of
from web.clock import utcnow
from web.flows import Actor, check_queue
from web.job_history import measured_coefficients


@get("/api/queue")
async def api_queue(state: State) -> list[dict[str, Any]]:
    """Queued jobs in the order they will get a GPU, each with its estimated start time."""
    return await queue_plan(state)


async def queue_plan(state: State) -> list[dict[str, Any]]:
    """The queue (FR2.3.2) for the API and the queue page: position, the job's row, estimated start."""
    active, queued = await job_reads.queue(state.pool)
    app = state.store.app

    def plan() -> list[datetime]:
        running = [app.get_job(row["id"]) for row in active]
        left = [remaining(float(j.configuration["estimated_duration_hours"]),
                          j.last_step / j.total_steps if j.total_steps else 0.0) for j in running]
        waiting = [app.get_job(row["id"]) for row in queued]
        durations = [remaining(float(j.configuration["estimated_duration_hours"]), 0.0) for j in waiting]
        return estimate_starts(utcnow(), left, durations, state.settings.agent.max_running)

    starts = await asyncio.to_thread(plan)
    return [{"position": i + 1, **row, "promoted": row["promoted_at"] is not None, "estimated_start": start}
            for i, (row, start) in enumerate(zip(queued, starts, strict=True))]


@post("/api/jobs/{job_id:uuid}/promote", status_code=200)
async def api_promote(request: Request, state: State, job_id: FromPath[UUID]) -> dict[str, str]:
    actor = actor_of(request)
    await asyncio.to_thread(state.store.app.promote_job, job_id, actor=actor.name, role=actor.role, at=utcnow())
    return {"id": str(job_id), "promoted_by": actor.name}


class SwitchGpu(BaseModel):
    gpu_tier: Literal["spot", "on_demand"] = "on_demand"
    override_justification: str | None = None


@post("/api/jobs/{job_id:uuid}/gpu", status_code=200)
async def api_switch_gpu(request: Request, state: State, job_id: FromPath[UUID], data: SwitchGpu) -> dict[str, Any]:
    """FR3.1.3 "Switch to on-demand" for a job waiting for a GPU; its reservation grows with it."""
    actor = actor_of(request)
    warnings = await asyncio.to_thread(state.store.app.switch_gpu_tier, job_id, data.gpu_tier, actor=actor.name,
                                       role=actor.role, at=utcnow(), override_justification=data.override_justification)
    return {"id": str(job_id), "gpu_tier": data.gpu_tier, "warnings": warnings}


@post("/api/jobs/{job_id:uuid}/pause", status_code=200)
async def api_pause(request: Request, state: State, job_id: FromPath[UUID]) -> dict[str, str]:
    """FR2.2.2: a training job's pod saves a checkpoint at the next step and stops (status `pausing`,
    then `paused`: no pod, no spend, its reservation kept); 409 unless it is training."""
    return await pause(actor_of(request), state, job_id)


@post("/api/jobs/{job_id:uuid}/resume", status_code=200)
async def api_resume(request: Request, state: State, job_id: FromPath[UUID]) -> dict[str, str]:
    """A paused job is queued again (409 when the queue is full, or the job is not paused); its next
    pod continues from the checkpoint it was paused at."""
    return await resume(actor_of(request), state, job_id)


async def pause(actor: Actor, state: State, job_id: UUID) -> dict[str, str]:
    """Pauses as `actor` (the API, the job page and the OpenAI-compatible API)."""
    job = await asyncio.to_thread(state.store.app.pause_job, job_id, actor=actor.name, role=actor.role, at=utcnow())
    return {"id": str(job_id), "status": job.status.value}


async def resume(actor: Actor, state: State, job_id: UUID) -> dict[str, str]:
    """Resumes as `actor`; a paused job holds no queue slot, so the queue's limit applies as at a start."""
    await check_queue(state)
    job = await asyncio.to_thread(state.store.app.resume_job, job_id, actor=actor.name, role=actor.role, at=utcnow())
    return {"id": str(job_id), "status": job.status.value}


class Adjustments(BaseModel):
    gpu_tier: Literal["spot", "on_demand"] | None = None
    num_train_epochs: int | None = Field(default=None, ge=1, le=10)
    per_device_train_batch_size: int | None = Field(default=None, ge=1, le=64)
    gradient_accumulation_steps: int | None = Field(default=None, ge=1, le=64)
    learning_rate: float | None = Field(default=None, gt=0, le=0.01)
    lr_scheduler_type: str | None = None


class RetryRequest(BaseModel):
    suggested: bool = False   # apply the suggested fix (FR3.3.2)
    resume: bool = False      # start from the original's latest checkpoint (FR3.2.2)
    changes: Adjustments = Field(default_factory=Adjustments)
    override_justification: str | None = None


@get("/api/jobs/{job_id:uuid}/retry-options")
async def api_retry_options(state: State, job_id: FromPath[UUID]) -> dict[str, Any]:
    """What a retry would run: the same configuration, the suggested fix (with its diff), and
    whether the job can be resumed from a checkpoint."""
    return await retry_options(state, job_id)


async def retry_options(state: State, job_id: UUID) -> dict[str, Any]:
    """The retry choices of a failed or cancelled job (the API and the job page)."""
    job = await asyncio.to_thread(state.store.app.get_job, job_id)
    check_retryable(job)
    fix = suggested_fix(job)
    return {
        "original": {"id": str(job.id), "name": job.name, "status": job.status.value, "failure": job.failure,
                     "interruptions": job.interruptions, "retry_number": job.retry_number},
        "same": _plan(same_configuration(job)),
        "suggested": _plan(fix) if fix else None,
        "resumable": job.latest_checkpoint is not None and job.status in RETRYABLE,  # a completed one: retry only
        "checkpoint_step": job.last_checkpoint_step if job.latest_checkpoint else None,
        "total_steps": job.total_steps,
    }


@post("/api/jobs/{job_id:uuid}/retry", status_code=201)
async def api_retry(request: Request, state: State, job_id: FromPath[UUID], data: RetryRequest) -> dict[str, Any]:
    """A new job linked to this failed or cancelled one, queued at once with its own reservation."""
    return await retry(actor_of(request), state, job_id, data)


async def retry(actor: Actor, state: State, job_id: UUID, data: RetryRequest) -> dict[str, Any]:
    """Creates, configures and queues the retry (or resume) of a job as `actor` (the API and the job page)."""
    app = state.store.app
    await check_queue(state)
    job = await asyncio.to_thread(app.get_job, job_id)
    plan = suggested_fix(job) if data.suggested else same_configuration(job)
    if plan is None:
        raise RetryNotAllowedError("There is no suggested fix for this job's failure: retry it as it was, or adjust it")
    plan = adjusted(plan, data.changes.model_dump(exclude_none=True))
    if data.resume:
        plan = replace(plan, resume=True)
    new_id, warnings = await asyncio.to_thread(app.retry_job, job_id, plan, actor=actor.name, role=actor.role,
                                               at=utcnow(), override_justification=data.override_justification,
                                               coefficients=await measured_coefficients(state))
    return {"id": str(new_id), "retry_of": str(job.retry_of or job.id), "resumed_from": str(job_id) if data.resume
            else None, "changes": [c.describe() for c in plan.changes], "warnings": warnings}


def _plan(plan: Any) -> dict[str, Any]:
    return {"preset": plan.preset, "gpu_tier": plan.gpu_tier, "hyperparameters": plan.hyperparameters,
            "changes": [{"setting": c.setting, "before": c.before, "after": c.after, "text": c.describe()}
                        for c in plan.changes], "message": plan.message}


router = Router(path="/", route_handlers=[api_queue, api_promote, api_switch_gpu, api_pause, api_resume,
                                          api_retry_options, api_retry])
