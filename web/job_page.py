"""The job page as a whole (FR2.1.1-FR2.1.3): the live cards, notes, the cancel, retry and note
forms, the event log tab; also its answers when the job is not there. Issue #23: the actions offered
(web/job_menu.py), a command's outcome shown before the read model confirms it, and a refused
form's message beside the form."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from litestar import Request, Response
from litestar.datastructures import State
from litestar.response import Template

from domain.applications import JobNotFoundError
from domain.job_metadata import NOTE_MAX
from domain.job_status import TERMINAL, JobStatus
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
from web.job_menu import can_sign_links, job_menu
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
    settled = detail["job"]["status"] in TERMINAL  # the read model's: the page is already the job's last
    confirm = await awaited_outcome(state, job_id, detail) if notice else None
    context: dict[str, Any] = cards(detail, now) | await overview(request, state, job_id, detail, view) | {
        "outcome": notice, "form": form or {}}
    job = detail["job"]  # FR8.1.2 Share Job, FR5.2.2 Save as Template
    context["sharing"] = await sharing_panel(state, job_id, job["created_by"], actor_of(request), now)
    context["template_offer"] = await template_offer(state, job_id, job["status"])
    context["actions"] = job_menu(actor_of(request), job, context["gate"], context["adapter"],
                                  can_sign_links(state.settings),
                                  retryable=context["retry"] is not None)
    if confirm is not None:
        context["header"] |= {"confirming": True} | ({"remaining": None} if job["status"] in TERMINAL else {})
        # An ended job's page waits for the read model's cards, then stays: reloading it would take its notice
        # away ("Saved: 2 of 2 items scored…") and show nothing new.
        context["page_data"] |= {"confirm": confirm, "live": True, "reload_at_end": not settled}
    if context["tab"] == "quality":  # FR6.1, FR6.3 (web/quality_tab.py)
        context |= await quality_tab(request, state, detail["job"])
    context |= placed(error, form, forms_shown(context))
    if context["tab"] == "events":
        context |= await event_log(state, job_id, view)
        if view.category and not context["category"]:
            context["error"] = context["error"] or f"Unknown event type {view.category!r}: showing all events"
    return Template("job_detail.html", context=context, status_code=status_code)


async def awaited_outcome(state: State, job_id: UUID, detail: dict[str, Any]) -> int | None:
    """Right after a command (its redirect carries the notice) the event store may be ahead of the
    read model: the page then shows the job's status as recorded (cancelled, queued, pausing) and
    asks the live stream for the read model's confirmation, rather than a status the command has
    already changed. The aggregate's version to wait for, or None when the read model has it."""
    try:
        recorded = await asyncio.to_thread(state.store.app.get_job, job_id)
    except JobNotFoundError:
        return None
    if recorded.version <= detail["job"]["row_version"]:
        return None
    detail["job"] = detail["job"] | {"status": recorded.status.value}
    return int(recorded.version)


def forms_shown(context: dict[str, Any]) -> set[str]:
    """The job page's forms drawn on this page, by the key their refusal comes back under (`form`)."""
    actions, overview = context["actions"], context["tab"] == "overview"
    shown = {"cancel": actions["cancel"] or actions["primary"] == "cancel", "note": overview,
             "retry": overview and context["retry"] is not None, "template_error": bool(context["template_offer"]),
             "override": bool(context.get("quality", {}).get("can_override"))}
    return {key for key, on in shown.items() if on}


def placed(error: str | None, form: dict[str, Any] | None, shown: set[str]) -> dict[str, str | None]:
    """`form_error` when the refused form is on the page again, to say it beside the form (issue #23),
    else `error`, said above the page by the layout."""
    if error and form and shown.intersection(form):
        return {"error": None, "form_error": error}
    return {"error": error, "form_error": None}


async def overview(request: Request, state: State, job_id: UUID, detail: dict[str, Any],
                   view: PageInput) -> dict[str, Any]:
    job = detail["job"]
    # a completed job is offered a retry only when its quality validation suggests a fix (FR6.2.2)
    ended = job["status"] in (JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.COMPLETED)
    return {
        "detail": detail, "tab": view.tab if view.tab in ("events", "quality") else "overview",
        "notes": notes_view(job), "retries": detail["retries"],
        "cancel_reasons": CANCEL_REASONS, "note_max": NOTE_MAX, "steering": steering(job),
        "is_manager": actor_of(request).role in ("manager", "admin"), "schedules": SCHEDULES, "adjustable": ADJUSTABLE,
        "retry": await retry_options(state, job_id) if ended else None,
        "page_data": page_data(job_id, job), "gate": gate_view(job),
        "adapter": await stored_adapter(state, job_id) if job["status"] == JobStatus.COMPLETED else None,
    }


def steering(job: dict[str, Any]) -> dict[str, bool]:
    """FR2.2.2's pausing and paused states, said under the status (Pause and Resume: web/job_menu.py)."""
    return {"pausing": job["status"] == JobStatus.PAUSING, "paused": job["status"] == JobStatus.PAUSED}


async def stored_adapter(state: State, job_id: UUID) -> dict[str, Any] | None:
    """FR4.1.2 on the job page: its adapter's path, size, upload time, downloads, or its deletion."""
    found = await adapters(state.pool, job_id)
    return found[0] | {"size_text": adapter_storage.size(found[0]["size"])} if found else None


def page_data(job_id: UUID, job: dict[str, Any]) -> dict[str, Any]:
    """What the page's script needs (a JSON block): its endpoints and where the stream starts."""
    return {"points": f"/jobs/{job_id}/metrics-points", "stream": f"/jobs/{job_id}/events-stream",
            "cards": f"/jobs/{job_id}/cards", "name": job["name"], "live": job["status"] not in TERMINAL,
            "reload_at_end": True, "status": job["status"],
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
