"""How the job page writes durations (FR2.1.1's "Xh Ym"), amounts, times, numbers and statuses."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from domain.money import usd
from web import job_format

# The page names the stages as its stage timeline does (FR2.1.2), where the jobs list is shorter.
STATUS_LABELS = job_format.STATUS_LABELS | {"downloading_model": "Model download", "model_loading": "Model loading",
                                            "finalization": "Finalization", "evaluating": "Evaluation"}


def short_duration(seconds: Decimal | float) -> str:
    """A downtime of seconds or minutes as it was: "12 s", "2 min 5 s", "9 min"; "Xh Ym" past an hour."""
    whole = int(round(float(seconds)))
    if whole >= 3600:
        return duration(whole)
    minutes, rest = divmod(whole, 60)
    if not minutes:
        return f"{rest} s"
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def duration(seconds: Decimal | float | None) -> str:
    """FR2.1.1: "Xh Ym", or "Xd Yh" past 24 hours."""
    if seconds is None:
        return "—"
    minutes = int(seconds) // 60
    if minutes >= 24 * 60:
        return f"{minutes // 1440}d {minutes % 1440 // 60}h"
    return f"{minutes // 60}h {minutes % 60}m"


def money(amount: Decimal | None) -> str:
    return "—" if amount is None else usd(amount)


def when(at: datetime | str | None) -> str:
    if at is None:
        return "—"
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def completion_time(now: datetime, remaining_seconds: Decimal | None) -> str | None:
    """FR7.1.2 "Expected completion: Today at 11:45 PM" (in UTC: the server knows no time zone)."""
    if remaining_seconds is None:
        return None
    end = now + timedelta(seconds=float(remaining_seconds))
    days = (end.date() - now.date()).days
    day = "Today" if days == 0 else "Tomorrow" if days == 1 else end.strftime("%a %b %-d")
    return f"{day} at {end.strftime('%-I:%M %p')} UTC"


def number(value: float | None, places: int = 3) -> str:
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)  # nan / inf: a diverged loss is shown as it is
    return f"{value:.{places}f}"
