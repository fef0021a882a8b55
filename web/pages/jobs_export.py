"""The jobs list as CSV (FR2.3.1): every page of the filtered list, in its order, streamed; or only
the jobs ticked on the list (`?job=ID&job=ID`, from its selection bar)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from typing import Any
from uuid import UUID

from litestar import Request, get
from litestar.datastructures import State
from litestar.response import Stream
from psycopg_pool import AsyncConnectionPool

from projections.job_search import MAX_PER_PAGE, JobSearch, find_jobs
from web.clock import utcnow
from web.job_filters import read_filters
from web.job_format import Fmt

CSV_COLUMNS = ("Job ID", "Job Name", "Status", "Preset", "GPU", "Created By", "Created At (UTC)", "Started At (UTC)",
               "Ended At (UTC)", "Duration (hours)", "Cost (USD)", "Estimated Cost Min (USD)",
               "Estimated Cost Max (USD)", "Training File", "Client", "Project", "Tags", "Progress (%)",
               "Interruptions", "Failure")


@get("/jobs.csv")
async def jobs_csv(request: Request, state: State) -> Stream:
    """The filtered list (every page, in the list's order) as CSV, streamed a page at a time."""
    now = utcnow()
    _, search, _ = read_filters(request.query_params, now)
    if chosen := selection(request.query_params.getall("job", [])):
        search = replace(search, ids=chosen)  # the list's selection (job_selection.py), in the list's order
    name = f"training-jobs-{now.strftime('%Y%m%dT%H%M%SZ')}.csv"
    return Stream(lines(state.pool, search), media_type="text/csv; charset=utf-8",
                  headers={"Content-Disposition": f'attachment; filename="{name}"'})


def selection(values: list[str]) -> tuple[UUID, ...]:
    """The `job` ids of the query (at most a page's worth); what is not an id is left out."""
    chosen = []
    for value in values[:MAX_PER_PAGE]:
        try:
            chosen.append(UUID(value))
        except ValueError:
            continue
    return tuple(dict.fromkeys(chosen))


async def lines(pool: AsyncConnectionPool, search: JobSearch) -> AsyncIterator[str]:
    """The header, then one chunk of rows per page of the search."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield "\ufeff" + flush()  # a BOM, so spreadsheets read the names as UTF-8
    page = 1
    while True:
        found = await find_jobs(pool, replace(search, page=page, per_page=MAX_PER_PAGE))
        writer.writerows(csv_row(job) for job in found.jobs)
        yield flush()
        if page >= found.pages:
            break
        page += 1


def cell(value: Any) -> str:
    """A spreadsheet must not run a cell as a formula (CSV injection): text starting with = + - @
    gets a leading apostrophe."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_row(job: dict[str, Any]) -> list[str]:
    seconds = job["duration_seconds"]
    return [cell(v) for v in (
        job["id"], job["name"], Fmt.status(job["status"]), Fmt.preset(job["preset"]), Fmt.gpu(job["gpu_tier"]),
        job["created_by"], Fmt.when(job["created_at"]), Fmt.when(job["started_at"]), Fmt.when(job["ended_at"]),
        "" if seconds is None else f"{Decimal(seconds) / 3600:.2f}", job["cost_so_far"], job["estimated_cost_min"],
        job["estimated_cost_max"], job["file_name"], job["client"], job["project"], " ".join(job["tags"] or []),
        job["progress_percent"], job["interruptions"],
        f"{job['failure_type']}: {job['failure_message']}" if job["failure_type"] else "")]


routes = [jobs_csv]
