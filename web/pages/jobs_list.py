"""The jobs list (FR2.3.1) with its statistics panel (FR5.2.1); its bulk cancel, CSV export and the
queue tab are bulk_cancel.py, jobs_export.py and queue.py."""

from __future__ import annotations

from litestar import MediaType, Request, get
from litestar.datastructures import State
from litestar.response import Template

from domain.job_status import TERMINAL
from projections.job_quality import QUALITY_LABELS
from projections.job_reads import choices
from projections.job_search import find_jobs, job_statistics
from web.auth import actor_of
from web.clock import utcnow
from web.job_filters import COST_BANDS, PER_PAGE_CHOICES, PERIODS, SORTS, STATUS_FILTERS, read_filters
from web.job_format import CANCEL_REASONS, GPU_TIERS, PRESET_TITLES, Fmt

ENDED = {s.value for s in TERMINAL}
FEW_JOBS = 10  # up to this many jobs and no filter in use, the filters stay folded under the search


@get("/jobs", media_type=MediaType.HTML)
async def jobs_page(request: Request, state: State) -> Template:
    """The filtered, sorted page of jobs; HTMX asking for the results gets only them."""
    filters, search, problems = read_filters(request.query_params, utcnow())
    found = await find_jobs(state.pool, search)
    context = {"filters": filters, "found": found, "jobs": found.jobs,
               "stats": await job_statistics(state.pool, search), "problems": problems, "fmt": Fmt,
               "ended": ENDED, "sorts": SORTS, "statuses": STATUS_FILTERS, "periods": PERIODS,
               "cost_bands": COST_BANDS, "presets": PRESET_TITLES, "gpu_tiers": GPU_TIERS,
               "quality_outcomes": QUALITY_LABELS,
               "per_page_choices": PER_PAGE_CHOICES, "cancel_reasons": CANCEL_REASONS, "me": actor_of(request).name,
               "error": request.query_params.get("error"), "notice": request.query_params.get("notice"),
               "back": "/jobs" + filters.query().rstrip("?"),
               "filters_in_use": filters.in_use, "filters_open": filters.in_use > 0 or found.total > FEW_JOBS}
    if request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == "jobs-results":
        return Template("partials/jobs_results.html", context=context)
    return Template("jobs.html", context=context | await choices(state.pool))


routes = [jobs_page]
