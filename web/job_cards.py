"""The job page's live cards (header, stages, cost, metrics, interruptions): what they show, and
their HTML by element id for the SSE stream and the refresh button (the same partials the page
includes)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from uuid import UUID

from litestar import Request

from domain.job_status import STAGES, TERMINAL, JobStatus
from projections.job_detail import read_job
from web.clock import utcnow
from web.cost_tracker import cost_view
from web.data_measured_view import data_rows
from web.detail_format import STATUS_LABELS, completion_time, duration
from web.interruption_view import interruption_view
from web.job_menu import actions_context
from web.metrics_view import metrics_table, throughput
from web.stage_timeline import epochs_of, stage_view

PARTIALS = {"job-header": "partials/job_header.html", "job-stages": "partials/job_stages.html",
            "job-cost": "partials/job_cost.html", "job-metrics": "partials/job_metrics.html",
            "job-interruptions": "partials/job_interruptions.html", "job-throughput": "partials/job_throughput.html"}
ACTIONS = "partials/job_actions.html"
TONES = {JobStatus.COMPLETED: "completed", JobStatus.FAILED: "failed", JobStatus.CANCELLED: "cancelled"}


def cards(detail: dict[str, Any], now: datetime) -> dict[str, Any]:
    """What the live parts of the page show."""
    return {"job": detail["job"], "header": header_view(detail, now), "stages": stage_view(detail),
            "cost": cost_view(detail, now),
            "metrics": metrics_table(detail["metric_rows"], detail["job"]) + data_rows(detail.get("data_measured")),
            "throughput": throughput(detail["metric_rows"]),
            "interruptions": interruption_view(detail), "event_count": detail["event_count"],
            "updated": now.strftime("%H:%M:%S UTC")}


def header_view(detail: dict[str, Any], now: datetime) -> dict[str, Any]:
    job, progress = detail["job"], detail["progress"]
    status = job["status"]
    current, epochs = epochs_of(job)
    percent = float(progress["percent"] or 0)
    return {
        "status": status, "status_label": STATUS_LABELS.get(status, status), "tone": TONES.get(status, "active"),
        "live": status not in TERMINAL and status not in (JobStatus.PENDING_CONFIGURATION, JobStatus.CONFIGURED),
        "percent": percent, "percent_text": f"{percent:.0f}% Complete",
        "steps": f"Step {job['step']:,} of {job['total_steps']:,}" if job["total_steps"] else None,
        "epoch": (f"Epoch {current} of {epochs}" if epochs else f"Epoch {current}") if current else None,
        "elapsed": duration(progress["elapsed_seconds"]) if progress["elapsed_seconds"] is not None else None,
        "remaining": f"{duration(progress['remaining_seconds'])} remaining"
        if progress["remaining_seconds"] is not None else None,
        "completion": completion_time(now, progress["remaining_seconds"]),
        "training": status in STAGES,
    }


def version_of(job: dict[str, Any]) -> str:
    """Changes whenever an event changed the job (the stream re-renders the cards then)."""
    return job["updated_at"].isoformat()


async def rendered_cards(request: Request, job_id: UUID) -> dict[str, Any] | None:
    """The live cards as HTML by element id, with what the page's script compares (None: no such job)."""
    now = utcnow()
    detail = await read_job(request.app.state.pool, job_id, now)
    if detail is None:
        return None
    context = cards(detail, now)
    engine = request.app.template_engine
    html = {key: engine.get_template(name).render(**context) for key, name in PARTIALS.items()}
    found = {"html": html, "version": version_of(detail["job"]), "status": detail["job"]["status"],
             "row_version": detail["job"]["row_version"], "event_count": detail["event_count"],
             "updated": context["updated"], "facts": facts(detail)}
    if detail["job"]["status"] not in TERMINAL:  # an ended job's page is drawn again whole (the stream's `end`)
        offered = actions_context(request, detail["job"])
        found["actions"] = {"key": offered["actions"]["key"],
                            "html": engine.get_template(ACTIONS).render(**context, **offered, request=request)}
    return found


def facts(detail: dict[str, Any]) -> dict[str, Any]:
    """The cards' figures as data, for clients of the stream that draw their own (`pipeline jobs watch`)."""
    job, progress, cost = detail["job"], detail["progress"], detail["cost"]

    def number(value: Any) -> float | None:
        return None if value is None else float(value)

    return {"status": job["status"], "step": job["step"], "total_steps": job["total_steps"], "epoch": job["epoch"],
            "loss": job["loss"] if job["loss"] is not None and math.isfinite(job["loss"]) else None,
            "percent": number(progress["percent"]) or 0.0,
            "elapsed_seconds": number(progress["elapsed_seconds"]),
            "remaining_seconds": number(progress["remaining_seconds"]),
            "cost": str(cost["current_spend"]), "estimated_cost_max": None if cost["estimated_cost_max"] is None
            else str(cost["estimated_cost_max"]), "interruptions": job["interruptions"]}
