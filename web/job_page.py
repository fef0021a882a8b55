"""The job page as a whole (FR2.1.1-FR2.1.3): the live cards, notes, the cancel, retry and note
forms, the event log tab; also its answers when the job is not there."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from litestar import Request, Response
from litestar.datastructures import State
from litestar.response import Template

from domain.aggregates.training_job import may_steer
from domain.applications import JobNotFoundError
from domain.job_metadata import NOTE_MAX
from domain.job_status import PAUSABLE, TERMINAL, JobStatus
from domain.retries import ADJUSTABLE, SCHEDULES
from projections.adapters import adapters
from projections.job_detail import read_job
from projections.queries import event_page
from web import adapter_storage, job_actions
from web.auth import actor_of
from web.clock import utcnow
from web.detail_format import when
from web.errors import DOMAIN_ERRORS, message_of, status_of
from web.event_log_view import CATEGORY_LABELS, event_rows, known_category
from web.job_cards import cards, version_of
from web.job_format import CANCEL_REASONS
from web.quality_tab import quality_tab
from web.quality_view import gate_view
from web.sharing.panel import sharing_panel
from web.template_library.views import template_offer

LOG = logging.getLogger(__name__)


@dataclass
class PageInput:
    tab: str = "overview"
    q: str = ""
    category: str = ""
    page: int = 1


async def render_page(request: Request, state: State, job_id: UUID, view: PageInput, *, error: str | None = None,
                      notice: str | None = None, form: dict[str, Any] | None = None, status_code: int = 200
                      ) -> Response:
    """The page (`form`: what a refused form sent, shown again; `error`: why)."""
    now = utcnow()
    detail = await read_job(state.pool, job_id, now)
    if detail is None:
        return await not_in_read_model(state, job_id)
    context: dict[str, Any] = cards(detail, now) | await overview(request, state, job_id, detail, view) | {
        "error": error, "notice": notice, "form": form or {}}
    job = detail["job"]  # FR8.1.2 Share Job, FR5.2.2 Save as Template
    context["sharing"] = await sharing_panel(state, job_id, job["created_by"], actor_of(request), now)
    context["template_offer"] = await template_offer(state, job_id, job["status"])
    if context["tab"] == "quality":  # FR6.1, FR6.3 (web/quality_tab.py)
        context |= await quality_tab(request, state, detail["job"])
    if context["tab"] == "events":
        context |= await event_log(state, job_id, view)
        if view.category and not context["category"]:
            context["error"] = context["error"] or f"Unknown event type {view.category!r}: showing all events"
    return Template("job_detail.html", context=context, status_code=status_code)


async def overview(request: Request, state: State, job_id: UUID, detail: dict[str, Any],
                   view: PageInput) -> dict[str, Any]:
    job = detail["job"]
    # a completed job is offered a retry only when its quality validation suggests a fix (FR6.2.2)
    ended = job["status"] in (JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.COMPLETED)
    return {
        "detail": detail, "tab": view.tab if view.tab in ("events", "quality") else "overview",
        "notes": notes_view(job), "retries": detail["retries"],
        "cancel_reasons": CANCEL_REASONS, "can_cancel": job["status"] not in TERMINAL, "note_max": NOTE_MAX,
        "steering": steering(request, job),
        "is_manager": actor_of(request).role in ("manager", "admin"), "schedules": SCHEDULES, "adjustable": ADJUSTABLE,
        "retry": await retry_options(state, job_id) if ended and view.tab != "events" else None,
        "page_data": page_data(job_id, job), "gate": gate_view(job),
        "adapter": await stored_adapter(state, job_id) if job["status"] == JobStatus.COMPLETED else None,
    }


def steering(request: Request, job: dict[str, Any]) -> dict[str, bool]:
    """FR2.2.2's Pause (a training job) and Resume (a paused one), for those who may (the domain's rule)."""
    actor = actor_of(request)
    allowed = may_steer(actor.name, actor.role, job["created_by"])
    return {"pause": allowed and job["status"] in PAUSABLE, "resume": allowed and job["status"] == JobStatus.PAUSED,
            "pausing": job["status"] == JobStatus.PAUSING, "paused": job["status"] == JobStatus.PAUSED}


async def stored_adapter(state: State, job_id: UUID) -> dict[str, Any] | None:
    """FR4.1.2 on the job page: its adapter's path, size, upload time, downloads, or its deletion."""
    found = await adapters(state.pool, job_id)
    return found[0] | {"size_text": adapter_storage.size(found[0]["size"])} if found else None


def page_data(job_id: UUID, job: dict[str, Any]) -> dict[str, Any]:
    """What the page's script needs (a JSON block): its endpoints and where the stream starts."""
    return {"points": f"/jobs/{job_id}/metrics-points", "stream": f"/jobs/{job_id}/events-stream",
            "cards": f"/jobs/{job_id}/cards", "name": job["name"], "live": job["status"] not in TERMINAL,
            "version": version_of(job), "attempt": job["attempt"]}


async def event_log(state: State, job_id: UUID, view: PageInput) -> dict[str, Any]:
    """FR2.1.3's tab: a page of the log, by keyword and category."""
    category = known_category(view.category)
    events = await event_page(state.pool, job_id, view.q.strip() or None, category or None, view.page)
    return {"events": events, "event_rows": event_rows(events), "q": view.q, "category": category,
            "categories": CATEGORY_LABELS}


def notes_view(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"at": when(n["at"]), "author": n["author"], "text": n["text"]} for n in reversed(job["notes"] or [])]


async def retry_options(state: State, job_id: UUID) -> dict[str, Any] | None:
    """GET /api/jobs/{id}/retry-options' answer, for the retry, suggested-fix and resume forms."""
    try:
        return await job_actions.retry_options(state, job_id)
    except DOMAIN_ERRORS:
        return None
    except (KeyError, TypeError, ValueError):
        # A configuration without a preset's hyperparameters (jobs made by hand) has no retry
        # plan: the page still shows everything else.
        LOG.warning("no retry options for job %s", job_id, exc_info=True)
        return None


async def not_in_read_model(state: State, job_id: UUID) -> Response:
    """A job just created (a retry) may be a moment away from the read model: say so and refresh."""
    try:
        await asyncio.to_thread(state.store.app.get_job, job_id)
    except JobNotFoundError:
        return Template("error.html", status_code=404,
                        context={"title": "No such job", "message": f"There is no training job {job_id}."})
    return Template("job_detail.html", context={"pending": True, "job_id": job_id}, status_code=200)


def error_page(exc: Exception, status_code: int | None = None) -> Template:
    code = status_code or status_of(exc)
    title = {403: "Not allowed", 404: "No such job"}.get(code, "Refused")
    return Template("error.html", context={"title": title, "message": message_of(exc)}, status_code=code)
