"""The delivery ledger: one row per (event, channel, recipient), claimed before the send and
settled after it, so a redelivered event sends nothing again; in-app banners; used approval links."""

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


def add_banner(conn: psycopg.Connection, event_key: str, delivery: Delivery) -> None:
    """The in-app banner and its delivery row, in one transaction."""
    notice = delivery.notice
    with conn.transaction():
        conn.execute("INSERT INTO notification_banners (event_key, team, kind, message, link)"
                     " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (event_key) DO NOTHING",
                     (event_key, delivery.target, notice.kind, notice.headline, notice.link[1] if notice.link else ""))
        settle(conn, event_key, delivery, "sent")


def deliveries(conn: psycopg.Connection, failed_only: bool = False, limit: int = 100) -> list[dict[str, Any]]:
    """Newest first; `failed_only`: those given up on and those still being retried."""
    where = " WHERE status = 'failed' OR (status = 'pending' AND error IS NOT NULL)" if failed_only else ""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(f"SELECT {DELIVERY_COLUMNS} FROM notification_deliveries{where}"
                           " ORDER BY created_at DESC, event_key, channel, recipient LIMIT %s", (limit,)).fetchall()


def banners(conn: psycopg.Connection, team: str) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT kind, message, link, created_at FROM notification_banners"
                           " WHERE team = %s AND dismissed_at IS NULL ORDER BY created_at DESC", (team,)).fetchall()


def token_used(conn: psycopg.Connection, digest: str) -> bool:
    return conn.execute("SELECT 1 FROM approval_tokens_used WHERE token_sha256 = %s", (digest,)).fetchone() is not None


def use_token(conn: psycopg.Connection, digest: str, request_id: UUID, decision: str) -> None:
    conn.execute("INSERT INTO approval_tokens_used (token_sha256, request_id, decision) VALUES (%s, %s, %s)"
                 " ON CONFLICT (token_sha256) DO NOTHING", (digest, request_id, decision))
