"""The job page's "Share Job" panel (FR8.1.2) and the sharing API's answer: the job's visibility,
its shareable link, who may change what, and its share links (read from the job's sharing record
itself, so a revocation shows at once)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from uuid import UUID

from litestar.datastructures import State

from domain.aggregates.budget import MANAGER_ROLES
from domain.aggregates.job_sharing import DEFAULT_VISIBILITY, MESSAGE_MAX, RECIPIENTS_MAX, VISIBILITIES
from handlers.notifications.preferences import team_slack_webhook
from web.flows import Actor
from web.share_links import PACKAGE, REPORT

MEANING = {  # FR8.1.2's link options, in the panel's words
    "private": "Only you (its creator), managers and admins can open this job.",
    "team": "Everyone signed in to LoRA Pipeline can open this job.",
    "public": "Anyone with the link can see its configuration, progress and results without signing in"
              " (never its costs, notes, training data or downloads).",
}
PURPOSES = {REPORT.key: "Training report", PACKAGE.key: "Deployment package"}


def job_link(state: State, job_id: UUID) -> str:
    return f"{state.settings.web.public_base_url}/training-jobs/{job_id}"


async def sharing_panel(state: State, job_id: UUID, owner: str, actor: Actor, now: datetime) -> dict[str, Any]:
    sharing = await asyncio.to_thread(state.store.app.job_sharing, job_id)
    visibility = sharing.visibility if sharing else DEFAULT_VISIBILITY
    links = sharing.active_links(now) if sharing else []
    return await channels(state) | {
        "visibility": visibility, "visibilities": VISIBILITIES, "meaning": MEANING, "link": job_link(state, job_id),
        "can_change": actor.name == owner or actor.role in MANAGER_ROLES, "can_send": visibility != "private",
        "links": [{**link, "what": PURPOSES.get(link["purpose"], link["purpose"]),
                   "can_revoke": actor.name in (link["shared_by"], owner) or actor.role in MANAGER_ROLES}
                  for link in links],
        "can_revoke_all": actor.name == owner or actor.role in MANAGER_ROLES,
        "recipients_max": RECIPIENTS_MAX, "message_max": MESSAGE_MAX,
    }


async def channels(state: State) -> dict[str, str | None]:
    """Why the link cannot be sent by email or to Slack on this deployment (None: it can), so the
    panel offers only what works and says what to do otherwise (issue #23)."""
    notify = state.settings.notifications
    async with state.pool.connection() as conn:
        slack = notify.slack_webhook_url or await team_slack_webhook(conn, state.settings.budget.team)
    return {"email_off": None if notify.smtp_host else ("Email is not set up on this deployment (PIPELINE_SMTP_HOST,"
                                                        " docs/notifications.md): copy the link instead."),
            "slack_off": None if slack else
            "The team has no Slack channel yet: a manager adds its webhook in Notification settings."}


def as_json(panel: dict[str, Any]) -> dict[str, Any]:
    return {"visibility": panel["visibility"], "link": panel["link"], "can_change": panel["can_change"],
            "links": [{"link_id": link["link_id"], "purpose": link["purpose"], "shared_by": link["shared_by"],
                       "issued_at": link["issued_at"].isoformat(), "expires_at": link["expires_at"].isoformat()}
                      for link in panel["links"]]}
