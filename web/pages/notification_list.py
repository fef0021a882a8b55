"""The notification area's pages (issue #23, web/notification_area.py): every recent notification
(`/notifications`), "Mark all read" (a form, back to the page it was on), opening one (read, then
its page), and the same as JSON for scripts."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, get, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from web import banners, notification_area
from web.auth import actor_of, local_path


def _who(request: Request, state: State) -> tuple[str, str]:
    return actor_of(request).name, state.settings.budget.team


@get("/notifications", media_type=MediaType.HTML)
async def notifications_page(request: Request, state: State) -> Template:
    """The last BANNER_DAYS days' notifications, newest first, the unread ones marked."""
    found = await notification_area.inbox(state.pool, *_who(request, state), limit=notification_area.LIST_MAX)
    return Template("notifications.html", context={"items": found["items"], "unread": found["unread"],
                                                   "days": banners.BANNER_DAYS})


@post("/notifications/read-all", media_type=MediaType.HTML, status_code=303)
async def read_all_form(request: Request, state: State) -> Redirect:
    """The list's "Mark all read": back to the page it was on."""
    form = await request.form()
    await notification_area.mark_all_read(state.pool, *_who(request, state))
    return Redirect(local_path(form.get("next"), "/notifications"), status_code=303)


@get("/notifications/{key:str}/open", media_type=MediaType.HTML)
async def open_notification(request: Request, state: State, key: FromPath[str]) -> Redirect:
    """A notification's link from the list: it is read, then its page opens."""
    user, team = _who(request, state)
    link = await notification_area.link_of(state.pool, key, user, team)
    if link is None:
        raise NotFoundException(f"no notification {key} of yours or your team's")
    await banners.dismiss(state.pool, key, user, team)
    return Redirect(local_path(link, "/notifications"), status_code=303)


@get("/api/notifications")
async def api_notifications(request: Request, state: State,
                            limit: FromQuery[int] = notification_area.LIST_SIZE) -> dict[str, Any]:
    """`unread`, `items` (newest first, each with `unread`) and `banners` (what needs action now)."""
    found = await notification_area.inbox(state.pool, *_who(request, state),
                                          limit=max(1, min(limit, notification_area.LIST_MAX)))
    return {key: found[key] for key in ("unread", "items", "banners")}


@post("/api/notifications/read-all", status_code=200)
async def api_read_all(request: Request, state: State) -> dict[str, int]:
    return {"marked": await notification_area.mark_all_read(state.pool, *_who(request, state))}


routes = [notifications_page, read_all_form, open_notification, api_notifications, api_read_all]
