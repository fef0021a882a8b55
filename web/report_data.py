"""What the training report (FR4.2.2) is made from: the job as its events made it (the event store,
the system of record), its metric history, checkpoints and notable events (read models), read
in one thread with one connection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from domain.aggregates.training_job import TrainingJob
from domain.applications import Pipeline
from web.report_facts import MetricRow

METRICS = ("SELECT step, epoch, loss, eval_loss, learning_rate, perplexity, gpu_util, tokens_per_s FROM job_metrics"
           " WHERE job_id = %s ORDER BY step")
CHECKPOINTS = ("SELECT at, message FROM event_log WHERE job_id = %s AND topic = 'TrainingJob.CheckpointSaved'"
               " ORDER BY notification_id")
COUNTS = "SELECT category, count(*) AS n FROM event_log WHERE job_id = %s GROUP BY category"
NOTABLE = ("SELECT at, category, message FROM event_log WHERE job_id = %s AND category IN ('warning', 'error')"
           " ORDER BY notification_id LIMIT %s")
COMPLETED = ("SELECT at FROM event_log WHERE job_id = %s AND topic = 'TrainingJob.Completed'"
             " ORDER BY notification_id DESC LIMIT 1")
NOTABLE_MOST = 25


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
    with psycopg.connect(conninfo) as conn, conn.cursor(row_factory=dict_row) as cur:
        rows = [MetricRow(**row) for row in cur.execute(METRICS, (job_id,)).fetchall()]
        checkpoints = cur.execute(CHECKPOINTS, (job_id,)).fetchall()
        counts = {row["category"]: row["n"] for row in cur.execute(COUNTS, (job_id,)).fetchall()}
        notable = cur.execute(NOTABLE, (job_id, NOTABLE_MOST)).fetchall()
        completed = cur.execute(COMPLETED, (job_id,)).fetchone()
    return ReportData(job, team, time_zone, now, rows, checkpoints, counts, notable,
                      completed["at"] if completed else None)
