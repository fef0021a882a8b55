"""What the job page offers to do (issue #23): one primary action for the job's state — Cancel while
it runs, Resume when paused, Download when done, Retry when it failed — and the rest in a menu.
Only what can work is offered: a share link only where links can be signed, Pause and Resume only
to those who may steer the job (the domain's rule), the downloads only while the adapter is there
and the quality gate lets it out."""

from __future__ import annotations

from typing import Any

from litestar import Request

from domain.aggregates.training_job import may_steer
from domain.job_metadata import NOTE_MAX
from domain.job_status import NOT_STARTED, PAUSABLE, TERMINAL, JobStatus
from infra.settings import Settings
from web.auth import actor_of
from web.flows import Actor
from web.job_format import CANCEL_REASONS
from web.quality_view import gate_view

SHARING_OFF = "Share links need PIPELINE_APPROVAL_SECRET on this deployment (docs/operations.md): ask an admin."


def job_menu(actor: Actor, job: dict[str, Any], gate: dict[str, Any] | None, adapter: dict[str, Any] | None,
             can_sign_links: bool, retryable: bool = False) -> dict[str, Any]:
    """`primary` (cancel, resume, download, blocked, report, retry, configure, start or clone), what the menu
    holds (`pause`, `resume`, `cancel`, `download`, `package`, `report`, `retry`, `clone`,
    `share_links`), why links cannot be shared (`sharing_off`), and `key`: the whole choice in a
    word, which the page's script compares to redraw the actions when the job's state changes them.
    `retryable`: the page has the retry and resume forms (an ended job whose plan could be made)."""
    status = JobStatus(job["status"])
    steer = may_steer(actor.name, actor.role, job["created_by"])
    completed = status == JobStatus.COMPLETED
    blocked = bool(completed and gate and gate["blocked"])
    deleted = bool(adapter and adapter.get("deleted_at"))
    offered = {"pause": steer and status in PAUSABLE, "resume": steer and status == JobStatus.PAUSED,
               "cancel": status not in TERMINAL, "download": completed and not blocked and not deleted,
               "report": completed, "blocked": blocked, "retry": status in TERMINAL and retryable, "clone": True}
    offered["package"] = offered["download"]
    primary = primary_action(status, offered)
    menu = {name: on and name != primary for name, on in offered.items()}
    return menu | {"primary": primary, "share_links": completed and can_sign_links,
                   "sharing_off": None if can_sign_links or not completed else SHARING_OFF,
                   "key": f"{primary}:{'+'.join(sorted(name for name, on in menu.items() if on))}"}


def primary_action(status: JobStatus, offered: dict[str, bool]) -> str:
    if status == JobStatus.PENDING_CONFIGURATION:
        return "configure"
    if status in NOT_STARTED:
        return "start"
    if status == JobStatus.PAUSED and offered["resume"]:
        return "resume"
    if status not in TERMINAL:
        return "cancel"
    if status == JobStatus.COMPLETED:
        return "download" if offered["download"] else "blocked" if offered["blocked"] else "report"
    return "retry" if offered["retry"] else "clone"


def can_sign_links(settings: Settings) -> bool:
    """Share links are signed with PIPELINE_APPROVAL_SECRET: without it none can be made."""
    return bool(settings.notifications.approval_secret.get_secret_value())


def actions_context(request: Request, job: dict[str, Any]) -> dict[str, Any]:
    """What partials/job_actions.html needs beside the cards, for a job that has not ended (the
    live stream redraws the actions when its state changes them)."""
    gate = gate_view(job)
    return {"actions": job_menu(actor_of(request), job, gate, None, can_sign_links(request.app.state.settings)),
            "gate": gate, "cancel_reasons": CANCEL_REASONS, "note_max": NOTE_MAX, "form": {}, "form_error": None,
            "template_offer": None}
