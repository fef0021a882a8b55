"""The budget month: a calendar month in the team's configured time zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def budget_month(at: datetime, time_zone: str) -> str:
    """`YYYY-MM` of `at` (timezone-aware) as seen in `time_zone`."""
    if at.tzinfo is None:
        raise ValueError("budget_month needs a timezone-aware datetime")
    local = at.astimezone(ZoneInfo(time_zone))
    return f"{local.year:04d}-{local.month:02d}"


def previous_month(month: str) -> str:
    """`YYYY-MM` of the month before `month` (`YYYY-MM`)."""
    year, number = (int(part) for part in month.split("-"))
    return f"{year - 1:04d}-12" if number == 1 else f"{year:04d}-{number - 1:02d}"


CARRY_MONTHS = 12  # how far back a new month looks for the budget controls in force


def earlier_months(month: str, count: int = CARRY_MONTHS) -> list[str]:
    """The `count` months before `month`, nearest first."""
    found, current = [], month
    for _ in range(count):
        current = previous_month(current)
        found.append(current)
    return found
