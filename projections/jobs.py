"""Jobs read model (FR2.3.1, FR2.1.1, FR2.1.2): one `jobs` row per training job with everything the
list filters, sorts and searches on, and the job's stage timeline (`job_stages`) and interruptions
(`job_interruptions`). The state is folded from the events by projections/job_state.py; this
module loads and stores it, once per job and batch."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from domain.aggregates.training_job import TrainingJob
from domain.job_status import ACTIVE
from projections.base import Item, Projection, Rebuilder, Rows, event_topics
from projections.job_state import STATUS_OF, Interruption, JobState, Stage, apply
from projections.json import jsonb, pod_as_json, pod_from_json

__all__ = ["STATUS_OF", "JobsProjection", "active_jobs", "queued_jobs"]

# FR2.3.2: promoted jobs first (the latest promotion first), then first come, first served.
QUEUE_ORDER = "promoted_at DESC NULLS LAST, queued_at, id"


def queued_jobs(columns: str = "id") -> str:
    """The queued jobs' `columns` in the order they will get a GPU."""
    return f"SELECT {columns} FROM jobs WHERE status = 'queued' ORDER BY {QUEUE_ORDER}"


def active_jobs() -> tuple[str, tuple[list[str]]]:
    """The jobs holding (or getting) a GPU: the query and its parameters."""
    return "SELECT id FROM jobs WHERE status = ANY(%s)", ([status.value for status in ACTIVE],)

# Quality validation (FR6.1, FR6.3; projections/job_quality.py), migration 0020.
QUALITY_COLUMNS = ("quality_outcome", "quality_overridden", "perplexity_baseline", "perplexity_trained",
                   "perplexity_improvement", "retention_percent", "evaluation", "evaluation_failure",
                   "evaluation_progress", "delivery_override", "suites", "evaluates", "ei_improvement",
                   "ei_regressions", "brand_alignment", "judging_status", "judging_cost")
QUALITY_JSON = ("evaluation", "evaluation_progress", "delivery_override", "suites")
STAGE_COLUMNS = ("attempt", "stage", "started_at", "ended_at", "outcome", "estimated_seconds")
INTERRUPTION_COLUMNS = ("number", "attempt", "step", "reason", "at", "recovery_started_at", "recovery_attempt",
                        "checkpoint_step", "resumed_at", "downtime_seconds")
ROW_COLUMNS = (
    "id", "name", "status", "training_file", "created_by", "created_at", "updated_at", "version", "preset",
    "gpu_tier", "estimated_cost_min", "estimated_cost_max", "queued_at", "promoted_at", "awaiting_gpu_decision",
    "file_name", "description", "tags", "client", "project", "notes", "retry_of", "retry_number", "resumed_from",
    "gpu_type", "hourly_rate", "estimated_duration_hours", "attempt", "current_pod", "pods", "cost", "cost_as_of",
    "running_rate", "started_at", "ended_at", "step", "total_steps", "epoch", "loss", "validation_loss",
    "final_loss", "checkpoint_step", "interruptions", "downtime_seconds", "failure_type", "failure_message",
    "cancellation", "labels", "suffix", "base_model", "validation_file", *QUALITY_COLUMNS)
JSON_COLUMNS = {"training_file", "tags", "notes", "pods", "cancellation", "labels", "validation_file", *QUALITY_JSON}
# Name first, then description and tags, then notes: a match in the name ranks highest. The `simple`
# configuration (no stemming, no stop words) makes every typed word prefix match (`experim` finds
# "experiment", which English stemming stores as `experi`).
SEARCH = ("setweight(to_tsvector('simple', %(name)s), 'A') || setweight(to_tsvector('simple', %(description)s),"
          " 'B') || setweight(to_tsvector('simple', %(tag_text)s), 'B')"
          " || setweight(to_tsvector('simple', %(note_text)s), 'C')")


def _upsert(table: str, columns: Sequence[str], values: Sequence[str], key: int) -> str:
    """INSERT … ON CONFLICT on the first `key` columns, updating the others."""
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[key:])
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(values)})"
            f" ON CONFLICT ({', '.join(columns[:key])}) DO UPDATE SET {updates}")


# The search vector is redone only when the text changed (Created, Renamed, MetadataUpdated, NoteAdded).
UPSERT = {True: _upsert("jobs", [*ROW_COLUMNS, "search"], [*(f"%({c})s" for c in ROW_COLUMNS), SEARCH], 1),
          False: _upsert("jobs", ROW_COLUMNS, [f"%({c})s" for c in ROW_COLUMNS], 1)}
UPSERT_STAGE = _upsert("job_stages", ["job_id", *STAGE_COLUMNS], ["%s"] * (len(STAGE_COLUMNS) + 1), 3)
UPSERT_INTERRUPTION = _upsert("job_interruptions", ["job_id", *INTERRUPTION_COLUMNS],
                              ["%s"] * (len(INTERRUPTION_COLUMNS) + 1), 2)


class JobsProjection(Projection):
    """Writes each job once per batch: its row, and the stages and interruptions that changed."""

    name = "jobs"
    applications = ("pipeline",)
    tables = ("jobs", "job_stages", "job_interruptions")
    topics = event_topics(TrainingJob)
    subject = "events.TrainingJob.>"

    def version_of(self, cur: psycopg.Cursor, originator_id: UUID) -> int:
        return self.versions_of(cur, [originator_id])[originator_id]

    def versions_of(self, cur: psycopg.Cursor, originator_ids: Sequence[UUID]) -> dict[UUID, int]:
        found = dict(cur.execute("SELECT id, version FROM jobs WHERE id = ANY(%s) FOR UPDATE",
                                 (list(originator_ids),)).fetchall())
        return {job_id: found.get(job_id, 0) for job_id in originator_ids}

    def write(self, event: Any, cur: psycopg.Cursor, notification_id: int) -> None:
        self.write_batch(cur, [(notification_id, event)])

    def write_batch(self, cur: psycopg.Cursor, items: Sequence[Item]) -> None:
        """Loads the batch's jobs, folds their events in order, and writes each job once."""
        jobs = load(cur.connection, [event.originator_id for _, event in items
                                     if not isinstance(event, TrainingJob.Created)])
        fold_into(jobs, items)
        save(cur, jobs.values())

    def rebuilder(self) -> JobsRebuilder:
        return JobsRebuilder()


def fold_into(jobs: dict[UUID, JobState], items: Sequence[Item]) -> None:
    """Folds each event into its job's state (a Created event makes it)."""
    for _, event in items:
        if isinstance(event, TrainingJob.Created):
            jobs[event.originator_id] = JobState.created(event)
        apply(event, jobs[event.originator_id])


@dataclass
class JobsRebuilder(Rebuilder):
    """Folds every job's whole history in memory and hands each job over once, at the end."""

    jobs: dict[UUID, JobState] = field(default_factory=dict)

    def feed(self, items: Sequence[Item]) -> None:
        fold_into(self.jobs, items)

    def take(self, final: bool) -> list[Rows]:
        return [SavedJobs(list(self.jobs.values()))] if final and self.jobs else []


@dataclass
class SavedJobs(Rows):
    jobs: list[JobState]

    def write(self, cur: psycopg.Cursor) -> None:
        save(cur, self.jobs)


def load(conn: psycopg.Connection, job_ids: Sequence[UUID]) -> dict[UUID, JobState]:
    """The jobs' states with their stages and interruptions (three queries, whatever the count)."""
    if not job_ids:
        return {}
    ids = list(dict.fromkeys(job_ids))
    with conn.cursor(row_factory=dict_row) as cur:
        jobs = {row["id"]: _state(row) for row in cur.execute(
            f"SELECT {', '.join(ROW_COLUMNS)} FROM jobs WHERE id = ANY(%s)", (ids,))}  # noqa: S608 - fixed names
        for row in cur.execute(f"SELECT job_id, {', '.join(STAGE_COLUMNS)} FROM job_stages"  # noqa: S608
                               " WHERE job_id = ANY(%s)", (ids,)):
            stage = Stage(**{c: row[c] for c in STAGE_COLUMNS})
            jobs[row["job_id"]].stages[(stage.attempt, stage.stage)] = stage
        for row in cur.execute(f"SELECT job_id, {', '.join(INTERRUPTION_COLUMNS)} FROM job_interruptions"  # noqa: S608
                               " WHERE job_id = ANY(%s)", (ids,)):
            interruption = Interruption(**{c: row[c] for c in INTERRUPTION_COLUMNS})
            jobs[row["job_id"]].interrupted[interruption.number] = interruption
    return jobs


def _state(row: dict[str, Any]) -> JobState:
    return JobState(**row | {"pods": {p["pod_id"]: pod_from_json(p) for p in row["pods"]}})


def save(cur: psycopg.Cursor, jobs: Iterable[JobState]) -> None:
    """Writes each job's row, and the stages and interruptions its events changed (pipelined)."""
    with cur.connection.pipeline():
        for job in jobs:
            _save(cur, job)


def _save(cur: psycopg.Cursor, job: JobState) -> None:
    cur.execute(UPSERT[job.text_changed], _row(job))
    for kind, key in sorted(job.changed, key=str):
        if kind == "stage":
            stage = job.stages[key]
            cur.execute(UPSERT_STAGE, (job.id, *(getattr(stage, c) for c in STAGE_COLUMNS)))
        else:
            interruption = job.interrupted[key]
            cur.execute(UPSERT_INTERRUPTION, (job.id, *(getattr(interruption, c) for c in INTERRUPTION_COLUMNS)))
    job.changed.clear()
    job.text_changed = False


def _row(job: JobState) -> dict[str, Any]:
    row = {c: getattr(job, c) for c in ROW_COLUMNS if c not in JSON_COLUMNS}
    row |= {"training_file": jsonb(job.training_file), "tags": jsonb(job.tags), "notes": jsonb(job.notes),
            "pods": jsonb([pod_as_json(p) for p in job.pods.values()]),
            "cancellation": None if job.cancellation is None else jsonb(job.cancellation), "labels": jsonb(job.labels),
            "validation_file": None if job.validation_file is None else jsonb(job.validation_file)}
    row |= {c: None if (value := getattr(job, c)) is None else jsonb(value) for c in QUALITY_JSON}
    if job.text_changed:
        row |= {"tag_text": " ".join(job.tags), "note_text": "\n".join(n["text"] for n in job.notes)}
    return row
