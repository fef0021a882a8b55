"""A shared job as a notice (FR8.1.2 "Share via: Email (send link directly), Slack (post to
channel)"): what the job is, who shares it and their message, and its link — the job's shareable
page, /training-jobs/{id}, which a team link opens after signing in and a public one without. Like
the job's public view it carries no cost, notes or training data. Pure: routing and sending are the
notifier's (one delivery per recipient, each once)."""

from __future__ import annotations

from typing import Any

from handlers.notifications.notices import Notice
from handlers.notifications.preferences import Preferences
from handlers.notifications.routing import TEAM_CHANNEL, Delivery

OPENS = {"team": "Team link: sign in to LoRA Pipeline to open it.",
         "public": "Public link: it opens without signing in."}


def share_notice(event: Any, job: Any, base_url: str) -> Notice:
    config = job.configuration or {}
    said = f" — “{event.message}”" if event.message else ""
    headline = f"🔗 {event.actor} shared a training job: {job.name}{said}"
    facts = (("Job", job.name), ("Status", job.status.value.replace("_", " ")),
             ("Configuration", f"{str(config.get('preset') or '—').capitalize()} preset,"
                               f" {(config.get('hyperparameters') or {}).get('num_train_epochs', '?')} epochs"),
             ("Created by", job.created_by), ("Shared by", event.actor),
             ("Link", OPENS.get(event.visibility, "")))
    sections = (("Message", (event.message,)),) if event.message else ()
    return Notice("shared", f"{event.actor} shared a training job with you: {job.name}", headline, job.name, facts,
                  sections, actions=(("View Job", f"{base_url}/training-jobs/{job.id}"),), job_id=job.id,
                  at=event.at)


def share_deliveries(notice: Notice, event: Any, people: dict[str, Preferences], team_webhook: str) -> list[Delivery]:
    """Email: one per recipient (a user name goes to that user's address); Slack: the team's channel."""
    if event.channel == "slack":
        return [Delivery("slack", TEAM_CHANNEL, team_webhook, notice)]
    deliveries = []
    for recipient in event.recipients:
        if "@" in recipient:
            deliveries.append(Delivery("email", recipient, recipient, notice))
            continue
        address = people[recipient].email if recipient in people else ""
        deliveries.append(Delivery("email", address, address, notice) if address else
                          Delivery("email", f"user:{recipient}", "", notice, f"no email address for {recipient}"))
    return deliveries
