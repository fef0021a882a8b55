"""FR4.1.2 "Adapter Storage": the storage dashboard (total stored, number of models, average
size, every adapter with its path, size, upload time and downloads) and deleting adapters to free
storage — one from its job's page or several at once here. A deletion needs a reason and a
confirmation; it is a domain event on the job (`TrainingJob.AdapterDeleted`: who, why, when) saved
before the object store's file is removed, so the audit trail never lacks one."""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from domain.aggregates.budget import PermissionDeniedError
from domain.applications import JobNotFoundError
from domain.job_metadata import InvalidJobError
from projections.adapters import adapters
from web import adapter_storage
from web.auth import actor_of
from web.clock import utcnow
from web.forms import redirect_with

LOG = logging.getLogger(__name__)


@get("/storage", media_type=MediaType.HTML)
async def storage_page(state: State, notice: FromQuery[str | None] = None,
                       error: FromQuery[str | None] = None) -> Template:
    found = await adapters(state.pool)
    return Template("storage.html", context={"adapters": found, "usage": adapter_storage.usage(found),
                                             "size": adapter_storage.size, "notice": notice, "error": error})


@post("/jobs/{job_id:uuid}/adapter/delete", media_type=MediaType.HTML)
async def delete_one(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    form = await request.form()
    problem = await delete(request, state, [job_id], str(form.get("reason") or ""), form.get("confirm") == "yes")
    return redirect_with(f"/jobs/{job_id}", **({"error": problem} if problem else {"notice": "Adapter deleted"}))


@post("/storage/delete", media_type=MediaType.HTML)
async def delete_many(request: Request, state: State) -> Response:
    """Bulk: the checked adapters, one reason for all."""
    form = await request.form()
    try:
        ids = [UUID(str(value)) for value in form.getall("job", [])]
    except ValueError:
        return redirect_with("/storage", error="Not a job id")
    if not ids:
        return redirect_with("/storage", error="Choose at least one adapter to delete")
    problem = await delete(request, state, ids, str(form.get("reason") or ""), form.get("confirm") == "yes")
    done = f"{len(ids)} adapter{'s' if len(ids) != 1 else ''} deleted"
    return redirect_with("/storage", **({"error": problem} if problem else {"notice": done}))


async def delete(request: Request, state: State, ids: list[UUID], reason: str, confirmed: bool) -> str | None:
    """Records each deletion, then removes the file; the first refusal stops and is returned, with
    what was deleted before it. Sending the same deletion again retries a file removal that failed
    (the domain changes nothing the second time)."""
    if not confirmed:
        return "Tick the confirmation: a deleted adapter cannot be downloaded again"
    actor, app = actor_of(request), state.store.app
    done: list[str] = []
    for job_id in ids:
        try:
            await asyncio.to_thread(app.update_job, job_id,
                                    lambda j: j.delete_adapter(actor.name, actor.role, reason[:500], utcnow()))
            job = await asyncio.to_thread(app.get_job, job_id)
        except (JobNotFoundError, InvalidJobError, PermissionDeniedError) as exc:
            return str(exc) + (f" (deleted before it: {', '.join(done)})" if done else "")
        try:
            await state.objects.delete(job.adapter)  # False: removed before (a retried request)
        except Exception as exc:  # noqa: BLE001 - NATS away or timing out: the deletion stays recorded
            LOG.warning("adapter of %s: deletion recorded, file not removed: %s", job_id, exc)
            return (f"The deletion of {job.name}'s adapter is recorded, but removing its file failed ({exc}):"
                    " send the deletion again to retry")
        done.append(job.name)
    return None


routes = [storage_page, delete_one, delete_many]
