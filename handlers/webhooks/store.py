"""The webhook tables (migration 0022): endpoints with their sealed secrets, the outbox of deliveries
and the attempts log; every rule about them (what a URL and a choice of events must be, who sees
what) and all their SQL. Synchronous psycopg, as the notifier and the CLI use it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import psycopg
from psycopg.rows import dict_row

from handlers.webhooks.events import TYPES, WebhookEvent
from handlers.webhooks.signing import new_secret
from infra.secretbox import SecretBox

URL_MAX = 2000
DESCRIPTION_MAX = 500
ENDPOINTS_MAX = 50
ROTATION_OVERLAP = timedelta(hours=24)  # a rotated-out secret still signs for a day (receivers switch over)
ENDPOINT_COLUMNS = "id, url, description, events, created_by, created_at, rotated_at"


class InvalidWebhookError(ValueError):
    """An endpoint that cannot be registered as asked; the message names the field."""


class WebhookNotFoundError(LookupError):
    """No such endpoint or delivery in this team (or the endpoint was deleted)."""


@dataclass(frozen=True)
class Due:
    """A pending delivery whose time has come, with what signing and sending it needs."""

    id: int
    endpoint_id: UUID
    url: str
    event_id: str
    event_type: str
    body: str
    attempts: int
    redeliver_by: str | None
    secret_sealed: str
    previous_sealed: str | None


def check_endpoint(url: str, events: Sequence[str], description: str) -> tuple[str, list[str], str]:
    """The cleaned URL, events (in the catalogue's order, each once) and description; else the reason."""
    url = url.strip()
    parts = urlsplit(url)
    if len(url) > URL_MAX:
        raise InvalidWebhookError(f"url: at most {URL_MAX} characters (got {len(url)})")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidWebhookError("url: an http:// or https:// address with a host, e.g."
                                  " https://hooks.example.com/lora-pipeline")
    unknown = [e for e in events if e not in TYPES]
    if unknown:
        raise InvalidWebhookError(f"events: unknown event type {unknown[0]!r}; known: {', '.join(TYPES)}")
    if not events:
        raise InvalidWebhookError("events: choose at least one event")
    description = description.strip()
    if len(description) > DESCRIPTION_MAX:
        raise InvalidWebhookError(f"description: at most {DESCRIPTION_MAX} characters (got {len(description)})")
    return url, [e for e in TYPES if e in events], description


# --- endpoints -------------------------------------------------------------------------------------

def create_endpoint(conn: psycopg.Connection, box: SecretBox, *, team: str, url: str, events: Sequence[str],
                    description: str, actor: str) -> tuple[dict[str, Any], str]:
    """Registers an endpoint; returns it and its secret (the only time the secret is given out)."""
    url, events, description = check_endpoint(url, events, description)
    count = conn.execute("SELECT count(*) FROM webhook_endpoints WHERE team = %s AND deleted_at IS NULL",
                         (team,)).fetchone()
    if count and count[0] >= ENDPOINTS_MAX:
        raise InvalidWebhookError(f"a team has at most {ENDPOINTS_MAX} endpoints: delete one first")
    endpoint_id, secret = uuid4(), new_secret()
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "INSERT INTO webhook_endpoints (id, team, url, description, events, secret_sealed, created_by)"
            f" VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {ENDPOINT_COLUMNS}",
            (endpoint_id, team, url, description, events, box.seal(secret, str(endpoint_id)), actor)).fetchone()
    assert row is not None
    return row, secret


def endpoints(conn: psycopg.Connection, team: str) -> list[dict[str, Any]]:
    """The team's endpoints, oldest first, with how their deliveries stand (never a secret)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {', '.join('e.' + c.strip() for c in ENDPOINT_COLUMNS.split(','))},"
            " count(d.id) FILTER (WHERE d.status = 'delivered') AS delivered,"
            " count(d.id) FILTER (WHERE d.status = 'pending') AS pending,"
            " count(d.id) FILTER (WHERE d.status = 'failed') AS failed"
            " FROM webhook_endpoints e LEFT JOIN webhook_deliveries d ON d.endpoint_id = e.id"
            " WHERE e.team = %s AND e.deleted_at IS NULL GROUP BY e.id ORDER BY e.created_at, e.id",
            (team,)).fetchall()


def endpoint(conn: psycopg.Connection, team: str, endpoint_id: UUID) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints"
                          " WHERE id = %s AND team = %s AND deleted_at IS NULL", (endpoint_id, team)).fetchone()
    if row is None:
        raise WebhookNotFoundError(f"There is no webhook endpoint {endpoint_id}")
    return row


def delete_endpoint(conn: psycopg.Connection, team: str, endpoint_id: UUID) -> None:
    """The endpoint gets nothing more: its pending deliveries are given up; the log stays."""
    with conn.transaction():
        endpoint(conn, team, endpoint_id)
        conn.execute("UPDATE webhook_endpoints SET deleted_at = now(), previous_sealed = NULL WHERE id = %s",
                     (endpoint_id,))
        conn.execute("UPDATE webhook_deliveries SET status = 'failed', last_error = 'endpoint deleted',"
                     " next_attempt_at = NULL, updated_at = now() WHERE endpoint_id = %s AND status = 'pending'",
                     (endpoint_id,))


def rotate_secret(conn: psycopg.Connection, box: SecretBox, team: str, endpoint_id: UUID, now: datetime) -> str:
    """A new secret (returned, shown once); the old one still signs alongside it for ROTATION_OVERLAP."""
    with conn.transaction():
        row = conn.execute("SELECT secret_sealed FROM webhook_endpoints WHERE id = %s AND team = %s"
                           " AND deleted_at IS NULL FOR UPDATE", (endpoint_id, team)).fetchone()
        if row is None:
            raise WebhookNotFoundError(f"There is no webhook endpoint {endpoint_id}")
        secret = new_secret()
        conn.execute("UPDATE webhook_endpoints SET secret_sealed = %s, previous_sealed = %s, previous_until = %s,"
                     " rotated_at = %s WHERE id = %s",
                     (box.seal(secret, str(endpoint_id)), row[0], now + ROTATION_OVERLAP, now, endpoint_id))
    return secret


# --- the outbox ------------------------------------------------------------------------------------

def enqueue(conn: psycopg.Connection, team: str, event_key: str, event: WebhookEvent) -> int:
    """One delivery per endpoint of the team that subscribes to the event's type, due now; an event
    taken in again (redelivered by the bus) adds nothing. Returns how many were added."""
    added = conn.execute(
        "INSERT INTO webhook_deliveries (endpoint_id, event_key, event_id, event_type, job_id, body, status,"
        " next_attempt_at) SELECT id, %s, %s, %s, %s, %s, 'pending', now() FROM webhook_endpoints"
        " WHERE team = %s AND deleted_at IS NULL AND %s = ANY(events)"
        " ON CONFLICT (endpoint_id, event_key) DO NOTHING",
        (event_key, event.id, event.type, event.job_id, event.body().decode(), team, event.type))
    return added.rowcount


DUE = (
    "SELECT d.id, d.endpoint_id, e.url, d.event_id, d.event_type, d.body, d.attempts, d.redeliver_by,"
    " e.secret_sealed, CASE WHEN e.previous_until > %(now)s THEN e.previous_sealed END AS previous_sealed"
    " FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id"
    " WHERE d.status = 'pending' AND d.next_attempt_at <= %(now)s AND e.deleted_at IS NULL"
    " ORDER BY d.next_attempt_at, d.id LIMIT %(limit)s")


def due(conn: psycopg.Connection, now: datetime, limit: int) -> list[Due]:
    return [Due(*row) for row in conn.execute(DUE, {"now": now, "limit": limit})]


def record_attempt(conn: psycopg.Connection, item: Due, *, at: datetime, duration_ms: int, status_code: int | None,
                   error: str | None, outcome: str, next_attempt_at: datetime | None) -> bool:
    """The attempt in the log and the delivery's new state, in one transaction; only if the delivery
    is still as it was read (a concurrent redelivery or deletion wins). Returns whether it was recorded."""
    with conn.transaction():
        updated = conn.execute(
            "UPDATE webhook_deliveries SET status = %s, attempts = attempts + 1, next_attempt_at = %s,"
            " last_error = %s, redeliver_by = NULL, updated_at = now(),"
            " delivered_at = CASE WHEN %s = 'delivered' THEN %s ELSE delivered_at END"
            " WHERE id = %s AND status = 'pending' AND attempts = %s",
            (outcome, next_attempt_at, error, outcome, at, item.id, item.attempts))
        if updated.rowcount != 1:
            return False
        conn.execute("INSERT INTO webhook_attempts (delivery_id, number, at, duration_ms, status_code, error,"
                     " requested_by) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                     (item.id, item.attempts + 1, at, duration_ms, status_code, error, item.redeliver_by))
    return True


def redeliver(conn: psycopg.Connection, team: str, delivery_id: int, actor: str) -> dict[str, Any]:
    """A delivery sent again by hand (delivered, failed or still pending: it goes now), same id and body."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "UPDATE webhook_deliveries d SET status = 'pending', next_attempt_at = now(), redeliver_by = %s,"
            " updated_at = now() FROM webhook_endpoints e WHERE d.id = %s AND e.id = d.endpoint_id"
            " AND e.team = %s AND e.deleted_at IS NULL RETURNING d.id, d.event_id, d.event_type, d.status",
            (actor, delivery_id, team)).fetchone()
    if row is None:
        raise WebhookNotFoundError(f"There is no delivery {delivery_id} to an endpoint of this team")
    return row


# --- the delivery log ------------------------------------------------------------------------------

DELIVERY_COLUMNS = ("d.id, d.endpoint_id, e.url, d.event_id, d.event_type, d.job_id, d.status, d.attempts,"
                    " d.next_attempt_at, d.last_error, d.delivered_at, d.created_at")


def deliveries(conn: psycopg.Connection, team: str, endpoint_id: UUID | None = None,
               limit: int = 50) -> list[dict[str, Any]]:
    """Newest first, each with its attempts (oldest first)."""
    where = " AND d.endpoint_id = %(endpoint)s" if endpoint_id else ""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id"
            f" WHERE e.team = %(team)s{where} ORDER BY d.created_at DESC, d.id DESC LIMIT %(limit)s",
            {"team": team, "endpoint": endpoint_id, "limit": limit}).fetchall()
        attempts = cur.execute(
            "SELECT delivery_id, number, at, duration_ms, status_code, error, requested_by FROM webhook_attempts"
            " WHERE delivery_id = ANY(%s) ORDER BY delivery_id, number", ([r["id"] for r in rows],)).fetchall()
    by_delivery: dict[int, list[dict[str, Any]]] = {}
    for attempt in attempts:
        by_delivery.setdefault(attempt.pop("delivery_id"), []).append(attempt)
    return [row | {"log": by_delivery.get(row["id"], [])} for row in rows]
