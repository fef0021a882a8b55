"""The webhooks section's forms on the notification settings page (managers and admins): add an
endpoint (its secret shown on the page that answers, once), delete one, rotate its secret, and send a
delivery again. The rules and tables are web/webhooks.py's and handlers/webhooks/store.py's."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import MediaType, Request, post
from litestar.datastructures import State
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath
from litestar.response import Response
from pydantic import ValidationError

from web import webhooks
from web.auth import actor_of, require_manager
from web.forms import redirect_with
from web.pages.settings import PATH, render

BASE = f"{PATH}/webhooks"


@post(BASE, media_type=MediaType.HTML, guards=[require_manager])
async def add_endpoint(request: Request, state: State) -> Response:
    form = await request.form()
    shown: dict[str, Any] = {"url": str(form.get("url") or "").strip(), "events": list(form.getall("events", [])),
                             "description": str(form.get("description") or "").strip()}
    try:
        made = await webhooks.create(request, state, webhooks.WebhookBody(**shown))
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = ".".join(str(part) for part in problem["loc"])
        return await render(request, state, 400, webhook_error=f"{field}: {problem['msg']}", webhook_form=shown)
    except ClientException as exc:
        return await render(request, state, 400, webhook_error=exc.detail, webhook_form=shown)
    return webhooks.unstored(await render(request, state, 201, webhook_secret={
        "id": made["id"], "url": made["url"], "secret": made["secret"], "made": "added"}))


@post(f"{BASE}/{{endpoint_id:uuid}}/delete", media_type=MediaType.HTML, guards=[require_manager])
async def delete_endpoint(state: State, endpoint_id: FromPath[UUID]) -> Response:
    try:
        await webhooks.in_db(state, webhooks.store.delete_endpoint, webhooks.team_of(state), endpoint_id)
    except NotFoundException as exc:
        return redirect_with(PATH, notice=str(exc.detail))
    return redirect_with(PATH, notice="The webhook endpoint was deleted: nothing more is sent to it")


@post(f"{BASE}/{{endpoint_id:uuid}}/rotate", media_type=MediaType.HTML, guards=[require_manager])
async def rotate_secret(request: Request, state: State, endpoint_id: FromPath[UUID]) -> Response:
    try:
        rotated = await webhooks.rotate(state, endpoint_id)
    except NotFoundException as exc:
        return await render(request, state, 404, webhook_error=exc.detail)
    endpoint = await webhooks.in_db(state, webhooks.store.endpoint, webhooks.team_of(state), endpoint_id)
    return webhooks.unstored(await render(request, state, 200, webhook_secret={
        "id": endpoint_id, "url": endpoint["url"], "secret": rotated["secret"], "made": "rotated"}))


@post(f"{BASE}/deliveries/{{delivery_id:int}}/redeliver", media_type=MediaType.HTML, guards=[require_manager])
async def redeliver(request: Request, state: State, delivery_id: FromPath[int]) -> Response:
    try:
        row = await webhooks.in_db(state, webhooks.store.redeliver, webhooks.team_of(state), delivery_id,
                                   actor_of(request).name)
    except NotFoundException as exc:
        return redirect_with(PATH, notice=str(exc.detail))
    return redirect_with(PATH, notice=f"Delivery of {row['event_type']} ({row['event_id']}) queued to be sent again")


routes = [add_endpoint, delete_endpoint, rotate_secret, redeliver]
