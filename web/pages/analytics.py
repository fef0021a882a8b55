"""Training analytics (FR5.1.2, FR7.3.1, FR8.1.1): performance by preset, cost against quality,
spot against on-demand, common failures and team activity, over all jobs or those created in a date range."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from litestar import MediaType, get
from litestar.datastructures import State
from litestar.params import FromQuery
from litestar.response import Template

from domain.money import cents, usd
from projections.analytics import (
    ANALYTICS,
    by_gpu_tier,
    by_preset,
    cost_quality,
    failure_types,
    narrow_to_created,
    perplexity_trend,
    team_activity,
)
from projections.finance import Query, monthly_rows, percent, savings_rows
from projections.job_quality import QUALITY_LABELS, check_quality_filter
from web.cost_quality import scatter
from web.quality_trend import trend_chart

PERIODS = {"7": "Last 7 days", "30": "Last 30 days", "90": "Last 90 days", "all": "All time"}
DATE_MESSAGE = "Dates must be YYYY-MM-DD"
ORDER_MESSAGE = "The start date must not be after the end date"


class RangeError(ValueError):
    """The date range cannot be used."""


def date_range(since: str | None, until: str | None, period: str | None,
               today: date) -> tuple[date | None, date | None]:
    """Inclusive dates (either may be open); a period counts back from today."""
    if period and period != "all" and not (since or until):
        if period not in PERIODS:
            raise RangeError(f"unknown period {period!r}; known: {', '.join(PERIODS)}")
        return today - timedelta(days=int(period) - 1), today
    try:
        start = date.fromisoformat(since) if since else None
        end = date.fromisoformat(until) if until else None
    except ValueError:
        raise RangeError(DATE_MESSAGE) from None
    if start and end and start > end:
        raise RangeError(ORDER_MESSAGE)
    return start, end


def analyse(conn: psycopg.Connection, team: str, start: datetime | None, end: datetime | None,
            quality: str | None = None) -> dict[str, Any]:
    if start or end or quality:
        narrow_to_created(conn, start, end, quality)
    months = [row["month"] for row in monthly_rows(conn, Query(team))]
    trend = []
    for month in months:
        rows = team_activity(conn, team, month)
        completed, failed = sum(r["completed"] for r in rows), sum(r["failed"] for r in rows)
        if rows:
            trend.append({"month": month, "jobs": sum(r["jobs"] for r in rows), "completed": completed,
                          "failed": failed, "success_rate": percent(Decimal(completed), Decimal(completed + failed))})
    return {"presets": by_preset(conn, team), "tiers": by_gpu_tier(conn, team), "failures": failure_types(conn, team),
            "team": team_activity(conn, team), "savings": list(savings_rows(conn, Query(team))), "trend": trend,
            "cost_quality": cost_quality(conn, team), "perplexity_trend": perplexity_trend(conn, team)}


def best_preset(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """FR5.1.2 "Best performer": the highest success rate, then the lowest final loss, then the
    lowest average cost, among presets with a finished job."""
    ranked = [r for r in rows if r["success_rate"] is not None]
    if not ranked:
        return None
    worst = Decimal("Infinity")
    return min(ranked, key=lambda r: (-r["success_rate"], worst if r["average_final_loss"] is None
                                      else Decimal(str(r["average_final_loss"])),
                                      r["average_cost"] if r["average_cost"] is not None else worst))


def describe_preset(row: dict[str, Any]) -> str:
    """"Balanced preset: 96% success rate, $52 avg cost, 0.312 avg final loss"."""
    parts = [f"{row['success_rate']:.0f}% success rate"]
    if row["average_cost"] is not None:
        parts.append(f"{usd(row['average_cost'])} avg cost")
    if row["average_final_loss"] is not None:
        parts.append(f"{row['average_final_loss']:.3f} avg final loss")
    return f"{row['preset'].replace('_', ' ').title()} preset: {', '.join(parts)}"


def totals(team: list[dict[str, Any]]) -> dict[str, Any]:
    jobs = sum(r["jobs"] for r in team)
    completed, failed = sum(r["completed"] for r in team), sum(r["failed"] for r in team)
    cost = sum((r["total_cost"] for r in team), Decimal("0.00"))
    return {"jobs": jobs, "completed": completed, "failed": failed, "cancelled": sum(r["cancelled"] for r in team),
            "success_rate": percent(Decimal(completed), Decimal(completed + failed)), "total_cost": cost,
            "average_cost": cents(cost / jobs) if jobs else None}


def savings_summary(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not rows:
        return None
    sums = {key: sum((r[key] for r in rows), Decimal("0.00")) for key in ("spot_cost", "on_demand_cost", "savings",
                                                                            "overhead_cost")}
    return sums | {"jobs": len(rows), "interruptions": sum(r["interruptions"] for r in rows),
                   "savings_percent": percent(sums["savings"], sums["on_demand_cost"])}


@get("/analytics", media_type=MediaType.HTML)
async def analytics_page(state: State, since: FromQuery[str | None] = None, until: FromQuery[str | None] = None,
                         period: FromQuery[str | None] = None, quality: FromQuery[str | None] = None) -> Template:
    """All jobs by default; `since` / `until` (dates, inclusive, in the team's time zone) or a
    `period` of the last 7, 30 or 90 days narrow it to the jobs created then; `quality` to the
    jobs with that delivery-gate outcome (pass, review, block, released, not_evaluated)."""
    zone = ZoneInfo(state.settings.budget.time_zone)
    today = datetime.now(timezone.utc).astimezone(zone).date()
    context: dict[str, Any] = {"since": since or "", "until": until or "", "period": period or "", "periods": PERIODS,
                               "usd": usd, "analyses": list(ANALYTICS), "error": None,
                               "quality": quality or "", "quality_outcomes": QUALITY_LABELS}
    try:
        start, end = date_range(since, until, period, today)
        check_quality_filter(quality or None)
    except (RangeError, ValueError) as exc:
        return Template("analytics.html", context=context | {"error": str(exc), "data": None}, status_code=400)
    begin = datetime.combine(start, time(), zone) if start else None
    finish = datetime.combine(end + timedelta(days=1), time(), zone) if end else None

    def run() -> dict[str, Any]:
        with psycopg.connect(state.pool.conninfo) as conn:
            return analyse(conn, state.settings.budget.team, begin, finish, quality or None)

    data = await asyncio.to_thread(run)
    best = best_preset(data["presets"])
    return Template("analytics.html", context=context | {
        "data": data, "start": start, "end": end, "best": best, "best_text": describe_preset(best) if best else None,
        "totals": totals(data["team"]), "savings": savings_summary(data["savings"]),
        "scatter": scatter(data["cost_quality"]), "trend": trend_chart(data["perplexity_trend"]),
        "trend_chart": {"months": [t["month"] for t in data["trend"]],
                        "success_rate": [float(t["success_rate"]) if t["success_rate"] is not None else None
                                         for t in data["trend"]],
                        "jobs": [t["jobs"] for t in data["trend"]]},
        "since": since or (start.isoformat() if start else ""), "until": until or (end.isoformat() if end else "")})


routes = [analytics_page]
