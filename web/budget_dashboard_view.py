"""What the budget dashboard shows for a month (FR7.2.1, FR7.2.2, FR7.3.1): the spend against the
limit in its colour with FR7.2.2's alert, the forecast, the trend, the jobs, savings, decisions
and pending limit requests."""

from __future__ import annotations

import calendar
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from litestar.datastructures import State

from domain.aggregates.budget import THRESHOLDS, describe_remaining
from domain.budget_month import budget_month
from domain.money import usd
from projections.finance import REPORTS, billing_summary, percent
from web.budget_forecast import chart, forecast
from web.budget_month import empty_month, load_month
from web.clock import utcnow
from web.flows import Actor

# FR7.1.1's colours, for the month's spend against its limit: green below 80 %, yellow up to the
# limit, red at or over it.
LEVELS = ((100, "danger"), (80, "warning"), (0, "ok"))
DECISIONS = {"override": "Budget override", "limit_increase_requested": "Limit increase requested",
             "limit_increase_approved": "Limit increase approved", "limit_increase_denied": "Limit increase denied",
             "limit_changed": "Limit changed", "over_limit_allowed": "Reserved over the limit",
             "blocking_on": "New jobs blocked when exceeded", "blocking_off": "New jobs no longer blocked"}


async def dashboard_context(state: State, actor: Actor, month: str, **extra: Any) -> dict[str, Any]:
    """budget.html's context for `month`; `extra` (error, notice, form) on top."""
    settings, now = state.settings, utcnow()
    loaded = await load_month(state, month)
    found = loaded["dashboard"] or empty_month(settings, month, loaded["block_new_jobs"])
    summary = found["summary"]
    outlook = forecast(summary, found["jobs"], loaded["minimums"])
    today = now.astimezone(ZoneInfo(settings.budget.time_zone)).date().isoformat()
    return {
        **month_navigation(month, now, settings.budget.time_zone),
        "exists": loaded["dashboard"] is not None, "summary": summary, "level": level(summary["utilisation_percent"]),
        "alert": threshold_alert(summary), "meter": meter(summary), "forecast": outlook, "jobs": found["jobs"],
        "thresholds": found["thresholds"], "overrun": found["overrun"], "decisions": found["decisions"],
        "job_names": {job["job_id"]: job["name"] for job in found["jobs"]},
        "pending": pending_requests(found["decisions"]),
        "chart": chart(month, found["daily"], summary["limit"], outlook["month_end_high"], today),
        "daily": found["daily"], "history": loaded["history"],
        "trend": trend(loaded["history"], budget_month(now, settings.budget.time_zone)),
        "accuracy": loaded["accuracy"],
        "savings": loaded["savings"],
        "savings_total": savings_total(loaded["savings"]), "attribution": loaded["attribution"],
        # Issue #16: our ledger against RunPod's own bill, jobs past the tolerance flagged
        "billing": loaded["billing"], "billing_total": billing_summary(month, loaded["billing"]),
        "billing_tolerance": settings.budget.billing_tolerance().describe(),
        **page_tools(actor, settings.budget.time_zone),
    } | extra


def month_navigation(month: str, now: datetime, time_zone: str) -> dict[str, Any]:
    return {"month": month, "month_title": f"{calendar.month_name[int(month[5:])]} {month[:4]}",
            "previous_month": shifted(month, -1), "next_month": shifted(month, 1),
            "current_month": budget_month(now, time_zone), "time_zone": time_zone}


def page_tools(actor: Actor, time_zone: str) -> dict[str, Any]:
    """Links, names and helpers the template uses, and the empty form state."""
    zone = ZoneInfo(time_zone)
    return {"reports": list(REPORTS), "decision_names": DECISIONS, "is_manager": actor.role in ("manager", "admin"),
            "actor": actor.name, "usd": usd, "remaining": describe_remaining,
            "local": lambda at: at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z"),
            "form": {}, "error": None, "notice": None}


def shifted(month: str, by: int) -> str:
    year, number = (int(part) for part in month.split("-"))
    index = year * 12 + number - 1 + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def level(utilisation: Decimal | None) -> str:
    used = utilisation if utilisation is not None else Decimal(0)
    return next(name for floor, name in LEVELS if used >= floor)


def threshold_alert(summary: dict[str, Any]) -> str | None:
    """FR7.2.2's alert for the highest threshold the month's spend has crossed."""
    used = summary["utilisation_percent"]
    crossed = [t for t in THRESHOLDS if used is not None and used >= t]
    return threshold_message(crossed[-1], summary["spent"], summary["limit"]) if crossed else None


def threshold_message(percent_: int, spent: Decimal, limit: Decimal) -> str:
    """FR7.2.2's alert texts."""
    if percent_ >= 100:
        return f"Monthly training budget exceeded ({usd(spent)} of {usd(limit)})"
    return f"You've used {percent_}% of monthly training budget ({usd(spent)} of {usd(limit)})"


def meter(summary: dict[str, Any]) -> dict[str, float]:
    """Widths (percent of the bar) of the spend and of the reservations beside it, capped at the limit."""
    limit = summary["limit"]
    if limit <= 0:
        return {"spent": 100.0 if summary["spent"] else 0.0, "reserved": 0.0}
    spent = min(Decimal(100), summary["spent"] * 100 / limit)
    reserved = min(Decimal(100) - spent, summary["reserved"] * 100 / limit)
    return {"spent": round(float(spent), 1), "reserved": round(float(reserved), 1)}


def pending_requests(decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    decided = {d["request_id"] for d in decisions if d["kind"] in ("limit_increase_approved", "limit_increase_denied")}
    return [d for d in decisions if d["kind"] == "limit_increase_requested" and d["request_id"] not in decided]


TREND_BAND = Decimal("0.10")  # within ±10 % of the earlier months' average: stable


def trend(history: list[dict[str, Any]], current_month: str) -> str | None:
    """FR7.2.1's "Trend: Increasing": the later half of the months shown against the earlier half
    (the month in the middle of an odd count left out), over finished months only (the current
    month's spend so far is not a month's); None with fewer than two of them."""
    spends = [h["spent"] for h in history if h["month"] < current_month]
    if len(spends) < 2:
        return None
    half = len(spends) // 2
    earlier, later = spends[:half], spends[-half:]
    before, after = sum(earlier) / len(earlier), sum(later) / len(later)
    if before == 0:
        return "Increasing" if after > 0 else "Stable"
    change = (after - before) / before
    return "Increasing" if change > TREND_BAND else "Decreasing" if change < -TREND_BAND else "Stable"


def savings_total(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not rows:
        return None
    sums = {key: sum((row[key] for row in rows), Decimal("0.00"))
            for key in ("spot_cost", "on_demand_cost", "savings", "overhead_cost")}
    sums["interruptions"] = sum(row["interruptions"] for row in rows)
    sums["jobs"] = len(rows)
    sums["savings_percent"] = percent(sums["savings"], sums["on_demand_cost"])
    sums["annualised"] = sums["savings"] * 12
    return sums
