"""The budget dashboard (FR7.2.1, FR7.2.2, FR7.3.1, FR7.3.2): a month's spend, reservations and
forecast, the spending trend, the jobs it paid for, thresholds, overrides and limit changes
(web/budget_dashboard_view.py), and the month's cost optimization report as a PDF
(web/optimization_pdf.py). Its limit controls are budget_limits.py."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import psycopg
from litestar import MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from domain.budget_month import budget_month
from projections.analytics import by_gpu_tier
from projections.finance import Query, savings_rows
from web.auth import actor_of
from web.budget_dashboard_view import dashboard_context
from web.budget_form import FormError, parse_month
from web.clock import utcnow
from web.optimization_pdf import render_optimization


@get("/budget", media_type=MediaType.HTML)
async def budget_page(request: Request, state: State, month: FromQuery[str | None] = None,
                      error: FromQuery[str | None] = None,
                      notice: FromQuery[str | None] = None) -> Template:
    """The month's dashboard, the current month in the team's time zone by default."""
    try:
        chosen = parse_month(month, budget_month(utcnow(), state.settings.budget.time_zone))
    except FormError as exc:
        return Template("error.html", context={"title": "Budget", "message": str(exc)}, status_code=400)
    context = await dashboard_context(state, actor_of(request), chosen, error=error, notice=notice)
    return Template("budget.html", context=context)


@get("/dashboard/training-budget", media_type=MediaType.HTML)
async def spec_address(month: FromQuery[str | None] = None) -> Redirect:
    """FR7.2.1 names this address for the dashboard."""
    return Redirect(f"/budget?month={quote(month)}" if month else "/budget", status_code=301)


@get("/budget/optimization.pdf", media_type=MediaType.HTML)
async def optimization_report(state: State, month: FromQuery[str | None] = None) -> Response:
    """FR7.3.1 "Export cost optimization report as PDF for stakeholders", for one budget month."""
    settings = state.settings
    try:
        chosen = parse_month(month, budget_month(utcnow(), settings.budget.time_zone))
    except FormError as exc:
        return Template("error.html", context={"title": "Budget", "message": str(exc)}, status_code=400)

    def build() -> bytes:
        with psycopg.connect(state.pool.conninfo) as conn:
            rows = list(savings_rows(conn, Query(settings.budget.team, chosen)))
            tiers = by_gpu_tier(conn, settings.budget.team, chosen)
        return render_optimization(chosen, rows, tiers, settings.budget.team, settings.budget.time_zone, utcnow())

    pdf = await asyncio.to_thread(build)
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="cost-optimization-{chosen}.pdf"', "Cache-Control": "no-store"})


routes = [budget_page, spec_address, optimization_report]
