"""Jobs list read model: one row per training job."""

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from domain.aggregates.training_job import JobStatus, TrainingJob
from projections.base import Projection


class JobsProjection(Projection):
    name = "jobs"
    applications = ("trainingjobs",)
    tables = ("jobs",)

    def version_of(self, cur: psycopg.Cursor, originator_id: UUID) -> int:
        row = cur.execute("SELECT version FROM jobs WHERE id = %s FOR UPDATE", (originator_id,)).fetchone()
        return row[0] if row else 0

    @singledispatchmethod
    def apply(self, event: Any, cur: psycopg.Cursor) -> None:
        """Events this read model does not show only advance the version."""
        cur.execute("UPDATE jobs SET version = %s WHERE id = %s",
                    (event.originator_version, event.originator_id))

    @apply.register
    def _created(self, event: TrainingJob.Created, cur: psycopg.Cursor) -> None:
        cur.execute(
            "INSERT INTO jobs (id, name, status, training_file, created_by, created_at,"
            " updated_at, version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (event.originator_id, event.name, JobStatus.PENDING_CONFIGURATION.value,
             Jsonb(event.training_file.as_dict()), event.created_by, event.at, event.at,
             event.originator_version),
        )

    @apply.register
    def _queued(self, event: TrainingJob.Queued, cur: psycopg.Cursor) -> None:
        self._set_status(cur, event, JobStatus.QUEUED)

    @staticmethod
    def _set_status(cur: psycopg.Cursor, event: Any, status: JobStatus) -> None:
        cur.execute(
            "UPDATE jobs SET status = %s, updated_at = %s, version = %s WHERE id = %s",
            (status.value, event.at, event.originator_version, event.originator_id),
        )


PROJECTIONS: dict[str, Projection] = {p.name: p for p in (JobsProjection(),)}
