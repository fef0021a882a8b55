"""Evaluation-suite catalog read model (FR6.3.1, FR6.3.2): `probe_suites`, one row per registered
suite; what the suites page, the new-job form and the Quality tab list."""

from __future__ import annotations

from collections.abc import Sequence
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import psycopg
from psycopg_pool import AsyncConnectionPool

from domain.aggregates.probe_suite import ProbeSuite
from projections.base import Projection, event_topics
from projections.json import jsonb
from projections.pool import rows

COLUMNS = "id, name, kind, file, questions, categories, registered_by, registered_at"


class SuitesProjection(Projection):
    name = "suites"
    applications = ("pipeline",)
    tables = ("probe_suites",)
    topics = event_topics(ProbeSuite)
    subject = "events.ProbeSuite.>"

    def version_of(self, cur: psycopg.Cursor, originator_id: UUID) -> int:
        row = cur.execute("SELECT version FROM probe_suites WHERE id = %s FOR UPDATE", (originator_id,)).fetchone()
        return row[0] if row else 0

    @singledispatchmethod
    def apply(self, event: Any, cur: psycopg.Cursor) -> None:
        cur.execute("UPDATE probe_suites SET version = %s WHERE id = %s", (event.originator_version,
                                                                          event.originator_id))

    @apply.register
    def _registered(self, event: ProbeSuite.Created, cur: psycopg.Cursor) -> None:
        cur.execute(
            "INSERT INTO probe_suites (id, name, kind, file, questions, categories, registered_by, registered_at,"
            " version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (event.originator_id, event.name, event.kind, jsonb(event.file.as_dict()), event.questions,
             jsonb(event.categories), event.registered_by, event.at, event.originator_version))


async def list_suites(pool: AsyncConnectionPool, kind: str | None = None) -> list[dict[str, Any]]:
    """The shipped knowledge suite first, then clients' probes, newest first."""
    where = "WHERE kind = %s" if kind else ""
    return await rows(pool, f"SELECT {COLUMNS} FROM probe_suites {where}"  # noqa: S608 - fixed fragments
                            " ORDER BY kind = 'probes', registered_at DESC, id", (kind,) if kind else ())


async def suites_named(pool: AsyncConnectionPool, ids: Sequence[UUID]) -> list[dict[str, Any]]:
    if not ids:
        return []
    return await rows(pool, f"SELECT {COLUMNS} FROM probe_suites WHERE id = ANY(%s)", (list(ids),))  # noqa: S608
