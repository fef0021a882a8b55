"""What the training report (FR4.2.2) is made from: the job as its events made it (the event store,
the system of record), its metric history, checkpoints and notable events (read models:
projections/training_report.py), read in one thread with one connection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from domain.aggregates.training_job import TrainingJob
from domain.applications import Pipeline
from projections.training_report import report_rows
from web.report_facts import MetricRow


@dataclass(frozen=True)
class ReportData:
    job: TrainingJob
    team: str
    time_zone: str
    generated_at: datetime
    rows: list[MetricRow]
    checkpoints: list[dict[str, Any]]
    event_counts: dict[str, int]
    notable: list[dict[str, Any]]
    completed_at: datetime | None

    @property
    def started_at(self) -> datetime | None:
        """When its first pod started."""
        starts = [pod.started_at for pod in self.job.pods.values()]
        return min(starts) if starts else None


def read_report(app: Pipeline, conninfo: str, job_id: UUID, team: str, time_zone: str,
                now: datetime) -> ReportData:
    """Raises JobNotFoundError for an unknown job."""
    job = app.get_job(job_id)
    with psycopg.connect(conninfo) as conn:
        found = report_rows(conn, job_id)
    return ReportData(job, team, time_zone, now, [MetricRow(**row) for row in found.metrics], found.checkpoints,
                      found.event_counts, found.notable, found.completed_at)
