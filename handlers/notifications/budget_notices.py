"""What each budget event says (FR7.2.2's escalation texts, FR1.2.2's limit-increase request and
decision), from the Budget as it was right after the event."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from domain.aggregates.budget import Budget
from domain.money import usd
from handlers.notifications.notices import Facts, Notice


def threshold_notice(event: Budget.ThresholdCrossed, budget: Budget, base_url: str) -> Notice:
    """`budget` as it was right after the event: its active jobs and forecast are FR7.2.2's alert
    content beside the spending."""
    spent, limit, percent, month = usd(event.spent), usd(event.limit), event.percent, budget.month
    headline = {
        90: f"⚠ Critical Budget Alert: 90% of monthly budget used ({spent} of {limit}). Only "
            f"{usd(event.limit - event.spent)} remaining. Consider prioritizing essential training runs.",
        100: f"Monthly training budget exceeded ({spent} of {limit})",
    }.get(percent, f"You've used {percent}% of monthly training budget ({spent} of {limit})")
    used = event.spent * 100 / event.limit if event.limit else Decimal(100)
    return Notice(
        f"budget_{percent}", f"⚠ Budget Alert: {percent}% of the {month} training budget"
        + (" exceeded" if percent >= 100 else " used"), headline,
        facts=(("Month", month), ("Current spending", f"{spent} / {limit} ({used:.0f}%)"),
               ("Remaining budget", usd(event.limit - event.spent)), *outlook(budget)),
        actions=(("View Budget Dashboard", f"{base_url}/budget?month={month}"),
                 ("Increase Budget Limit", f"{base_url}/budget?month={month}#limit"),
                 *((("Cancel Active Jobs", f"{base_url}/jobs?status=active"),) if budget.reservations else ())))


def outlook(budget: Budget) -> Facts:
    """The active jobs (those holding a reservation) and where they may take the month."""
    if not budget.reservations:
        return (("Active jobs", "none"),)
    count, reserved = len(budget.reservations), budget.reserved
    projected = budget.charged + reserved
    forecast = (f"May exceed the budget by up to {usd(projected - budget.limit)}" if projected > budget.limit
                else f"Up to {usd(projected)} of {usd(budget.limit)} once the active jobs end")
    return (("Active jobs", f"{count} (estimated remaining cost: up to {usd(reserved)})"), ("Forecast", forecast))


def overrun_notice(event: Budget.OverrunForecast, month: str, base_url: str) -> Notice:
    """FR7.2.2 "Budget exceeded during active job", with the alert content it lists: spending,
    what is left, the active jobs and what they may still cost (their reservations: the estimated
    maximum less what they spent), the forecast overrun, and the three actions."""
    spent, limit, reserved = event.spent, event.limit, event.reserved
    used = spent * 100 / limit if limit else Decimal(100)
    jobs = f"{event.active_jobs} active job" + ("s" if event.active_jobs != 1 else "")
    return Notice(
        "budget_overrun", f"⚠ Budget Alert: active jobs may exceed the {month} training budget",
        "Active job may exceed budget. Cancel or increase limit.",
        facts=(("Month", month), ("Current spending", f"{usd(spent)} / {usd(limit)} ({used:.0f}%)"),
               ("Remaining budget", usd(limit - spent)),
               ("Active jobs", f"{event.active_jobs} (estimated remaining cost: up to {usd(reserved)})"),
               ("Forecast", f"May exceed the budget by up to {usd(spent + reserved - limit)} ({jobs})")),
        actions=(("Increase Budget Limit", f"{base_url}/budget?month={month}#limit"),
                 ("Cancel Active Jobs", f"{base_url}/jobs?status=active"),
                 ("View Budget Dashboard", f"{base_url}/budget?month={month}")))


def limit_request_notice(event: Budget.LimitIncreaseRequested, budget: Budget, approve_deny: dict[str, str] | None,
                         expires: datetime) -> Notice:
    """One manager's copy: its links are signed for that manager (None: no links can be signed)."""
    used = budget.charged * 100 / budget.limit if budget.limit else Decimal(100)
    facts: Facts = (("Requested by", event.requested_by), ("Current limit", usd(budget.limit)),
                    ("New monthly limit", usd(event.new_limit)),
                    ("Current spend", f"{usd(budget.charged)} of {usd(budget.limit)} ({used:.0f}%)"),
                    ("Projected spend (incl. active jobs)", usd(budget.charged + budget.reserved)))
    if approve_deny:
        facts += (("Links valid until", f"{expires.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC, once"),)
    return Notice(
        "limit_request",
        f"Budget increase request: {usd(event.new_limit)} for {budget.month} from {event.requested_by}",
        f"{event.requested_by} asks to raise the {budget.month} training budget from {usd(budget.limit)} "
        f"to {usd(event.new_limit)}.", facts=facts, sections=(("Justification", (event.justification,)),),
        actions=(("Approve", approve_deny["approve"]), ("Deny", approve_deny["deny"])) if approve_deny else ())


def limit_decided_notice(event: Budget.LimitIncreaseDecided, budget: Budget, base_url: str) -> Notice:
    new_limit = budget.requests[str(event.request_id)]["new_limit"]
    headline = (f"Budget increase approved, new limit: {usd(new_limit)} effective immediately" if event.approved
                else f"Budget increase to {usd(new_limit)} denied: the {budget.month} limit stays {usd(budget.limit)}")
    return Notice(
        "limit_decided", headline, headline,
        facts=(("Month", budget.month), ("Decided by", event.decided_by), ("Reason", event.reason or "none given")),
        actions=(("View Budget Dashboard", f"{base_url}/budget?month={budget.month}"),))
