"""Jobs list read model: one row per training job, its name and status."""

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import psycopg

from domain.aggregates.training_job import TrainingJob
from domain.job_status import JobStatus
from projections.base import Projection, event_topics
from projections.json import jsonb

J = TrainingJob
# Events that move the job to a fixed status; StageChanged carries its own.
STATUS_OF = {
    J.ProvisioningFailed: JobStatus.QUEUED_WAITING_FOR_GPU,
    J.Interrupted: JobStatus.INTERRUPTED, J.RecoveryStarted: JobStatus.RECOVERING,
    J.Completed: JobStatus.COMPLETED, J.Failed: JobStatus.FAILED, J.Cancelled: JobStatus.CANCELLED,
}


class JobsProjection(Projection):
    name = "jobs"
    applications = ("pipeline",)
    tables = ("jobs",)
    topics = event_topics(TrainingJob)
    subject = "events.TrainingJob.>"

    def version_of(self, cur: psycopg.Cursor, originator_id: UUID) -> int:
        row = cur.execute("SELECT version FROM jobs WHERE id = %s FOR UPDATE", (originator_id,)).fetchone()
        return row[0] if row else 0

    @singledispatchmethod
    def apply(self, event: Any, cur: psycopg.Cursor) -> None:
        status = STATUS_OF.get(type(event))
        if status is None:  # events this read model does not show only advance the version
            cur.execute("UPDATE jobs SET version = %s WHERE id = %s", (event.originator_version, event.originator_id))
        else:
            self._set(cur, event, "status", status.value)

    @apply.register
    def _created(self, event: TrainingJob.Created, cur: psycopg.Cursor) -> None:
        cur.execute(
            "INSERT INTO jobs (id, name, status, training_file, created_by, created_at,"
            " updated_at, version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (event.originator_id, event.name, JobStatus.PENDING_CONFIGURATION.value,
             jsonb(event.training_file.as_dict()), event.created_by, event.at, event.at,
             event.originator_version),
        )

    @apply.register
    def _configured(self, event: TrainingJob.Configured, cur: psycopg.Cursor) -> None:
        cur.execute(
            "UPDATE jobs SET status = %s, preset = %s, gpu_tier = %s, estimated_cost_min = %s,"
            " estimated_cost_max = %s, updated_at = %s, version = %s WHERE id = %s",
            (JobStatus.CONFIGURED.value, event.preset, event.gpu_tier, event.estimated_cost_min,
             event.estimated_cost_max, event.at, event.originator_version, event.originator_id),
        )

    @apply.register
    def _queued(self, event: TrainingJob.Queued, cur: psycopg.Cursor) -> None:
        cur.execute("UPDATE jobs SET status = %s, queued_at = %s, updated_at = %s, version = %s WHERE id = %s",
                    (JobStatus.QUEUED.value, event.at, event.at, event.originator_version, event.originator_id))

    @apply.register
    def _provisioning(self, event: TrainingJob.ProvisioningStarted, cur: psycopg.Cursor) -> None:
        cur.execute("UPDATE jobs SET status = %s, gpu_tier = %s, updated_at = %s, version = %s WHERE id = %s",
                    (JobStatus.PROVISIONING.value, event.gpu_tier, event.at, event.originator_version,
                     event.originator_id))

    @apply.register
    def _stage_changed(self, event: TrainingJob.StageChanged, cur: psycopg.Cursor) -> None:
        self._set(cur, event, "status", event.stage)

    @apply.register
    def _renamed(self, event: TrainingJob.Renamed, cur: psycopg.Cursor) -> None:
        self._set(cur, event, "name", event.name)

    @apply.register
    def _promoted(self, event: TrainingJob.Promoted, cur: psycopg.Cursor) -> None:
        cur.execute("UPDATE jobs SET promoted_at = %s, updated_at = %s, version = %s WHERE id = %s",
                    (event.at, event.at, event.originator_version, event.originator_id))

    @apply.register
    def _gpu_tier_changed(self, event: TrainingJob.GpuTierChanged, cur: psycopg.Cursor) -> None:
        cur.execute("UPDATE jobs SET gpu_tier = %s, estimated_cost_min = %s, estimated_cost_max = %s,"
                    " awaiting_gpu_decision = false, updated_at = %s, version = %s WHERE id = %s",
                    (event.gpu_tier, event.estimated_cost_min, event.estimated_cost_max, event.at,
                     event.originator_version, event.originator_id))

    @apply.register
    def _provisioning_timed_out(self, event: TrainingJob.ProvisioningTimedOut, cur: psycopg.Cursor) -> None:
        cur.execute("UPDATE jobs SET awaiting_gpu_decision = true, updated_at = %s, version = %s WHERE id = %s",
                    (event.at, event.originator_version, event.originator_id))

    @staticmethod
    def _set(cur: psycopg.Cursor, event: Any, column: str, value: str) -> None:
        cur.execute(
            f"UPDATE jobs SET {column} = %s, updated_at = %s, version = %s WHERE id = %s",  # noqa: S608 - fixed names
            (value, event.at, event.originator_version, event.originator_id),
        )
