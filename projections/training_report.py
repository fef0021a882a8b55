"""What the training report (FR4.2.2) reads from the read models: a job's metric history, its
checkpoints, its events counted by category, its notable events and when it completed, on one
connection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

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
class ReportRows:
    metrics: list[dict[str, Any]]  # by step
    checkpoints: list[dict[str, Any]]
    event_counts: dict[str, int]  # by category
    notable: list[dict[str, Any]]  # the first NOTABLE_MOST warnings and errors
    completed_at: datetime | None


def report_rows(conn: psycopg.Connection, job_id: UUID) -> ReportRows:
    with conn.cursor(row_factory=dict_row) as cur:
        metrics = cur.execute(METRICS, (job_id,)).fetchall()
        checkpoints = cur.execute(CHECKPOINTS, (job_id,)).fetchall()
        counts = {row["category"]: row["n"] for row in cur.execute(COUNTS, (job_id,)).fetchall()}
        notable = cur.execute(NOTABLE, (job_id, NOTABLE_MOST)).fetchall()
        completed = cur.execute(COMPLETED, (job_id,)).fetchone()
    return ReportRows(metrics, checkpoints, counts, notable, completed["at"] if completed else None)
