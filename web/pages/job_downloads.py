"""The job page's downloads: the adapter archive (FR4.1.1), the deployment package (FR4.3.1) and
the event log as JSON or CSV (FR2.1.3 "Export log as JSON or CSV")."""

from __future__ import annotations

import asyncio
import re
import shutil
import tarfile
import tempfile
from pathlib import Path
from uuid import UUID

from litestar import MediaType, Request, Response, get
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import File, Template

from domain.aggregates.training_job import TrainingJob
from domain.applications import JobNotFoundError
from infra.objectstore import ArtifactCorruptError, ArtifactMissingError
from web.auth import actor_of
from web.clock import utcnow
from web.deployment import package as deployment
from web.detail_format import STATUS_LABELS
from web.event_log_view import as_csv, as_json, export_rows
from web.job_page import error_page


@get("/jobs/{job_id:uuid}/adapter", media_type=MediaType.HTML)
async def adapter_download(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    """FR4.1.1: the adapter archive from the object store (digest checked), named
    `{job_name}-adapters-{job_id}.tar`; each download is recorded on the job."""
    app = state.store.app
    try:
        job = await asyncio.to_thread(app.get_job, job_id)
    except JobNotFoundError as exc:
        return error_page(exc)
    if (refusal := not_downloadable(job)) is not None:
        return refusal
    spool = Path(tempfile.mkdtemp(prefix="adapter-"))
    try:
        path = await state.objects.get_file(job.adapter, spool / "adapter")
    except (ArtifactMissingError, ArtifactCorruptError) as exc:
        shutil.rmtree(spool, ignore_errors=True)
        return unavailable(job, exc)
    actor = actor_of(request)
    await asyncio.to_thread(app.update_job, job_id, lambda j: j.record_export("adapter", actor.name, utcnow()))
    return archive(job_id, job, path, spool)


@get("/jobs/{job_id:uuid}/deployment-package", media_type=MediaType.HTML)
async def deployment_package(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    """FR4.3.1 "Download Deployment Package": the adapter with inference.py, requirements, README,
    example prompts from the job's training file and the training summary, as
    `{job_name}-deployment-package-{job_id}.zip`; each download is recorded on the job."""
    app = state.store.app
    try:
        job = await asyncio.to_thread(app.get_job, job_id)
    except JobNotFoundError as exc:
        return error_page(exc)
    return await package_file(state, job, actor_of(request).name)


# Building a package copies the adapter and writes a ZIP as large: two at a time (the public share
# link included), and a spool folder never outlives its request.
_PACKAGING = asyncio.Semaphore(2)


async def package_file(state: State, job: TrainingJob, actor: str | None) -> Response:
    """The package as a file response (its spool folder removed once sent), or the page saying why
    there is none; with an `actor` the download is recorded on the job."""
    if (refusal := not_downloadable(job)) is not None:
        return refusal
    spool = Path(tempfile.mkdtemp(prefix="package-"))
    try:
        async with _PACKAGING:
            response = await _package(state, job, actor, spool)
    except BaseException:
        shutil.rmtree(spool, ignore_errors=True)
        raise
    if not isinstance(response, File):
        shutil.rmtree(spool, ignore_errors=True)
    return response


async def _package(state: State, job: TrainingJob, actor: str | None, spool: Path) -> Response:
    try:
        adapter = await state.objects.get_file(job.adapter, spool / "adapter.tar")
    except (ArtifactMissingError, ArtifactCorruptError) as exc:
        return unavailable(job, exc)
    try:  # the training file gives the example prompts; without it the package has none
        training = await asyncio.to_thread(
            (await state.objects.get_file(job.training_file, spool / "training.json")).read_bytes)
    except (ArtifactMissingError, ArtifactCorruptError):
        training = None
    now = utcnow()
    target = spool / deployment.file_name(job)
    try:
        await asyncio.to_thread(deployment.build, job, adapter, training, target, now)
    except (ValueError, tarfile.TarError) as exc:
        return Template("error.html", status_code=502, context={
            "title": "Deployment package unavailable", "message": f"The stored adapter cannot be packaged: {exc}"})
    if actor is not None:
        await asyncio.to_thread(state.store.app.update_job, job.id,
                                lambda j: j.record_export("deployment-package", actor, now))
    return File(target, filename=target.name, media_type="application/zip",
                background=BackgroundTask(shutil.rmtree, spool, ignore_errors=True))


def archive(job_id: UUID, job: TrainingJob, path: Path, spool: Path) -> File:
    """The file under the spec's name; its spool folder is removed once it was sent."""
    suffix = "".join(Path(job.adapter.name).suffixes[-2:]) or ".bin"
    return File(path, filename=f"{safe_name(job.name)}-adapters-{job_id}{suffix}", media_type="application/x-tar"
                if suffix == ".tar" else "application/octet-stream",
                background=BackgroundTask(shutil.rmtree, spool, ignore_errors=True))


def no_adapter(job: TrainingJob) -> Template:
    return Template("error.html", status_code=404, context={
        "title": "No adapter yet",
        "message": f"This job has no adapter to download: it is {STATUS_LABELS[job.status.value].lower()}."
                   " The adapter can be downloaded once the job has completed."})


def not_downloadable(job: TrainingJob) -> Template | None:
    """Why the job's adapter cannot be downloaded (none yet, deleted, or blocked by the quality
    gate until a manager releases it); None when it can."""
    if job.adapter is None:
        return no_adapter(job)
    if job.adapter_deleted is not None:
        return deleted(job)
    return blocked(job) if job.delivery_blocked else None


def blocked(job: TrainingJob) -> Template:
    """FR6.3.1 / FR6.3.2 "Block delivery": 423 Locked, with the gate's reasons (docs/quality-validation.md)."""
    return Template("error.html", status_code=423, context={
        "title": "Delivery blocked by the quality gate", "message": job.delivery_block_reason})


def deleted(job: TrainingJob) -> Template:
    gone = job.adapter_deleted or {}
    return Template("error.html", status_code=410, context={
        "title": "Adapter deleted",
        "message": f"The adapter of this job was deleted on {gone['at']:%Y-%m-%d %H:%M} UTC by {gone['actor']}:"
                   f" {gone['reason']}"})


def unavailable(job: TrainingJob, exc: Exception) -> Template:
    missing = isinstance(exc, ArtifactMissingError)
    return Template("error.html", status_code=404 if missing else 502, context={
        "title": "Adapter unavailable",
        "message": f"The adapter file {job.adapter.name} is missing from the object store." if missing else
                   f"The stored adapter {job.adapter.name} does not match its checksum: it was not sent."})


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "job"


@get("/jobs/{job_id:uuid}/event-log.csv")
async def event_log_csv(state: State, job_id: FromPath[UUID], q: FromQuery[str] = "",
                        category: FromQuery[str] = "") -> Response:
    """FR2.1.3 "Export log as JSON or CSV": the filtered log, every page."""
    rows = await export_rows(state.pool, job_id, q, category)
    return Response(as_csv(rows), media_type="text/csv; charset=utf-8", headers=attachment(job_id, "csv"))


@get("/jobs/{job_id:uuid}/event-log.json")
async def event_log_json(state: State, job_id: FromPath[UUID], q: FromQuery[str] = "",
                         category: FromQuery[str] = "") -> Response:
    rows = await export_rows(state.pool, job_id, q, category)
    return Response(as_json(rows), media_type=MediaType.JSON, headers=attachment(job_id, "json"))


def attachment(job_id: UUID, fmt: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="job-{job_id}-event-log.{fmt}"'}


routes = [adapter_download, deployment_package, event_log_csv, event_log_json]
