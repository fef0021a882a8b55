"""Compare 2 to 4 training runs (FR5.1.1): overlaid loss curves, final metrics and costs side by
side, the configuration with its differences highlighted, a recommendation (web/comparison.py,
web/config_diff.py); and a picker to choose the jobs (search by name). The same comparison exports
as a PDF (web/compare_pdf.py)."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from litestar import MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.params import FromQuery
from litestar.response import Template

from domain.applications import JobNotFoundError
from domain.money import usd
from projections import job_reads
from projections.job_search import JobSearch, find_jobs, jobs_by_id
from projections.queries import configured_hyperparameters, metric_points
from web.auth import actor_of
from web.clock import utcnow
from web.compare_pdf import render_comparison
from web.comparison import best_values, chart, differences, finals, recommend
from web.config_diff import configuration
from web.sharing.access import private_message

MIN_JOBS, MAX_JOBS = 2, 4
MAX_POINTS = 400  # per job and chart: the metric history is thinned to about this many steps
PICKER_SIZE = 25


class SelectionError(ValueError):
    """The jobs asked for cannot be compared (a page message, with its HTTP status)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@get("/compare", media_type=MediaType.HTML)
async def compare_page(request: Request, state: State, jobs: FromQuery[list[str] | None] = None,
                       q: FromQuery[str | None] = None, search: FromQuery[str | None] = None) -> Template:
    """`jobs` repeated 2 to 4 times; none: the picker alone (`search`: only search, compare nothing)."""
    asked = [j for j in (jobs or []) if j.strip()]
    context: dict[str, Any] = {"q": q or "", "compared": None, "error": None, "usd": usd, "max_jobs": MAX_JOBS}
    status = 200
    if asked and not search:
        try:
            context["compared"] = await compared(state, await viewable(request, state, selection(asked)))
        except SelectionError as exc:
            context["error"], status = str(exc), exc.status
    picked, problem = await picker(state, q, asked)
    context["picker"] = picked
    context["error"] = context["error"] or problem
    return Template("compare.html", context=context, status_code=status)


def selection(values: list[str]) -> list[UUID]:
    """The jobs asked for, in order, each once; refused unless 2 to 4 job ids."""
    chosen: list[UUID] = []
    for value in values:
        try:
            job_id = UUID(value.strip())
        except ValueError:
            raise SelectionError(f"Not a job id: {value[:60]!r}") from None
        if job_id not in chosen:
            chosen.append(job_id)
    if not MIN_JOBS <= len(chosen) <= MAX_JOBS:
        raise SelectionError(f"Select {MIN_JOBS} to {MAX_JOBS} jobs to compare ({len(chosen)} selected)")
    return chosen


async def viewable(request: Request, state: State, ids: list[UUID]) -> list[UUID]:
    """The jobs, unless one is private to someone else (FR8.1.2): its configuration and curve are theirs."""
    actor = actor_of(request)
    for job_id in ids:
        try:
            if not await asyncio.to_thread(state.store.app.can_view_job, job_id, actor.name, actor.role):
                owner = (await asyncio.to_thread(state.store.app.get_job, job_id)).created_by
                raise SelectionError(private_message(owner), 403)
        except JobNotFoundError:
            continue  # said by `compared`: not in the read model
    return ids


async def compared(state: State, ids: list[UUID]) -> dict[str, Any]:
    """What the page compares; SelectionError (404) when a job is not in the read model."""
    found = await jobs_by_id(state.pool, ids)
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise SelectionError(f"No training job {', '.join(missing)}", 404)
    hyperparameters = await configured_hyperparameters(state.pool, ids)
    jobs = [found[i] for i in ids]
    metrics = [await metric_points(state.pool, i, MAX_POINTS) for i in ids]
    rows = [finals(job, points) for job, points in zip(jobs, metrics, strict=True)]
    return {"jobs": jobs, "finals": rows, "best": best_values(rows), "differences": differences(rows),
            "recommendation": recommend(jobs, rows), "chart": chart(jobs, metrics),
            "configuration": configuration(jobs, [hyperparameters.get(i, {}) for i in ids]),
            "has_metrics": any(metrics)}


async def picker(state: State, q: str | None, asked: list[str]) -> tuple[list[dict[str, Any]], str | None]:
    """The jobs already chosen first (checked), then the newest jobs matching the search."""
    try:
        search = JobSearch(text=q or None, per_page=PICKER_SIZE)
    except ValueError as exc:
        return [], str(exc)
    found = (await find_jobs(state.pool, search)).jobs
    chosen = [job | {"chosen": True} for job in await chosen_jobs(state, asked, found)]
    ids = {job["id"] for job in chosen}
    return chosen + [job for job in found if job["id"] not in ids], None


async def chosen_jobs(state: State, asked: list[str], found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The jobs asked for that exist, in order, from the search's page or else read one by one."""
    chosen = []
    for value in dict.fromkeys(asked):
        try:
            job_id = UUID(value.strip())
        except ValueError:
            continue
        job = next((j for j in found if j["id"] == job_id), None) or await job_reads.get_job(state.pool, job_id)
        if job is not None:
            chosen.append(job)
    return chosen


@get("/compare.pdf", media_type=MediaType.HTML)
async def compare_pdf(request: Request, state: State, jobs: FromQuery[list[str] | None] = None) -> Response:
    """FR5.1.1 "Export comparison as PDF report": the same 2 to 4 jobs as a PDF."""
    try:
        found = await compared(state, await viewable(request, state, selection([j for j in (jobs or []) if j.strip()])))
    except SelectionError as exc:
        return Template("error.html", status_code=exc.status, context={"title": "No comparison", "message": str(exc)})
    now = utcnow()
    pdf = await asyncio.to_thread(render_comparison, found, state.settings.budget.time_zone, now)
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="training-comparison-{now:%Y%m%d-%H%M%S}.pdf"',
        "Cache-Control": "no-store"})


routes = [compare_page, compare_pdf]
