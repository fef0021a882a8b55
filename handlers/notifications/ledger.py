"""The delivery ledger: one row per (event, channel, recipient), claimed before the send and
settled after it, so a redelivered event sends nothing again; in-app banners and the lines waiting
for a daily digest, each written with its delivery row; used approval links."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from handlers.notifications.routing import Delivery

# A new row starts 'pending' (attempt 1); a pending one is tried again (attempts + 1); a settled
# one (sent, skipped, failed) returns no row: nothing to do.
CLAIM = (
    "INSERT INTO notification_deliveries (event_key, channel, recipient, kind, subject, job_id, status)"
    " VALUES (%s, %s, %s, %s, %s, %s, 'pending') ON CONFLICT (event_key, channel, recipient) DO UPDATE"
    " SET attempts = notification_deliveries.attempts + 1, updated_at = now()"
    " WHERE notification_deliveries.status = 'pending' RETURNING attempts")
SETTLE = ("UPDATE notification_deliveries SET status = %s, error = %s, updated_at = now()"
          " WHERE event_key = %s AND channel = %s AND recipient = %s")
DELIVERY_COLUMNS = ("event_key, channel, recipient, kind, subject, job_id, status, attempts, error,"
                    " created_at, updated_at")


def claim(conn: psycopg.Connection, event_key: str, delivery: Delivery) -> bool:
    """Whether this delivery is still to be made (first time, or pending after a failure or a crash)."""
    notice = delivery.notice
    row = conn.execute(CLAIM, (event_key, delivery.channel, delivery.recipient, notice.kind, notice.subject[:500],
                               notice.job_id)).fetchone()
    return row is not None


def settle(conn: psycopg.Connection, event_key: str, delivery: Delivery, status: str, error: str | None = None) -> None:
    """`status` is sent, skipped or failed; or pending again with the error of a try to be retried."""
    conn.execute(SETTLE, (status, error[:2000] if error else None, event_key, delivery.channel, delivery.recipient))


def add_banner(conn: psycopg.Connection, event_key: str, delivery: Delivery, team: str, link: str) -> None:
    """The in-app banner and its delivery row, in one transaction. A user's banner about a job
    retires that user's earlier banners about the same job (the interruption once it resumed, the
    "no GPU" question once it was cancelled), whatever order the events arrive in."""
    notice = delivery.notice
    user = delivery.target if delivery.recipient.startswith("user:") else None
    version = int(event_key.rpartition(":")[2]) if notice.job_id else None
    with conn.transaction():
        conn.execute(ADD_BANNER, (event_key, team, user, notice.kind, notice.level, notice.headline[:1000], link,
                                  notice.job_id, version))
        if user and notice.job_id:
            conn.execute(SUPERSEDE, {"job": notice.job_id, "user": user})
        settle(conn, event_key, delivery, "sent")


ADD_BANNER = (
    "INSERT INTO notification_banners (event_key, team, user_name, kind, level, message, link, job_id, event_version)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_key) DO NOTHING")
SUPERSEDE = (
    "UPDATE notification_banners b SET dismissed_at = now(), superseded_by = newest.event_key"
    " FROM (SELECT event_key, event_version FROM notification_banners WHERE job_id = %(job)s AND user_name = %(user)s"
    "       ORDER BY event_version DESC LIMIT 1) newest"
    " WHERE b.job_id = %(job)s AND b.user_name = %(user)s AND b.event_version < newest.event_version"
    " AND b.dismissed_at IS NULL")


def add_digest_line(conn: psycopg.Connection, event_key: str, delivery: Delivery) -> None:
    """A line of the user's next daily digest, and its delivery row ('sent': handed to the digest)."""
    notice = delivery.notice
    with conn.transaction():
        conn.execute(
            "INSERT INTO notification_digest_lines (event_key, user_name, kind, headline, link, job_id, occurred_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, coalesce(%s, now())) ON CONFLICT (event_key, user_name) DO NOTHING",
            (event_key, delivery.target, notice.kind, notice.headline[:1000], notice.link[1] if notice.link else "",
             notice.job_id, notice.at))
        settle(conn, event_key, delivery, "sent")


def deliveries(conn: psycopg.Connection, failed_only: bool = False, limit: int = 100) -> list[dict[str, Any]]:
    """Newest first; `failed_only`: those given up on and those still being retried."""
    where = " WHERE status = 'failed' OR (status = 'pending' AND error IS NOT NULL)" if failed_only else ""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"SELECT {DELIVERY_COLUMNS} FROM notification_deliveries{where}"
                           " ORDER BY created_at DESC, event_key, channel, recipient LIMIT %s", (limit,)).fetchall()


def token_used(conn: psycopg.Connection, digest: str) -> bool:
    return conn.execute("SELECT 1 FROM approval_tokens_used WHERE token_sha256 = %s", (digest,)).fetchone() is not None


def use_token(conn: psycopg.Connection, digest: str, request_id: UUID, decision: str) -> None:
    conn.execute("INSERT INTO approval_tokens_used (token_sha256, request_id, decision) VALUES (%s, %s, %s)"
                 " ON CONFLICT (token_sha256) DO NOTHING", (digest, request_id, decision))
