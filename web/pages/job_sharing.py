"""Share Job (FR8.1.2) from the job page and the JSON API: set who can see the job (private, team,
public), send its link by email or to the team's Slack channel (a notice the notifier delivers,
handlers/notifications/share_notices.py), and revoke share links at once. Each change is an event
on the job's sharing record (domain/aggregates/job_sharing.py); a refusal changes nothing."""

from __future__ import annotations

import asyncio
from typing import Any, Literal
from uuid import UUID

from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.response import Redirect
from pydantic import BaseModel, Field

from domain.aggregates.job_sharing import InvalidSharingError, JobSharing
from web import users
from web.auth import actor_of
from web.clock import utcnow
from web.errors import DOMAIN_ERRORS, message_of
from web.flows import Actor
from web.forms import redirect_with, split_tags
from web.sharing.panel import as_json, sharing_panel

SENT = {"email": "Link sent by email to {n} recipient{s}.", "slack": "Link posted to the team's Slack channel."}


def back(job_id: UUID, *, notice: str = "", error: str = "") -> Redirect:
    return redirect_with(f"/jobs/{job_id}?share=1", notice=notice, error=error)


async def change_visibility(state: State, job_id: UUID, visibility: str, actor: Actor) -> None:
    await asyncio.to_thread(state.store.app.change_job_visibility, job_id, visibility, actor=actor.name,
                            role=actor.role, at=utcnow())


async def send(state: State, job_id: UUID, channel: str, recipients: list[str], message: str, actor: Actor) -> None:
    """Every user name among the recipients must be a user here (an address can be anyone's)."""
    names = [r for r in recipients if "@" not in r]
    unknown = sorted(set(names) - await users.known_users(state.pool, names)) if names else []
    if unknown:
        raise InvalidSharingError(f"No user named {', '.join(unknown)}: give their email address instead")
    now = utcnow()

    def share(sharing: JobSharing) -> None:
        sharing.share(channel, recipients, message, actor.name, actor.role, now)

    await asyncio.to_thread(state.store.app.update_sharing, job_id, actor.name, share, now)


async def revoke(state: State, job_id: UUID, link_id: UUID | None, actor: Actor) -> None:
    now = utcnow()

    def command(sharing: JobSharing) -> None:
        if link_id is None:
            sharing.revoke_all_links(actor.name, actor.role, now)
        else:
            sharing.revoke_link(link_id, actor.name, actor.role, now)

    await asyncio.to_thread(state.store.app.update_sharing, job_id, actor.name, command, now)


# --- the job page's forms --------------------------------------------------------------------

@post("/jobs/{job_id:uuid}/sharing/visibility", media_type=MediaType.HTML)
async def visibility_form(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    form = await request.form()
    chosen = str(form.get("visibility") or "")
    try:
        await change_visibility(state, job_id, chosen, actor_of(request))
    except DOMAIN_ERRORS as exc:
        return back(job_id, error=message_of(exc))
    return back(job_id, notice=f"Visibility: {chosen}.")


@post("/jobs/{job_id:uuid}/sharing/send", media_type=MediaType.HTML)
async def send_form(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    form = await request.form()
    channel = str(form.get("channel") or "")
    recipients = split_recipients(str(form.get("recipients") or ""))
    try:
        await send(state, job_id, channel, recipients, str(form.get("message") or "")[:5000], actor_of(request))
    except DOMAIN_ERRORS as exc:
        return back(job_id, error=message_of(exc))
    n = len(recipients)
    return back(job_id, notice=SENT.get(channel, "Shared.").format(n=n, s="" if n == 1 else "s"))


@post("/jobs/{job_id:uuid}/share-links/{link_id:uuid}/revoke", media_type=MediaType.HTML)
async def revoke_form(request: Request, state: State, job_id: FromPath[UUID], link_id: FromPath[UUID]) -> Response:
    try:
        await revoke(state, job_id, link_id, actor_of(request))
    except DOMAIN_ERRORS as exc:
        return back(job_id, error=message_of(exc))
    return back(job_id, notice="Link revoked: it no longer opens anything.")


@post("/jobs/{job_id:uuid}/share-links/revoke-all", media_type=MediaType.HTML)
async def revoke_all_form(request: Request, state: State, job_id: FromPath[UUID]) -> Response:
    try:
        await revoke(state, job_id, None, actor_of(request))
    except DOMAIN_ERRORS as exc:
        return back(job_id, error=message_of(exc))
    return back(job_id, notice="Every share link of this job was revoked.")


def split_recipients(text: str) -> list[str]:
    """Addresses or user names, separated by commas, semicolons or spaces."""
    return split_tags(text.replace(";", ","))


# --- JSON API ----------------------------------------------------------------------------------

class Visibility(BaseModel):
    visibility: Literal["private", "team", "public"]


class ShareRequest(BaseModel):
    channel: Literal["email", "slack"]
    recipients: list[str] = Field(default_factory=list, max_length=100)
    message: str = Field(default="", max_length=5000)


async def panel_json(request: Request, state: State, job_id: UUID) -> dict[str, Any]:
    job = await asyncio.to_thread(state.store.app.get_job, job_id)
    return as_json(await sharing_panel(state, job_id, job.created_by, actor_of(request), utcnow()))


@get("/api/jobs/{job_id:uuid}/sharing")
async def api_sharing(request: Request, state: State, job_id: FromPath[UUID]) -> dict[str, Any]:
    """The job's visibility, its link (/training-jobs/{id}) and its active share links."""
    return await panel_json(request, state, job_id)


@post("/api/jobs/{job_id:uuid}/sharing", status_code=200)
async def api_set_visibility(request: Request, state: State, job_id: FromPath[UUID],
                             data: Visibility) -> dict[str, Any]:
    await change_visibility(state, job_id, data.visibility, actor_of(request))
    return await panel_json(request, state, job_id)


@post("/api/jobs/{job_id:uuid}/share", status_code=202)
async def api_share(request: Request, state: State, job_id: FromPath[UUID], data: ShareRequest) -> dict[str, Any]:
    """Sends the job's link (accepted: the notifier delivers it, once per recipient)."""
    await send(state, job_id, data.channel, data.recipients, data.message, actor_of(request))
    return {"job_id": str(job_id), "channel": data.channel, "recipients": data.recipients, "status": "accepted"}


@post("/api/jobs/{job_id:uuid}/share-links/{link_id:uuid}/revoke", status_code=200)
async def api_revoke(request: Request, state: State, job_id: FromPath[UUID], link_id: FromPath[UUID]) -> dict[str, Any]:
    await revoke(state, job_id, link_id, actor_of(request))
    return await panel_json(request, state, job_id)


@post("/api/jobs/{job_id:uuid}/share-links/revoke-all", status_code=200)
async def api_revoke_all(request: Request, state: State, job_id: FromPath[UUID]) -> dict[str, Any]:
    """Every report and package link of the job stops working at once."""
    await revoke(state, job_id, None, actor_of(request))
    return await panel_json(request, state, job_id)


routes = [visibility_form, send_form, revoke_form, revoke_all_form, api_sharing, api_set_visibility, api_share,
          api_revoke, api_revoke_all]
