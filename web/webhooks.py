"""Outgoing webhooks on the web (#20): the team's endpoints through the JSON API (`/api/webhooks`:
create with a URL and the events chosen, list, delete, rotate the secret, the delivery log, redeliver
by hand), for managers and admins; the notification settings page shows the same (web/pages/settings.py,
web/pages/webhook_forms.py). A secret is in the answer that made it and never again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from litestar import Request, Response, Router, delete, get, post
from litestar.datastructures import State
from litestar.exceptions import ClientException, HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery
from pydantic import BaseModel, Field

from handlers.webhooks import store
from handlers.webhooks.events import TYPES
from handlers.webhooks.store import InvalidWebhookError, WebhookNotFoundError
from infra.secretbox import SecretBox, SecretBoxError, box_for
from web.auth import actor_of, require_manager

T = TypeVar("T")
R = TypeVar("R", bound=Response)


class WebhookBody(BaseModel):
    url: str = Field(max_length=store.URL_MAX)
    events: list[str] = Field(max_length=len(TYPES) * 2)
    description: str = Field(default="", max_length=store.DESCRIPTION_MAX)


def box_of(state: State) -> SecretBox:
    try:
        return box_for(state.settings.notifications.webhook_key.get_secret_value(),
                       state.settings.runtime.state_dir.resolve())
    except SecretBoxError as exc:
        raise HTTPException(status_code=503, detail=f"Webhook secrets cannot be sealed: {exc}") from None


async def in_db(state: State, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """The webhook tables' synchronous code (handlers/webhooks/store.py) in a thread, its own
    connection; refusals as the API answers them."""

    def run() -> T:
        with psycopg.connect(state.pool.conninfo) as conn:
            return work(conn, *args, **kwargs)

    try:
        return await asyncio.to_thread(run)
    except InvalidWebhookError as exc:
        raise ClientException(str(exc)) from None
    except WebhookNotFoundError as exc:
        raise NotFoundException(str(exc)) from None


def unstored(answer: R) -> R:
    """An answer that carries a secret: kept by no cache and no browser history (`Cache-Control: no-store`)."""
    answer.headers["Cache-Control"] = "no-store"
    return answer


def team_of(state: State) -> str:
    return str(state.settings.budget.team)


async def create(request: Request, state: State, data: WebhookBody) -> dict[str, Any]:
    """The new endpoint with its secret (the API and the page)."""
    endpoint, secret = await in_db(state, store.create_endpoint, box_of(state), team=team_of(state), url=data.url,
                                   events=data.events, description=data.description, actor=actor_of(request).name)
    return endpoint | {"secret": secret}


async def rotate(state: State, endpoint_id: UUID) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    secret = await in_db(state, store.rotate_secret, box_of(state), team_of(state), endpoint_id, now)
    return {"id": endpoint_id, "secret": secret, "previous_secret_valid_until": now + store.ROTATION_OVERLAP}


async def settings_view(state: State) -> dict[str, Any]:
    """What the settings page's webhooks section shows."""
    team = team_of(state)
    endpoints = await in_db(state, store.endpoints, team)
    deliveries = await in_db(state, store.deliveries, team, None, 30)
    return {"endpoints": endpoints, "deliveries": deliveries, "types": TYPES}


@get("/api/webhooks")
async def api_list(state: State) -> list[dict[str, Any]]:
    """The team's endpoints with their delivery counts (never a secret)."""
    return await in_db(state, store.endpoints, team_of(state))


@get("/api/webhooks/event-types")
async def api_event_types() -> list[dict[str, str]]:
    return [{"type": kind, "label": label} for kind, label in TYPES.items()]


@post("/api/webhooks", status_code=201)
async def api_create(request: Request, state: State, data: WebhookBody) -> Response[dict[str, Any]]:
    """`{"url", "events": [types from /api/webhooks/event-types], "description"?}`; the answer carries
    the endpoint's `whsec_` secret, shown this once."""
    return unstored(Response(await create(request, state, data), status_code=201))


@get("/api/webhooks/{endpoint_id:uuid}")
async def api_get(state: State, endpoint_id: FromPath[UUID]) -> dict[str, Any]:
    return await in_db(state, store.endpoint, team_of(state), endpoint_id)


@delete("/api/webhooks/{endpoint_id:uuid}", status_code=204)
async def api_delete(state: State, endpoint_id: FromPath[UUID]) -> None:
    """Nothing more is sent to it (its pending deliveries are given up); its delivery log stays."""
    await in_db(state, store.delete_endpoint, team_of(state), endpoint_id)


@post("/api/webhooks/{endpoint_id:uuid}/rotate-secret", status_code=200)
async def api_rotate(state: State, endpoint_id: FromPath[UUID]) -> Response[dict[str, Any]]:
    """A new secret, shown this once; the old one also signs for 24 hours while receivers switch over."""
    return unstored(Response(await rotate(state, endpoint_id)))


@get("/api/webhooks/{endpoint_id:uuid}/deliveries")
async def api_deliveries(state: State, endpoint_id: FromPath[UUID], limit: FromQuery[int] = 50) -> list[dict[str, Any]]:
    """The endpoint's deliveries newest first, each with every attempt (time, duration, answer, error)."""
    await in_db(state, store.endpoint, team_of(state), endpoint_id)
    return await in_db(state, store.deliveries, team_of(state), endpoint_id, max(1, min(limit, 500)))


@post("/api/webhooks/deliveries/{delivery_id:int}/redeliver", status_code=200)
async def api_redeliver(request: Request, state: State, delivery_id: FromPath[int]) -> Response[dict[str, Any]]:
    """Sent again now (same event id and body), whatever became of it before."""
    row = await in_db(state, store.redeliver, team_of(state), delivery_id, actor_of(request).name)
    return Response(row)


router = Router(path="/", guards=[require_manager], route_handlers=[
    api_list, api_event_types, api_create, api_get, api_delete, api_rotate, api_deliveries, api_redeliver])
