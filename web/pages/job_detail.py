"""The job detail page (FR2.1.1, FR2.1.2, FR2.1.3, FR7.1.1, FR7.1.2, FR3.2.1): the page and its
event log tab, the loss curve's points and the live cards. Its forms are job_forms.py, its
downloads job_downloads.py, its live feed job_stream.py."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery

from projections.loss_curve import read_points
from web.job_cards import rendered_cards
from web.job_page import PageInput, render_page


@get("/jobs/{job_id:uuid}", media_type=MediaType.HTML)
async def job_page(request: Request, state: State, job_id: FromPath[UUID], tab: FromQuery[str] = "overview",
                   q: FromQuery[str] = "", category: FromQuery[str] = "", page: FromQuery[int] = 1,
                   error: FromQuery[str | None] = None, notice: FromQuery[str | None] = None
                   ) -> Response:
    """The job's dashboard; `tab=events` shows the event log (`q` keyword, `category`, `page`)."""
    view = PageInput(tab, q[:200].replace("\x00", ""), category, page)
    return await render_page(request, state, job_id, view, error=error, notice=notice)


@get("/jobs/{job_id:uuid}/metrics-points")
async def metrics_points(state: State, job_id: FromPath[UUID], after: FromQuery[int] = -1) -> Response[bytes]:
    """The loss curve: `steps`, `loss` (training) and `eval` (validation) columns after step
    `after`, a long history thinned to about 2,000 points (every validation point kept), and
    `last_step` / `last_eval_step` (where the live stream goes on from)."""
    return Response(await read_points(state.pool, job_id, after), media_type=MediaType.JSON)


@get("/jobs/{job_id:uuid}/cards")
async def live_cards(request: Request, job_id: FromPath[UUID]) -> dict[str, Any]:
    """The page's live cards as HTML (the refresh button)."""
    found = await rendered_cards(request, job_id)
    if found is None:
        raise NotFoundException(f"no training job {job_id}")
    return found


routes = [job_page, metrics_points, live_cards]
