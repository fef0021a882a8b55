"""Notifications on the web: the signed approve / deny links of limit-increase emails (FR1.2.2),
users' preferences and the team's channels (FR8.2.1, FR7.2.2) and the delivery ledger (banners:
web/banners.py).

An approval link opens a confirmation page and the decision is a POST from it: mail scanners
(Outlook Safe Links and the like) fetch every link in an email, and a GET that decided would let
them approve requests on the manager's behalf."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Literal, TypeVar

import psycopg
from litestar import MediaType, Request, Router, get, post, put
from litestar.datastructures import State
from litestar.exceptions import ClientException, PermissionDeniedException
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Template
from pydantic import BaseModel, Field

from domain.aggregates.budget import InvalidBudgetCommandError, PermissionDeniedError, UnknownRequestError
from domain.applications import ConcurrencyConflictError
from domain.money import usd
from handlers.notifications import ledger, tokens
from handlers.notifications.preferences import (
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
from web.flows import Actor
from web.job_actions import actor_of

T = TypeVar("T")
MANAGERS = ("manager", "admin")
REFUSALS = (InvalidBudgetCommandError, PermissionDeniedError, UnknownRequestError, ConcurrencyConflictError)


async def _db(state: State, work: Callable[..., T], *args: Any) -> T:
    """The notification tables are read and written by the same synchronous code as the CLI's, in
    a thread on a connection of its own."""

    def run() -> T:
        with psycopg.connect(state.pool.conninfo) as conn:
            return work(conn, *args)

    return await asyncio.to_thread(run)


# --- approve / deny links -----------------------------------------------------------------------

def _approval(state: State, token: str) -> tuple[tokens.Approval, dict[str, Any] | None]:
    secret = state.settings.notifications.approval_secret.get_secret_value()
    approval = tokens.verify(token, secret, datetime.now(timezone.utc))
    budget = state.store.app.budget(approval.month)
    return approval, (budget.requests.get(str(approval.request_id)) if budget else None)


def _page(approval: tokens.Approval | None, request: dict[str, Any] | None, status: int = 200,
          **context: Any) -> Template:
    shown = {"requested_by": request["requested_by"], "new_limit": usd(request["new_limit"]),
             "justification": request["justification"], "status": request["status"]} if request else None
    return Template("approval.html", status_code=status, context={
        "approval": approval, "asked": shown, "error": None, "notice": None, "confirm": False} | context)


def _refused(exc: Exception) -> Template:
    status = {tokens.ExpiredTokenError: 410, tokens.UsedTokenError: 409}.get(type(exc), 400)
    return _page(None, None, status, error=str(exc))


@get("/approvals/{token:str}", media_type=MediaType.HTML)
async def approval_page(state: State, token: FromPath[str]) -> Template:
    """What the manager is asked to decide, with one button; nothing is decided by opening it."""
    try:
        approval, request = await asyncio.to_thread(_approval, state, token)
        if await _db(state, ledger.token_used, tokens.digest(token)):
            raise tokens.UsedTokenError("This link was used already")
    except tokens.InvalidTokenError as exc:
        return _refused(exc)
    if request is None:
        return _page(approval, None, 404, error="No such budget increase request")
    if request["status"] != "pending":
        return _page(approval, request, 409, error=f"This request was already {request['status']}")
    return _page(approval, request, confirm=True)


@post("/approvals/{token:str}", media_type=MediaType.HTML, status_code=200)
async def decide(state: State, token: FromPath[str]) -> Template:
    """Decides the request as the manager the link was signed for; each link works once."""
    digest = tokens.digest(token)
    try:
        approval, request = await asyncio.to_thread(_approval, state, token)
        if await _db(state, ledger.token_used, digest):
            raise tokens.UsedTokenError("This link was used already")
    except tokens.InvalidTokenError as exc:
        return _refused(exc)
    try:
        await asyncio.to_thread(state.store.app.decide_limit_increase, approval.month, approval.request_id,
                                approval.approve, approval.manager, "manager", datetime.now(timezone.utc))
    except REFUSALS as exc:
        return _page(approval, request, 409, error=str(exc.args[0]) if exc.args else str(exc))
    await _db(state, _use, digest, approval)
    _, request = await asyncio.to_thread(_approval, state, token)
    verdict = "approved: the new limit applies at once" if approval.approve else "denied"
    return _page(approval, request, notice=f"Request {verdict}.")


def _use(conn: psycopg.Connection, digest: str, approval: tokens.Approval) -> None:
    ledger.use_token(conn, digest, approval.request_id, approval.decision)


# --- preferences and team settings ----------------------------------------------------------------

class PreferencesBody(BaseModel):
    email: str | None = Field(default=None, max_length=254)
    channels: list[Literal["email", "slack"]] = Field(default_factory=lambda: ["email"])
    events: list[str] = Field(default_factory=lambda: list(JOB_EVENTS), max_length=20,
                              description="event names, or all / completions / failures")
    digest: Literal["off", "daily"] = "off"
    slack_webhook_url: str | None = Field(default=None, max_length=500)


class TeamBody(BaseModel):
    slack_webhook_url: str | None = Field(default=None, max_length=500)
    slack_channel: str | None = Field(default=None, max_length=100)
    manager_emails: list[str] = Field(default_factory=list, max_length=50)
    finance_emails: list[str] = Field(default_factory=list, max_length=50)
    budget_digest: bool = False


def _check_may_see(actor: Actor, user: str | None) -> None:
    """A user's own preferences, or anyone's for a manager; team settings for managers only."""
    if actor.role not in MANAGERS and actor.name != user:
        raise PermissionDeniedException("Only the user themself or a manager may see or change these settings")


@get("/api/notification-preferences/{user:str}")
async def api_get_preferences(request: Request, state: State, user: FromPath[str]) -> dict[str, Any]:
    _check_may_see(actor_of(request), user)
    return (await _db(state, get_preferences, user)).as_dict()


@put("/api/notification-preferences/{user:str}")
async def api_put_preferences(request: Request, state: State, user: FromPath[str],
                              data: JSONBody[PreferencesBody]) -> dict[str, Any]:
    """Replaces the user's preferences (FR8.2.1: email, Slack, which events, digest mode)."""
    _check_may_see(actor_of(request), user)
    wanted = Preferences(user, data.email, tuple(data.channels), expand_events(data.events), data.digest,
                         data.slack_webhook_url)
    try:
        return (await _db(state, save_preferences, wanted)).as_dict()
    except InvalidPreferencesError as exc:
        raise ClientException(str(exc)) from None


@get("/api/notification-team-settings")
async def api_get_team(request: Request, state: State) -> dict[str, Any]:
    _check_may_see(actor_of(request), None)
    return (await _db(state, get_team, state.settings.budget.team)).as_dict()


@put("/api/notification-team-settings")
async def api_put_team(request: Request, state: State, data: JSONBody[TeamBody]) -> dict[str, Any]:
    """Replaces the team's Slack channel, budget recipients (managers, finance) and whether they get
    the daily budget summary."""
    _check_may_see(actor_of(request), None)
    wanted = TeamSettings(state.settings.budget.team, data.slack_webhook_url, data.slack_channel,
                          tuple(data.manager_emails), tuple(data.finance_emails), data.budget_digest)
    try:
        return (await _db(state, save_team, wanted)).as_dict()
    except InvalidPreferencesError as exc:
        raise ClientException(str(exc)) from None


# --- what was sent ----------------------------------------------------------------------------------

@get("/api/notifications/deliveries")
async def api_deliveries(state: State, failed: FromQuery[bool] = False,
                         limit: FromQuery[int] = 100) -> list[dict[str, Any]]:
    """Newest first; `failed`: given up on (with the channel's answer) or still being retried."""
    return await _db(state, ledger.deliveries, failed, max(1, min(limit, 1000)))


router = Router(path="/", route_handlers=[approval_page, decide, api_get_preferences, api_put_preferences,
                                          api_get_team, api_put_team, api_deliveries])
