"""FR7.2.1's "Budget vs Forecast" for a month: where its spend may end, from what active jobs still
hold reserved, and the spending trend drawn day by day with that forecast."""

from __future__ import annotations

import calendar
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.job_status import TERMINAL
from domain.money import cents

ENDED = {s.value for s in TERMINAL}


def forecast(summary: dict[str, Any], jobs: list[dict[str, Any]], minimums: dict[UUID, Decimal]) -> dict[str, Any]:
    """What active jobs may still cost runs from their estimate's minimum to the maximum they hold
    reserved; a job's spend so far is taken off both."""
    active = [job for job in jobs if job["status"] not in ENDED]
    high = sum((job["outstanding"] for job in active), Decimal("0.00"))
    low = sum((min(job["outstanding"], max(Decimal(0), cents(minimums.get(job["job_id"]) or Decimal(0)) - job["spent"]))
               for job in active), Decimal("0.00"))
    spent, limit = summary["spent"], summary["limit"]
    # Reservations of ended jobs not yet released still count towards the month (summary["reserved"]).
    held = summary["reserved"] - high
    month_end = (spent + held + low, spent + summary["reserved"])
    over = (max(Decimal("0.00"), month_end[0] - limit), month_end[1] - limit)
    return {"active_jobs": len(active), "active_low": low, "active_high": high, "month_end_low": month_end[0],
            "month_end_high": month_end[1], "over_low": over[0], "over_high": over[1],
            "exceeds": month_end[1] > limit}


def chart(month: str, daily: list[dict[str, Any]], limit: Decimal, month_end: Decimal,
          today: str | None) -> dict[str, Any]:
    """Day of month → cumulative spend up to today (or the whole of a past month), a dotted
    forecast from the last day shown to the month's end, and the limit."""
    length = month_days(month)
    last = last_day_shown(month, length, today)
    cumulative, total = cumulative_spend(daily, length, last)
    projected: list[float | None] = [None] * length
    if 0 < last < length:
        projected[last - 1] = float(total)
        projected[-1] = float(month_end)
    return {"days": list(range(1, length + 1)), "spent": cumulative, "forecast": projected,
            "limit": float(limit), "month": month}


def cumulative_spend(daily: list[dict[str, Any]], length: int, last: int) -> tuple[list[float | None], Decimal]:
    """Each day's running total up to day `last` (None after it), and the month's total."""
    by_day = {int(day["day"][8:10]): day["cumulative"] for day in daily}
    cumulative: list[float | None] = []
    total = Decimal(0)
    for day in range(1, length + 1):
        total = by_day.get(day, total)
        cumulative.append(float(total) if day <= last else None)
    return cumulative, total


def last_day_shown(month: str, length: int, today: str | None) -> int:
    """The whole of a past month, up to today in this one, nothing of a month to come."""
    if today is not None and today[:7] < month:
        return 0
    return length if today is None or today[:7] != month else int(today[8:10])


def month_days(month: str) -> int:
    year, number = (int(part) for part in month.split("-"))
    return calendar.monthrange(year, number)[1]
