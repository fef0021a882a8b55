"""Job sharing read model (FR8.1.2): each job's visibility once decided (`job_sharing`; no row:
private) and every share link issued for it (`share_links`, by id: the token itself is never
stored). Whether a link still opens is decided on the aggregate, at once (web/share_links.py);
these rows list a job's links for its page and the API."""

from __future__ import annotations

from datetime import datetime
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import psycopg
from psycopg_pool import AsyncConnectionPool

from domain.aggregates.job_sharing import JobSharing as S
from projections.base import Projection, event_topics
from projections.pool import rows


class SharingProjection(Projection):
    name = "sharing"
    applications = ("pipeline",)
    tables = ("job_sharing", "share_links")
    topics = event_topics(S)
    subject = "events.JobSharing.>"

    def version_of(self, cur: psycopg.Cursor, originator_id: UUID) -> int:
        row = cur.execute("SELECT version FROM job_sharing WHERE id = %s FOR UPDATE", (originator_id,)).fetchone()
        return row[0] if row else 0

    @singledispatchmethod
    def apply(self, event: Any, cur: psycopg.Cursor) -> None:
        self._touch(cur, event)

    @apply.register
    def _created(self, event: S.Created, cur: psycopg.Cursor) -> None:
        cur.execute("INSERT INTO job_sharing (id, job_id, owner, visibility, changed_by, changed_at, version)"
                    " VALUES (%s, %s, %s, 'private', %s, %s, %s)",
                    (event.originator_id, event.job_id, event.owner, event.actor, event.at,
                     event.originator_version))

    @apply.register
    def _visibility(self, event: S.VisibilityChanged, cur: psycopg.Cursor) -> None:
        cur.execute("UPDATE job_sharing SET visibility = %s, changed_by = %s, changed_at = %s, version = %s"
                    " WHERE id = %s", (event.visibility, event.actor, event.at, event.originator_version,
                                       event.originator_id))

    @apply.register
    def _issued(self, event: S.LinkIssued, cur: psycopg.Cursor) -> None:
        cur.execute("INSERT INTO share_links (link_id, job_id, purpose, shared_by, issued_at, expires_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (event.link_id, event.job_id, event.purpose, event.actor, event.at, event.expires_at))
        self._touch(cur, event)

    @apply.register
    def _revoked(self, event: S.LinkRevoked, cur: psycopg.Cursor) -> None:
        cur.execute("UPDATE share_links SET revoked_at = %s, revoked_by = %s WHERE link_id = %s",
                    (event.at, event.actor, event.link_id))
        self._touch(cur, event)

    @apply.register
    def _all_revoked(self, event: S.AllLinksRevoked, cur: psycopg.Cursor) -> None:
        cur.execute("UPDATE share_links SET revoked_at = %s, revoked_by = %s WHERE job_id = %s AND revoked_at IS NULL",
                    (event.at, event.actor, event.job_id))
        self._touch(cur, event)

    @apply.register
    def _shared(self, event: S.Shared, cur: psycopg.Cursor) -> None:
        cur.execute("UPDATE job_sharing SET shares = shares + 1, version = %s WHERE id = %s",
                    (event.originator_version, event.originator_id))

    @staticmethod
    def _touch(cur: psycopg.Cursor, event: Any) -> None:
        cur.execute("UPDATE job_sharing SET version = %s WHERE id = %s",
                    (event.originator_version, event.originator_id))


async def job_links(pool: AsyncConnectionPool, job_id: UUID, now: datetime) -> list[dict[str, Any]]:
    """The job's share links, newest first, each with its state: active, expired or revoked."""
    found = await rows(pool, "SELECT link_id, purpose, shared_by, issued_at, expires_at, revoked_at, revoked_by"
                             " FROM share_links WHERE job_id = %s ORDER BY issued_at DESC, link_id", (job_id,))
    for link in found:
        link["state"] = "revoked" if link["revoked_at"] else "expired" if link["expires_at"] <= now else "active"
    return found


async def visibility_of(pool: AsyncConnectionPool, job_id: UUID) -> dict[str, Any] | None:
    found = await rows(pool, "SELECT visibility, changed_by, changed_at, shares FROM job_sharing WHERE job_id = %s",
                       (job_id,))
    return found[0] if found else None
