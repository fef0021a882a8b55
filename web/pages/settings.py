"""Notification settings (FR8.2.1 "Notification Preferences", FR7.2.2 "Notification Recipients"):
the signed-in user's own preferences; the team's Slack channel, budget recipients and outgoing
webhooks (#20) for managers and admins. Validation and storage are the JSON API's
(handlers/notifications/preferences.py; webhooks: web/webhooks.py)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from litestar import MediaType, Request, get, post
from litestar.datastructures import State
from litestar.params import FromQuery
from litestar.response import Response, Template

from handlers.notifications.preferences import (
    CHANNELS,
    DIGESTS,
    EVENT_GROUPS,
    JOB_EVENTS,
    InvalidPreferencesError,
    Preferences,
    TeamSettings,
    expand_events,
    get_preferences,
    get_team,
    save_preferences,
    save_team,
)
from web import webhooks
from web.auth import actor_of, require_manager, user_of
from web.forms import redirect_with

T = TypeVar("T")
PATH = "/settings/notifications"
EVENT_LABELS = {"completed": "Training completed", "failed": "Training failed",
                "cancelled": "Training cancelled (by a user or the system)",
                "interrupted": "Spot instance interrupted",
                "recovery_exhausted": "Recovery gave up after repeated interruptions",
                "provisioning_timeout": "No GPU could be provisioned in time",
                "quality_scored": "Replies scored (emotional intelligence, brand voice)"}
CHOICES = {"all": "All events", "completions": "Completions only", "failures": "Failures only",
           "custom": "Choose events:"}
# The JSON API's field limits (web/notifications.py, PreferencesBody and TeamBody).
LIMITS = {"email": 254, "slack_webhook_url": 500, "slack_channel": 100}
MAX_EMAILS = 50
SEPARATORS = re.compile(r"[\s,;]+")


async def _db(state: State, work: Callable[..., T], *args: Any) -> T:
    def run() -> T:
        with psycopg.connect(state.pool.conninfo) as conn:
            return work(conn, *args)

    return await asyncio.to_thread(run)


def events_choice(events: tuple[str, ...]) -> str:
    return next((name for name, group in EVENT_GROUPS.items() if set(group) == set(events)), "custom")


def _limited(values: dict[str, str]) -> None:
    for name, most in LIMITS.items():
        if len(values.get(name) or "") > most:
            raise InvalidPreferencesError(f"{name.replace('_', ' ')} must be at most {most} characters")


def emails(text: str) -> tuple[str, ...]:
    found = tuple(address for address in SEPARATORS.split(text) if address)
    if len(found) > MAX_EMAILS:
        raise InvalidPreferencesError(f"at most {MAX_EMAILS} email addresses")
    return found


async def _page(request: Request, state: State, status: int = 200, **extra: Any) -> Template:
    user = user_of(request)
    actor = actor_of(request)
    managing = actor.role in ("manager", "admin")
    preferences = await _db(state, get_preferences, actor.name)
    team = await _db(state, get_team, state.settings.budget.team) if managing else None
    mine = extra.pop("mine", None) or {
        "email": preferences.email or "", "channels": preferences.channels, "events": preferences.events,
        "choice": events_choice(preferences.events), "digest": preferences.digest,
        "slack_webhook_url": preferences.slack_webhook_url or ""}
    shown_team = extra.pop("team", None) or ({
        "slack_webhook_url": team.slack_webhook_url or "", "slack_channel": team.slack_channel or "",
        "manager_emails": "\n".join(team.manager_emails), "finance_emails": "\n".join(team.finance_emails),
        "budget_digest": team.budget_digest} if team else None)
    return Template("settings_notifications.html", status_code=status, context={
        "mine": mine, "team": shown_team, "team_name": state.settings.budget.team, "managing": managing,
        "account_email": user.email if user else None, "channels": CHANNELS, "digests": DIGESTS,
        "events": JOB_EVENTS, "event_labels": EVENT_LABELS, "choices": CHOICES, "error": None, "notice": None,
        "team_error": None, "webhooks": await webhooks.settings_view(state) if managing else None,
        "webhook_error": None, "webhook_form": None, "webhook_secret": None} | extra)


render = _page  # the webhooks section's forms answer with this page too (web/pages/webhook_forms.py)


@get(PATH, media_type=MediaType.HTML)
async def settings_page(request: Request, state: State, notice: FromQuery[str | None] = None) -> Template:
    return await _page(request, state, notice=notice)


@post(PATH, media_type=MediaType.HTML)
async def save_my_preferences(request: Request, state: State) -> Response:
    """The signed-in user's own preferences (FR8.2.1); anyone else's only through the JSON API."""
    form = await request.form()
    choice = str(form.get("choice") or "all")
    mine = {"email": str(form.get("email") or "").strip(), "channels": tuple(form.getall("channels", [])),
            "events": tuple(form.getall("events", [])), "choice": choice, "digest": str(form.get("digest") or "off"),
            "slack_webhook_url": str(form.get("slack_webhook_url") or "").strip()}
    try:
        _limited(mine)
        if choice not in CHOICES:
            raise InvalidPreferencesError(f"unknown event choice {choice}; known: {', '.join(CHOICES)}")
        events = mine["events"] if choice == "custom" else expand_events([choice])
        wanted = Preferences(actor_of(request).name, mine["email"] or None, mine["channels"], events, mine["digest"],
                             mine["slack_webhook_url"] or None)
        await _db(state, save_preferences, wanted)
    except InvalidPreferencesError as exc:
        return await _page(request, state, 400, error=str(exc), mine=mine)
    return redirect_with(PATH, notice="Your notification preferences were saved")


@post(f"{PATH}/team", media_type=MediaType.HTML, guards=[require_manager])
async def save_team_settings(request: Request, state: State) -> Response:
    """The team's Slack channel and who gets budget alerts and limit requests (FR7.2.2)."""
    form = await request.form()
    shown: dict[str, Any] = {key: str(form.get(key) or "").strip()
                             for key in ("slack_webhook_url", "slack_channel", "manager_emails", "finance_emails")}
    shown["budget_digest"] = form.get("budget_digest") == "on"
    try:
        _limited({key: value for key, value in shown.items() if key != "budget_digest"})
        wanted = TeamSettings(state.settings.budget.team, shown["slack_webhook_url"] or None,
                              shown["slack_channel"] or None, emails(shown["manager_emails"]),
                              emails(shown["finance_emails"]), shown["budget_digest"])
        await _db(state, save_team, wanted)
    except InvalidPreferencesError as exc:
        return await _page(request, state, 400, team_error=str(exc), team=shown)
    return redirect_with(PATH, notice="The team's notification settings were saved")


routes = [settings_page, save_my_preferences, save_team_settings]
