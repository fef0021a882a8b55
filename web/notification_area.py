"""The notification area (issue #23): the bell in the header with the unread count, its list and
"Mark all read", per person; and the few page banners kept for what needs action now.

Notifications are the rows the notifier writes (`notification_banners`: a person's job events, the
team's budget alerts; handlers/notifications). Read means dismissed: a person's own notification
is marked on its row, a team notification once per reader (`notification_banner_dismissals`), as
web/banners.py dismisses them. A job's older notification is superseded by its newer one and leaves
the list (one per job: the latest). Page banners are only those whose cause still stands when the
page is drawn: the month's budget still at or over its limit (`budget_100`), a completed job whose
adapter the quality gate still blocks, a job still waiting for the owner's GPU decision."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from projections.budget_reads import used_up_months
from projections.job_reads import needing_action
from web.banners import BANNER_DAYS
from web.clock import utcnow

# A job's notification that asks for action while the job still stands so (projections/job_reads.needing_action).
JOB_CAUSES = {"completed": "blocked", "quality_scored": "blocked", "provisioning_timeout": "awaiting_gpu_decision"}
JOB_BANNERS, BUDGET_BANNERS = 3, 1  # at most, newest first
LIST_SIZE = 8  # in the header's drop-down; /notifications shows up to LIST_MAX
LIST_MAX = 100
UNREAD_CAP = 99  # the bell says "99+" past this
FRESH = "created_at > now() - make_interval(days => %(days)s) AND (expires_at IS NULL OR expires_at > now())"
NOT_DISMISSED_BY_ME = ("NOT EXISTS (SELECT 1 FROM notification_banner_dismissals d"
                       " WHERE d.banner_key = b.event_key AND d.user_name = %(user)s)")
RECENT = (
    "(SELECT event_key AS key, kind, level, message, link, created_at, dismissed_at IS NULL AS unread"
    f" FROM notification_banners b WHERE user_name = %(user)s AND superseded_by IS NULL AND {FRESH}"
    " ORDER BY created_at DESC LIMIT %(limit)s)"
    " UNION ALL "
    f"(SELECT event_key, kind, level, message, link, created_at, {NOT_DISMISSED_BY_ME}"
    f" FROM notification_banners b WHERE user_name IS NULL AND team = %(team)s AND {FRESH}"
    " ORDER BY created_at DESC LIMIT %(limit)s)"
    " ORDER BY created_at DESC, key LIMIT %(limit)s")
UNREAD = (
    "SELECT (SELECT count(*) FROM (SELECT 1 FROM notification_banners b WHERE user_name = %(user)s"
    f"   AND dismissed_at IS NULL AND {FRESH} LIMIT %(cap)s) mine)"
    " + (SELECT count(*) FROM (SELECT 1 FROM notification_banners b WHERE user_name IS NULL AND team = %(team)s"
    f"   AND dismissed_at IS NULL AND {FRESH} AND {NOT_DISMISSED_BY_ME} LIMIT %(cap)s) team)")
# What may need action now (newest first): the person's job notifications that can ask for it, and
# the team's "budget used up" ones with their month. Whether the cause still stands is the read
# models' to say (projections/job_reads.needing_action, projections/budget_reads.used_up_months).
MAY_NEED_ACTION = (
    "SELECT event_key AS key, kind, created_at, job_id, NULL AS month FROM notification_banners b"
    " WHERE user_name = %(user)s AND dismissed_at IS NULL AND created_at > now() - make_interval(days => %(days)s)"
    f" AND kind IN ({', '.join(repr(kind) for kind in sorted(JOB_CAUSES))})"
    " UNION ALL "
    "SELECT event_key, kind, created_at, NULL, substring(link from 'month=([0-9]{4}-[0-9]{2})')"
    f" FROM notification_banners b WHERE user_name IS NULL AND team = %(team)s AND kind = 'budget_100' AND {FRESH}"
    f" AND {NOT_DISMISSED_BY_ME}"
    " ORDER BY created_at DESC")
MARK_ALL_READ = (
    "WITH own AS (UPDATE notification_banners SET dismissed_at = now(), dismissed_by = %(user)s"
    "  WHERE user_name = %(user)s AND dismissed_at IS NULL RETURNING 1),"
    " shared AS (INSERT INTO notification_banner_dismissals (banner_key, user_name)"
    f"  SELECT event_key, %(user)s FROM notification_banners b WHERE user_name IS NULL AND team = %(team)s AND {FRESH}"
    "  ON CONFLICT DO NOTHING RETURNING 1)"
    " SELECT (SELECT count(*) FROM own) + (SELECT count(*) FROM shared)")
LINK_OF = ("SELECT link FROM notification_banners WHERE event_key = %(key)s"
           " AND (user_name = %(user)s OR (user_name IS NULL AND team = %(team)s))")


async def inbox(pool: AsyncConnectionPool, user: str, team: str, limit: int = LIST_SIZE) -> dict[str, Any]:
    """The bell's figures for `user`: `unread` (capped at UNREAD_CAP + 1), `items` (newest first:
    key, kind, level, message, link, created_at, ago, unread) and `banners` (what needs action now)."""
    params = {"user": user, "team": team, "days": BANNER_DAYS, "limit": limit, "cap": UNREAD_CAP + 1}
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        items = await (await cur.execute(RECENT, params)).fetchall()
        unread = (await (await conn.execute(UNREAD, params)).fetchone() or (0,))[0]
        candidates = await (await cur.execute(MAY_NEED_ACTION, params)).fetchall()
    actions = await still_standing(pool, team, candidates)
    now = utcnow()
    return {"unread": unread, "unread_text": f"{UNREAD_CAP}+" if unread > UNREAD_CAP else str(unread),
            "items": [row | {"ago": ago(row["created_at"], now)} for row in items],
            "banners": [action_banner(row) for row in actions]}


async def still_standing(pool: AsyncConnectionPool, team: str,
                         candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Those of the candidates (newest first) whose cause still stands as the read models have it
    now: the latest JOB_BANNERS of the person's jobs, the latest BUDGET_BANNERS of the team's months."""
    ids = [row["job_id"] for row in candidates if row["job_id"]]
    months = [row["month"] for row in candidates if row["month"]]
    jobs = await needing_action(pool, ids) if ids else {}
    used_up = await used_up_months(pool, team, months) if months else set()
    for_jobs = [row | {"job_name": jobs[row["job_id"]]["name"]} for row in candidates
                if row["job_id"] in jobs and jobs[row["job_id"]][JOB_CAUSES[row["kind"]]]]
    for_budget = [row for row in candidates if row["month"] in used_up]
    return sorted(for_jobs[:JOB_BANNERS] + for_budget[:BUDGET_BANNERS], key=lambda row: row["created_at"],
                  reverse=True)


def action_banner(row: dict[str, Any]) -> dict[str, Any]:
    """A page banner: what needs doing, and where."""
    key = row["key"]
    if row["kind"] == "budget_100":
        return {"key": key, "level": "error", "link": f"/budget?month={row['month']}", "action": "Review the budget",
                "message": f"The {row['month']} training budget is used up: new jobs may need a manager's override."}
    if row["kind"] == "provisioning_timeout":
        return {"key": key, "level": "warning", "link": f"/jobs/{row['job_id']}", "action": "Decide",
                "message": f"No spot GPU for {row['job_name']} yet: wait, or switch it to on-demand."}
    return {"key": key, "level": "error", "link": f"/jobs/{row['job_id']}?tab=quality", "action": "Review Quality",
            "message": f"✗ Delivery blocked: the adapter of {row['job_name']} did not pass the quality gate."}


async def mark_all_read(pool: AsyncConnectionPool, user: str, team: str) -> int:
    """Every notification `user` sees is read; how many were not."""
    async with pool.connection() as conn:
        found = await (await conn.execute(MARK_ALL_READ, {"user": user, "team": team, "days": BANNER_DAYS})).fetchone()
    return int(found[0]) if found else 0


async def link_of(pool: AsyncConnectionPool, key: str, user: str, team: str) -> str | None:
    """Where a notification of `user`'s (or their team's) leads; None if it is not theirs."""
    async with pool.connection() as conn:
        found = await (await conn.execute(LINK_OF, {"key": key, "user": user, "team": team})).fetchone()
    return None if found is None else str(found[0] or "")


def ago(at: datetime, now: datetime) -> str:
    """"just now", "5 min ago", "3 h ago", "2 days ago"."""
    seconds = max(0, int((now - at).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    days = seconds // 86400
    return f"{days} day{'s' if days != 1 else ''} ago"
