"""Training-file catalog read model (FR1.1.1): files, their statistics, and how many active jobs use
them; `list_files` reads it on the web process's async pool."""

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import psycopg
from psycopg_pool import AsyncConnectionPool

from domain.aggregates.catalog_file import CatalogFile
from projections.base import Projection, event_topics
from projections.json import jsonb
from projections.pool import rows

FILE_COLUMNS = ("id, name, status, file, stats, problems, problem_count, conversation_count, pair_count,"
                " avg_quality, active_jobs, registered_by, registered_at, aliases")


class CatalogProjection(Projection):
    name = "catalog"
    applications = ("pipeline",)
    tables = ("training_files",)
    topics = event_topics(CatalogFile)
    subject = "events.CatalogFile.>"

    def version_of(self, cur: psycopg.Cursor, originator_id: UUID) -> int:
        row = cur.execute("SELECT version FROM training_files WHERE id = %s FOR UPDATE", (originator_id,)).fetchone()
        return row[0] if row else 0

    @singledispatchmethod
    def apply(self, event: Any, cur: psycopg.Cursor) -> None:
        cur.execute("UPDATE training_files SET version = %s WHERE id = %s",
                    (event.originator_version, event.originator_id))

    @apply.register
    def _created(self, event: CatalogFile.Created, cur: psycopg.Cursor) -> None:
        quality = (event.stats.get("quality") or {}).get("overall")
        cur.execute(
            "INSERT INTO training_files (id, name, status, file, stats, problems, problem_count,"
            " conversation_count, pair_count, avg_quality, registered_by, registered_at, version)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (event.originator_id, event.name, event.status, jsonb(event.file.as_dict()), jsonb(event.stats),
             jsonb(event.problems), event.problem_count, event.stats.get("conversation_count", 0),
             event.stats.get("training_pair_count", 0), quality, event.registered_by, event.at,
             event.originator_version),
        )

    @apply.register
    def _alias_added(self, event: CatalogFile.AliasAdded, cur: psycopg.Cursor) -> None:
        cur.execute("UPDATE training_files SET aliases = aliases || %s, version = %s WHERE id = %s",
                    (jsonb([event.name]), event.originator_version, event.originator_id))

    @apply.register
    def _claimed(self, event: CatalogFile.Claimed, cur: psycopg.Cursor) -> None:
        self._count(cur, event, +1)

    @apply.register
    def _released(self, event: CatalogFile.Released, cur: psycopg.Cursor) -> None:
        self._count(cur, event, -1)

    @staticmethod
    def _count(cur: psycopg.Cursor, event: Any, delta: int) -> None:
        cur.execute("UPDATE training_files SET active_jobs = active_jobs + %s, version = %s WHERE id = %s",
                    (delta, event.originator_version, event.originator_id))


async def list_files(pool: AsyncConnectionPool, eligible_only: bool = False) -> list[dict[str, Any]]:
    where = "WHERE status = 'active' AND conversation_count >= 50" if eligible_only else ""
    return await rows(pool, f"SELECT {FILE_COLUMNS} FROM training_files {where} ORDER BY registered_at DESC, id")
