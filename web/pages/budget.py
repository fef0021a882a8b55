"""The budget dashboard (FR7.2.1, FR7.2.2, FR7.3.1, FR7.3.2): a month's spend, reservations and
forecast, the spending trend, the jobs it paid for, thresholds, overrides and limit changes
(web/budget_dashboard_view.py). Its limit controls are budget_limits.py."""

from __future__ import annotations

from urllib.parse import quote

from litestar import MediaType, Request, get
from litestar.datastructures import State
from litestar.response import Redirect, Template

from domain.budget_month import budget_month
from web.auth import actor_of
from web.budget_dashboard_view import dashboard_context
from web.budget_form import FormError, parse_month
from web.clock import utcnow


@get("/budget", media_type=MediaType.HTML)
async def budget_page(request: Request, state: State, month: str | None = None, error: str | None = None,
                      notice: str | None = None) -> Template:
    """The month's dashboard, the current month in the team's time zone by default."""
    try:
        chosen = parse_month(month, budget_month(utcnow(), state.settings.time_zone))
    except FormError as exc:
        return Template("error.html", context={"title": "Budget", "message": str(exc)}, status_code=400)
    context = await dashboard_context(state, actor_of(request), chosen, error=error, notice=notice)
    return Template("budget.html", context=context)


@get("/dashboard/training-budget", media_type=MediaType.HTML)
async def spec_address(month: str | None = None) -> Redirect:
    """FR7.2.1 names this address for the dashboard."""
    return Redirect(f"/budget?month={quote(month)}" if month else "/budget", status_code=301)


routes = [budget_page, spec_address]
