"""In-app banners (FR8.2.1 "In-app: Always on (banner notifications)", FR7.2.2 "Banner on
dashboard"): a user's banners about their jobs and their team's budget banners, written by the
notifier (handlers/notifications), listed here for scripts (/api/banners) and dismissed here; pages
show them in the notification area, and as a banner only what needs action now
(web/notification_area.py).

A user's banner is dismissed for good; a team's banner is dismissed for the one person who asked,
so the others still see it. Banners older than BANNER_DAYS, or past their own expiry (the first-day
"Budget Reset" banner), are no longer shown."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Router, get, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from web.auth import actor_of, local_path

BANNER_DAYS = 30
# Two index scans (notification_banners_*_open_idx), each stopping at `limit`.
OPEN_BANNERS = (
    "(SELECT event_key AS key, kind, level, message, link, created_at FROM notification_banners"
    "  WHERE user_name = %(user)s AND dismissed_at IS NULL AND created_at > now() - make_interval(days => %(days)s)"
    "  AND (expires_at IS NULL OR expires_at > now())"
    "  ORDER BY created_at DESC LIMIT %(limit)s)"
    " UNION ALL "
    "(SELECT event_key, kind, level, message, link, created_at FROM notification_banners b"
    "  WHERE user_name IS NULL AND team = %(team)s AND dismissed_at IS NULL"
    "  AND created_at > now() - make_interval(days => %(days)s) AND (expires_at IS NULL OR expires_at > now())"
    "  AND NOT EXISTS (SELECT 1 FROM"
    "  notification_banner_dismissals d WHERE d.banner_key = b.event_key AND d.user_name = %(user)s)"
    "  ORDER BY created_at DESC LIMIT %(limit)s)"
    " ORDER BY created_at DESC, key LIMIT %(limit)s")
# The user's own banner is retired; a team banner gets a dismissal for this user only. Anyone
# else's banner is not found.
DISMISS = (
    "WITH target AS (SELECT event_key, user_name FROM notification_banners WHERE event_key = %(key)s"
    "  AND (user_name = %(user)s OR (user_name IS NULL AND team = %(team)s))),"
    " own AS (UPDATE notification_banners b SET dismissed_at = coalesce(b.dismissed_at, now()),"
    "  dismissed_by = coalesce(b.dismissed_by, %(user)s) FROM target t"
    "  WHERE b.event_key = t.event_key AND t.user_name IS NOT NULL RETURNING 1),"
    " shared AS (INSERT INTO notification_banner_dismissals (banner_key, user_name)"
    "  SELECT event_key, %(user)s FROM target WHERE user_name IS NULL ON CONFLICT DO NOTHING RETURNING 1)"
    " SELECT count(*) FROM target")


async def banners_for(pool: AsyncConnectionPool, user_name: str, team: str = "default",
                      limit: int = 5) -> list[dict[str, Any]]:
    """The user's undismissed banners and their team's, newest first: key, kind, level (info,
    warning, error), message, link (a path of this site) and created_at."""
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(OPEN_BANNERS, {"user": user_name, "team": team, "limit": limit, "days": BANNER_DAYS})
        return await cur.fetchall()


async def dismiss(pool: AsyncConnectionPool, key: str, user_name: str, team: str = "default") -> bool:
    """Dismisses one of the user's banners or of their team's for them; False if there is none such."""
    async with pool.connection() as conn:
        found = await (await conn.execute(DISMISS, {"key": key, "user": user_name, "team": team})).fetchone()
    return bool(found and found[0])


@get("/api/banners")
async def api_banners(request: Request, state: State, limit: FromQuery[int] = 5) -> list[dict[str, Any]]:
    """The current user's open banners and their team's, newest first."""
    return await banners_for(state.pool, actor_of(request).name, state.settings.budget.team, max(1, min(limit, 50)))


@post("/api/banners/{key:str}/dismiss", status_code=200)
async def api_dismiss(request: Request, state: State, key: FromPath[str]) -> dict[str, Any]:
    if not await dismiss(state.pool, key, actor_of(request).name, state.settings.budget.team):
        raise NotFoundException(f"no banner {key} of yours or your team's")
    return {"key": key, "dismissed": True}


@post("/banners/{key:str}/dismiss", media_type=MediaType.HTML, status_code=303)
async def dismiss_form(request: Request, state: State, key: FromPath[str]) -> Redirect:
    """The banner's close button (a form): back to the page it was on."""
    form = await request.form()
    if not await dismiss(state.pool, key, actor_of(request).name, state.settings.budget.team):
        raise NotFoundException(f"no banner {key} of yours or your team's")
    return Redirect(local_path(form.get("next")), status_code=303)


router = Router(path="/", route_handlers=[api_banners, api_dismiss, dismiss_form])
