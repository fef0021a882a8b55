"""Training analytics (FR5.1.2, FR7.3.1, FR8.1.1): SQL over the `job_finance` view, all jobs or
those charged to one budget month. Success rate = completed ÷ (completed + failed): a cancelled job
is the user's decision, not the configuration's failure (docs/cost-model.md, item 7)."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from domain.money import cents
from domain.presets import PRESETS
from projections.finance import hours, percent
from projections.job_quality import jobs_with_outcome

# A draft discarded at review is no job run (nothing queued, nothing charged: it never reserved on a
# budget month, so its month is null); the jobs list says so too (projections/job_search.py DISCARDED).
JOBS = ("(SELECT f.*, COALESCE(f.final_loss, (SELECT m.loss FROM job_metrics m WHERE m.job_id = f.job_id"
        " ORDER BY m.step DESC LIMIT 1)) AS loss FROM job_finance f"
        " WHERE (%(month)s::text IS NULL OR (f.team = %(team)s AND f.month = %(month)s))"
        " AND NOT (f.status = 'cancelled' AND f.month IS NULL)) jobs")
OUTCOMES = ("count(*) AS jobs, count(*) FILTER (WHERE status = 'completed') AS completed,"
            " count(*) FILTER (WHERE status = 'failed') AS failed,"
            " count(*) FILTER (WHERE status = 'cancelled') AS cancelled, sum(total_cost) AS total_cost")


def _rows(conn: psycopg.Connection, query: str, team: str, month: str | None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, {"team": team, "month": month}).fetchall()


def _outcomes(row: dict[str, Any]) -> dict[str, Any]:
    return {"jobs": row["jobs"], "completed": row["completed"], "failed": row["failed"],
            "cancelled": row["cancelled"], "success_rate": percent(Decimal(row["completed"]),
                                                                  Decimal(row["completed"] + row["failed"])),
            "total_cost": cents(row["total_cost"])}


def by_preset(conn: psycopg.Connection, team: str, month: str | None = None) -> list[dict[str, Any]]:
    """Per preset, in the presets' order: outcomes, and the average cost, duration (first pod to
    the end) and final loss of its completed jobs (the final loss the agent reported, else the last
    loss of its metric history; a diverged NaN loss is left out)."""
    rows = _rows(conn, f"SELECT preset, {OUTCOMES},"  # noqa: S608 - fixed fragments
                       " avg(total_cost) FILTER (WHERE status = 'completed') AS average_cost,"
                       " avg(extract(epoch FROM ended_at - started_at)) FILTER (WHERE status = 'completed')"
                       " AS average_seconds,"
                       " avg(loss) FILTER (WHERE status = 'completed' AND loss <> 'NaN') AS average_final_loss"
                       f" FROM {JOBS} WHERE preset IS NOT NULL GROUP BY preset", team, month)
    order = [preset.name for preset in PRESETS]
    rows.sort(key=lambda r: (order.index(r["preset"]) if r["preset"] in order else len(order), r["preset"]))
    return [{"preset": r["preset"], **_outcomes(r),
             "average_cost": cents(r["average_cost"]) if r["average_cost"] is not None else None,
             "average_duration_hours": hours(r["average_seconds"]) if r["average_seconds"] is not None else None,
             "average_final_loss": round(r["average_final_loss"], 4) if r["average_final_loss"] is not None else None}
            for r in rows]


def by_gpu_tier(conn: psycopg.Connection, team: str, month: str | None = None) -> list[dict[str, Any]]:
    """Spot against on-demand: usage, interruptions and what they cost (redone work)."""
    rows = _rows(conn, f"SELECT gpu_tier, {OUTCOMES}, sum(pod_seconds) AS pod_seconds,"  # noqa: S608
                       " sum(lost_cost) AS lost_cost, sum(interruptions) AS interruptions,"
                       " count(*) FILTER (WHERE interruptions > 0) AS interrupted_jobs,"
                       " sum(count(*)) OVER () AS all_jobs"
                       f" FROM {JOBS} WHERE gpu_tier IS NOT NULL GROUP BY gpu_tier ORDER BY gpu_tier", team, month)
    return [{"gpu_tier": r["gpu_tier"], **_outcomes(r), "share_of_jobs": percent(Decimal(r["jobs"]), r["all_jobs"]),
             "pod_hours": hours(r["pod_seconds"]), "interruptions": int(r["interruptions"]),
             "interrupted_jobs": r["interrupted_jobs"],
             "interruption_rate": percent(Decimal(r["interrupted_jobs"]), Decimal(r["jobs"])),
             "overhead_cost": cents(r["lost_cost"])} for r in rows]


def failure_types(conn: psycopg.Connection, team: str, month: str | None = None) -> list[dict[str, Any]]:
    """Most frequent first, with the presets and tiers they happened on."""
    rows = _rows(conn, "SELECT failure_type, count(*) AS jobs, sum(count(*)) OVER () AS failed,"  # noqa: S608
                       " array_agg(DISTINCT preset) AS presets, array_agg(DISTINCT gpu_tier) AS gpu_tiers"
                       f" FROM {JOBS} WHERE status = 'failed' GROUP BY failure_type"
                       " ORDER BY count(*) DESC, failure_type", team, month)
    return [{"failure_type": r["failure_type"], "jobs": r["jobs"], "share": percent(Decimal(r["jobs"]), r["failed"]),
             "presets": [p for p in r["presets"] if p], "gpu_tiers": [t for t in r["gpu_tiers"] if t]} for r in rows]


def team_activity(conn: psycopg.Connection, team: str, month: str | None = None) -> list[dict[str, Any]]:
    """Per creator (FR8.1.1), most jobs first."""
    rows = _rows(conn, f"SELECT created_by, {OUTCOMES} FROM {JOBS}"  # noqa: S608
                       " GROUP BY created_by ORDER BY count(*) DESC, created_by", team, month)
    return [{"created_by": r["created_by"], **_outcomes(r), "average_cost": cents(r["total_cost"] / r["jobs"])}
            for r in rows]


# A job's last finite value of a metric column (a diverged NaN or infinite one is no measure).
LAST_FINITE = ("(SELECT m.{0} FROM job_metrics m WHERE m.job_id = f.job_id AND m.{0} IS NOT NULL"
               " AND m.{0} NOT IN ('NaN', 'Infinity', '-Infinity') ORDER BY m.step DESC LIMIT 1)")


def cost_quality(conn: psycopg.Connection, team: str, month: str | None = None) -> list[dict[str, Any]]:
    """FR5.1.2's cost against quality: each completed job's total cost and its final validation loss
    (the last finite evaluation loss of its metric history), or, for a job never evaluated, its
    final training loss, the agent's else the last logged (`loss_kind` says which). Jobs without a
    finite loss are left out."""
    rows = _rows(conn, "SELECT job_id, name, preset, gpu_tier, total_cost, created_at,"
                       f" {LAST_FINITE.format('eval_loss')} AS eval_loss,"
                       f" COALESCE(final_loss, {LAST_FINITE.format('loss')}) AS final_loss"
                       " FROM job_finance f WHERE status = 'completed' AND (%(month)s::text IS NULL"
                       " OR (f.team = %(team)s AND f.month = %(month)s)) ORDER BY created_at, job_id", team, month)
    points = []
    for r in rows:
        kind, loss = ("validation", r["eval_loss"]) if r["eval_loss"] is not None else ("training", r["final_loss"])
        if loss is None or not math.isfinite(loss):
            continue
        points.append({"job_id": r["job_id"], "name": r["name"], "preset": r["preset"], "gpu_tier": r["gpu_tier"],
                       "total_cost": cents(r["total_cost"]), "loss": round(loss, 4), "loss_kind": kind})
    return points


def narrow_to_created(conn: psycopg.Connection, start: datetime | None, end: datetime | None,
                      quality: str | None = None) -> None:
    """The analyses read the `job_finance` view and filter by budget month only. For a date range
    (or a delivery-gate outcome, projections/job_quality.py) a temporary view of the same name, for
    this connection only, keeps the jobs created in it: PostgreSQL looks in the session's temporary
    schema first, so the analyses run unchanged."""
    conditions = [sql.SQL("created_at >= {}").format(sql.Literal(start)) if start else None,
                  sql.SQL("created_at < {}").format(sql.Literal(end)) if end else None,
                  sql.SQL(jobs_with_outcome(quality)) if quality else None]
    where = sql.SQL(" AND ").join(c for c in conditions if c is not None)
    conn.execute(sql.SQL("CREATE TEMPORARY VIEW job_finance AS SELECT * FROM public.job_finance WHERE {}")
                 .format(where))


def perplexity_trend(conn: psycopg.Connection, team: str, month: str | None = None) -> list[dict[str, Any]]:
    """FR6.1.1 "Perplexity trend: track across multiple training runs": each evaluated job's figures
    (its latest evaluation, re-evaluations included) in the order the jobs were created, with its scored
    replies' EI improvement, regressions and brand alignment (FR6.2.1, FR6.2.2, FR6.4.1) when judged."""
    rows = _rows(conn, "SELECT j.id AS job_id, j.name, j.preset, j.created_at, j.perplexity_baseline,"
                       " j.perplexity_trained, j.perplexity_improvement, j.retention_percent, j.quality_outcome,"
                       " j.quality_overridden, j.ei_improvement, j.ei_regressions, j.brand_alignment, j.judging_cost"
                       " FROM job_finance f JOIN jobs j ON j.id = f.job_id"
                       " WHERE j.perplexity_improvement IS NOT NULL AND j.evaluates IS NULL"
                       " AND (%(month)s::text IS NULL OR (f.team = %(team)s AND f.month = %(month)s))"
                       " ORDER BY j.created_at, j.id", team, month)
    return [r | {"perplexity_improvement": Decimal(r["perplexity_improvement"]).quantize(Decimal("0.1"))}
            for r in rows]


ANALYTICS = {"presets": by_preset, "gpu-tiers": by_gpu_tier, "failures": failure_types, "team": team_activity,
             "cost-quality": cost_quality, "perplexity-trend": perplexity_trend}
