"""The job page's cost tracker: FR7.1.1's colours and alerts against the estimate, FR7.1.2's
projected final cost and decision support."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.money import usd
from web.detail_format import completion_time, money

COST_YELLOW, COST_RED, COST_REVIEW = 80, 100, 120  # FR7.1.1 thresholds, % of the estimate's maximum
PROJECTION_VARIANCE = Decimal("0.15")  # FR7.1.2: "Projected final cost: $47.32 (±15% variance)"


def cost_view(detail: dict[str, Any], now: datetime) -> dict[str, Any]:
    """What the cost card shows: the spend against the estimate, then the projection."""
    return spend_view(detail) | projection_view(detail, now)


def spend_view(detail: dict[str, Any]) -> dict[str, Any]:
    cost, job = detail["cost"], detail["job"]
    spend, estimate, rate = cost["current_spend"], cost["estimated_cost_max"], cost["hourly_rate"]
    percent = cost["percent_of_estimate"]
    breakdown = detail["breakdown"] or {}
    overhead = breakdown.get("lost_cost")
    return setup_view(breakdown) | {
        "level": level(percent), "alert": alert(percent, spend, estimate),
        "estimate": f"{money(cost['estimated_cost_min'])}–{money(estimate)}" if estimate else "—",
        "spend": money(spend), "percent": f"{percent:.0f}% of estimate" if percent is not None else None,
        "bar": min(float(percent), 100.0) if percent is not None else 0,
        "rate": f"{money(rate)}/hr ({(cost['gpu_tier'] or '').replace('_', '-')})" if rate else "—",
        "gpu_hours": f"{spend / rate:.1f} hrs @ {money(rate)}/hr" if rate else None,
        "overhead": money(overhead) if overhead is not None else None,
        "interruptions": job["interruptions"], "final": bool(job["ended_at"]),
    }


def setup_view(breakdown: dict[str, Any]) -> dict[str, Any]:
    """The setup time's cost with the base model's download as its own line (issue #16), and what RunPod
    billed for the job's ended pods beside our ledger's total."""
    setup, download = breakdown.get("setup_cost"), breakdown.get("download_cost")
    billed, seconds = breakdown.get("billed_cost"), breakdown.get("download_seconds") or 0
    return {
        "setup": money(setup) if setup else None,
        "download": f"{money(download)} ({float(seconds) / 60:.1f} min)" if download else None,
        "billed": (f"{money(billed)} for {len(breakdown.get('billed_pods') or {})} ended pod(s); our ledger"
                   f" {money(breakdown['total_cost'])}") if billed is not None else None,
    }


def projection_view(detail: dict[str, Any], now: datetime) -> dict[str, Any]:
    cost, running = detail["cost"], not detail["job"]["ended_at"]
    projected, estimate = cost["projected_final_cost"], cost["estimated_cost_max"]
    remaining = detail["progress"]["remaining_seconds"]
    return {
        "advice": advice(projected, estimate) if running else None,
        "projected": money(projected) if projected is not None else None,
        "within": None if projected is None or not estimate else
        ("within estimate" if projected <= estimate else "over estimate"),
        "range": (money(projected * (1 - PROJECTION_VARIANCE)), money(projected * (1 + PROJECTION_VARIANCE)))
        if projected is not None and running else None,
        "hours_left": f"{float(remaining) / 3600:.1f} hours" if remaining is not None else None,
        "completion": completion_time(now, remaining) if running else None,
    }


def level(percent: Decimal | None) -> str:
    """FR7.1.1: green below 80 % of the estimate, yellow up to 100 %, red above."""
    if percent is None:
        return "none"
    return "green" if percent < COST_YELLOW else "yellow" if percent <= COST_RED else "red"


def alert(percent: Decimal | None, spend: Decimal, estimate: Decimal | None) -> str | None:
    if percent is None or not estimate:
        return None
    figures = f"({usd(spend)} of {usd(estimate)})"
    if percent > COST_REVIEW:
        return f"Job significantly over budget {figures}. Review immediately."
    if percent > COST_RED:
        return f"Job exceeded cost estimate {figures}. Consider cancelling."
    if percent >= COST_YELLOW:
        return f"Job approaching cost estimate {figures}. Monitor closely."
    return None


def advice(projected: Decimal | None, estimate: Decimal | None) -> str | None:
    """FR7.1.2's decision support for a running job."""
    if projected is None or not estimate:
        return None
    if projected > estimate * COST_REVIEW / 100:
        return "Consider cancelling and retrying with more efficient configuration"
    if projected <= estimate:
        return "On track, continue monitoring"
    return "Projected to exceed the estimate: monitor closely"
