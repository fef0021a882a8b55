"""Finance reports over the `job_costs` and `budgets` read models (FR7.2.1, FR7.3.1, FR7.3.2): the
rows of the exports and of the JSON API. Amounts are exact in the read models and rounded to cents
once per budget month here, so every report adds up to the Budget's spend to the cent
(docs/read-models.md, "Reconciliation")."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import groupby
from operator import itemgetter
from typing import Any

import psycopg
from psycopg.rows import dict_row

from domain.billing import BillingTolerance, Reconciliation
from domain.cost_ledger import SECONDS_PER_HOUR, allocate_cents, ledger
from domain.gpu import OfflinePrices
from domain.money import cents
from projections.job_quality import QUALITY_FILTERS, check_quality_filter
from projections.json import pod_from_json

TENTH = Decimal("0.1")


@dataclass(frozen=True)
class Query:
    """Which rows: the team's budget months, one month (`YYYY-MM`) or all; the on-demand rate
    spot jobs are compared with (FR7.3.1)."""

    team: str
    month: str | None = None
    on_demand_rate: Decimal = field(default_factory=lambda: OfflinePrices().on_demand)
    tolerance: BillingTolerance = field(default_factory=BillingTolerance)  # billing: what difference is flagged
    quality: str | None = None  # per-job reports: only jobs with this delivery-gate outcome (job_quality.py)


def hours(seconds: Decimal) -> Decimal:
    return cents(seconds / SECONDS_PER_HOUR)


def percent(part: Decimal, whole: Decimal) -> Decimal | None:
    return (part * 100 / whole).quantize(TENTH) if whole else None


def apportion(amounts: list[Decimal]) -> list[Decimal]:
    """Exact amounts in cents that add up to their exact sum rounded half-even: the largest
    remainders get the odd cents."""
    return allocate_cents(amounts, cents(sum(amounts, Decimal(0))))


# --- per-job costs --------------------------------------------------------------------------

CHARGED_JOBS = (
    "SELECT month, job_id, name, client, project, created_by, status, preset, gpu_tier, gpu_type, hourly_rates,"
    " pod_seconds, lost_seconds, useful_cost, lost_cost, setup_cost, total_cost, interruptions, created_at, ended_at,"
    " pods, as_of, billed_pods, billed_cost, judging_cost"
    " FROM job_finance WHERE team = %(team)s AND (%(month)s::text IS NULL OR month = %(month)s)"
    " ORDER BY month, created_at, job_id")


def charged_jobs(conn: psycopg.Connection, query: Query) -> Iterator[tuple[dict[str, Any], dict[str, Decimal]]]:
    """Each job charged to the months asked, with its cents: the month's total apportioned to its
    jobs, then each job's total to its useful, lost and setup parts and the judging of its replies. Streamed,
    one month in memory."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.stream(CHARGED_JOBS, {"team": query.team, "month": query.month})
        for _, month in groupby(rows, key=itemgetter("month")):
            jobs = list(month)
            for job, total in zip(jobs, apportion([j["total_cost"] for j in jobs]), strict=True):
                useful, lost, setup, judging = allocate_cents(
                    [job["useful_cost"], job["lost_cost"], job["setup_cost"], job["judging_cost"]], total)
                yield job, {"useful": useful, "lost": lost, "setup": setup, "judging": judging, "total": total}


COST_COLUMNS = ("month", "job_id", "name", "client", "project", "created_by", "status", "preset", "gpu_tier",
                "gpu_type", "hourly_rate", "pod_hours", "useful_cost", "lost_cost", "setup_cost", "judging_cost",
                "total_cost", "interruptions", "created_at", "ended_at")


def cost_rows(conn: psycopg.Connection, query: Query) -> Iterator[dict[str, Any]]:
    """Each charged job's cents; with `query.quality` only those jobs, their cents as apportioned
    among all the month's jobs (so each row still reconciles with the unfiltered report)."""
    kept = outcome_ids(conn, query.quality) if query.quality else None
    for job, money in charged_jobs(conn, query):
        if kept is not None and job["job_id"] not in kept:
            continue
        yield {"month": job["month"], "job_id": str(job["job_id"]), "name": job["name"], "client": job["client"],
               "project": job["project"], "created_by": job["created_by"], "status": job["status"],
               "preset": job["preset"], "gpu_tier": job["gpu_tier"], "gpu_type": job["gpu_type"],
               "hourly_rate": ";".join(str(rate) for rate in job["hourly_rates"]),
               "pod_hours": hours(job["pod_seconds"]), "useful_cost": money["useful"], "lost_cost": money["lost"],
               "setup_cost": money["setup"], "judging_cost": money["judging"], "total_cost": money["total"],
               "interruptions": job["interruptions"],
               "created_at": job["created_at"].isoformat(),
               "ended_at": job["ended_at"].isoformat() if job["ended_at"] else None}


def outcome_ids(conn: psycopg.Connection, quality: str) -> set[Any]:
    check_quality_filter(quality)
    return {row[0] for row in conn.execute(f"SELECT id FROM jobs WHERE {QUALITY_FILTERS[quality]}")}  # noqa: S608


# --- monthly spend --------------------------------------------------------------------------

MONTHS = (
    "SELECT b.month, b.monthly_limit, b.grace_percent, b.spent, b.reserved,"
    " (SELECT count(*) FROM budget_jobs j WHERE j.budget_id = b.id) AS jobs,"
    " (SELECT count(*) FROM budget_decisions d WHERE d.budget_id = b.id AND d.kind = 'override') AS overrides,"
    " (SELECT string_agg(t.percent::text, ';' ORDER BY t.percent) FROM budget_thresholds t"
    "  WHERE t.budget_id = b.id) AS thresholds"
    " FROM budgets b WHERE b.team = %(team)s AND (%(month)s::text IS NULL OR b.month = %(month)s) ORDER BY b.month")
MONTHLY_COLUMNS = ("month", "limit", "grace_percent", "spent", "reserved", "forecast", "remaining",
                   "utilisation_percent", "jobs", "overrides", "thresholds_crossed")


def monthly_rows(conn: psycopg.Connection, query: Query) -> Iterator[dict[str, Any]]:
    """Forecast = spend + what active jobs still hold reserved (their estimated maximum)."""
    with conn.cursor(row_factory=dict_row) as cur:
        for b in cur.stream(MONTHS, {"team": query.team, "month": query.month}):
            limit, spent, reserved = cents(b["monthly_limit"]), cents(b["spent"]), cents(b["reserved"])
            yield {"month": b["month"], "limit": limit, "grace_percent": b["grace_percent"], "spent": spent,
                   "reserved": reserved, "forecast": spent + reserved, "remaining": limit - spent - reserved,
                   "utilisation_percent": percent(b["spent"], b["monthly_limit"]), "jobs": b["jobs"],
                   "overrides": b["overrides"], "thresholds_crossed": b["thresholds"] or ""}


# --- attribution by client and project ------------------------------------------------------

ATTRIBUTION_COLUMNS = ("client", "project", "jobs", "total_cost", "average_cost", "first_month", "last_month")


def attribution_rows(conn: psycopg.Connection, query: Query) -> Iterator[dict[str, Any]]:
    """Per (client, project), highest cost first; the groups add up to the months' spend."""
    groups: dict[tuple[str | None, str | None], dict[str, Any]] = {}
    for job, money in charged_jobs(conn, query):
        group = groups.setdefault((job["client"], job["project"]), {
            "client": job["client"], "project": job["project"], "jobs": 0, "total_cost": Decimal("0.00"),
            "first_month": job["month"], "last_month": job["month"]})
        group["jobs"] += 1
        group["total_cost"] += money["total"]
        group["last_month"] = job["month"]
    for group in sorted(groups.values(), key=lambda g: (-g["total_cost"], g["client"] or "", g["project"] or "")):
        yield group | {"average_cost": cents(group["total_cost"] / group["jobs"])}


# --- spot savings ---------------------------------------------------------------------------

SAVINGS_COLUMNS = ("month", "job_id", "name", "client", "project", "pod_hours", "interruptions", "spot_cost",
                   "overhead_cost", "on_demand_rate", "on_demand_cost", "savings", "savings_percent")


def savings_rows(conn: psycopg.Connection, query: Query) -> Iterator[dict[str, Any]]:
    """Spot jobs against what on-demand would have cost: their pod hours less the work an
    interruption made them redo (an on-demand pod is not preempted), at `query.on_demand_rate`.
    The spot cost includes that redone work (`overhead_cost`), so the savings are net of it."""
    for job, money in charged_jobs(conn, query):
        if job["gpu_tier"] != "spot":
            continue
        on_demand = cents((job["pod_seconds"] - job["lost_seconds"]) * query.on_demand_rate / SECONDS_PER_HOUR)
        yield {"month": job["month"], "job_id": str(job["job_id"]), "name": job["name"], "client": job["client"],
               "project": job["project"], "pod_hours": hours(job["pod_seconds"]),
               "interruptions": job["interruptions"], "spot_cost": money["total"], "overhead_cost": money["lost"],
               "on_demand_rate": query.on_demand_rate, "on_demand_cost": on_demand,
               "savings": on_demand - money["total"], "savings_percent": percent(on_demand - money["total"], on_demand)}


# --- our ledger against the provider's bill (issue #16) ----------------------------------------

BILLING_COLUMNS = ("month", "job_id", "name", "client", "project", "pods", "pods_billed", "ledger_cost",
                   "billed_cost", "difference", "allowed_difference", "flagged")


def billing_rows(conn: psycopg.Connection, query: Query) -> Iterator[dict[str, Any]]:
    """Jobs whose pods' bills the provider has reported (RunPod: TrainingJob.BillingReconciled): our
    ledger for those pods (exact, to the cent) beside what the provider billed for them; `flagged` when
    the difference exceeds `query.tolerance`."""
    for job, _ in charged_jobs(conn, query):
        billed = {pod_id: Decimal(amount) for pod_id, amount in (job["billed_pods"] or {}).items()}
        if not billed:
            continue
        pods = [pod_from_json(p) for p in job["pods"]]
        ours = ledger(tuple(p for p in pods if p.pod_id in billed), job["as_of"]).total_cost
        matched = Reconciliation(cents(ours), cents(sum(billed.values(), Decimal(0))))
        yield {"month": job["month"], "job_id": str(job["job_id"]), "name": job["name"], "client": job["client"],
               "project": job["project"], "pods": len(pods), "pods_billed": len(billed),
               "ledger_cost": matched.ledger, "billed_cost": matched.billed, "difference": matched.difference,
               "allowed_difference": cents(query.tolerance.allowed(matched.ledger)),
               "flagged": matched.flagged(query.tolerance)}


BILLING_MONTHLY_COLUMNS = ("month", "jobs", "ledger_cost", "billed_cost", "difference", "flagged_jobs")


def billing_monthly_rows(conn: psycopg.Connection, query: Query) -> Iterator[dict[str, Any]]:
    """`billing` summed per budget month."""
    for month, rows in groupby(billing_rows(conn, query), key=itemgetter("month")):
        yield billing_summary(month, list(rows))


def billing_summary(month: str, jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """One month's `billing` rows summed: our ledger, the provider's bill, the difference, how many flagged."""
    return {"month": month, "jobs": len(jobs), "ledger_cost": sum((r["ledger_cost"] for r in jobs), ZERO),
            "billed_cost": sum((r["billed_cost"] for r in jobs), ZERO),
            "difference": sum((r["difference"] for r in jobs), ZERO),
            "flagged_jobs": sum(1 for r in jobs if r["flagged"])}


# --- the reports ----------------------------------------------------------------------------

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Report:
    name: str
    columns: tuple[str, ...]
    rows: Callable[[psycopg.Connection, Query], Iterator[dict[str, Any]]]
    summed: dict[str, Decimal | int]  # the columns whose sums close a JSON export, with their zero
    derived: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # totals computed from those sums

    def totals(self, sums: dict[str, Any]) -> dict[str, Any]:
        return sums | (self.derived(sums) if self.derived else {})


REPORTS: dict[str, Report] = {r.name: r for r in (
    Report("costs", COST_COLUMNS, cost_rows, {"pod_hours": ZERO, "useful_cost": ZERO, "lost_cost": ZERO,
                                              "setup_cost": ZERO, "judging_cost": ZERO, "total_cost": ZERO,
                                              "interruptions": 0}),
    Report("monthly", MONTHLY_COLUMNS, monthly_rows,
           {"spent": ZERO, "reserved": ZERO, "forecast": ZERO, "jobs": 0, "overrides": 0}),
    Report("attribution", ATTRIBUTION_COLUMNS, attribution_rows, {"jobs": 0, "total_cost": ZERO}),
    Report("savings", SAVINGS_COLUMNS, savings_rows,
           {"pod_hours": ZERO, "interruptions": 0, "spot_cost": ZERO, "overhead_cost": ZERO, "on_demand_cost": ZERO,
            "savings": ZERO},
           lambda sums: {"savings_percent": percent(sums["savings"], sums["on_demand_cost"])}),
    Report("billing", BILLING_COLUMNS, billing_rows,
           {"pods": 0, "pods_billed": 0, "ledger_cost": ZERO, "billed_cost": ZERO, "difference": ZERO}),
    Report("billing_monthly", BILLING_MONTHLY_COLUMNS, billing_monthly_rows,
           {"jobs": 0, "ledger_cost": ZERO, "billed_cost": ZERO, "difference": ZERO, "flagged_jobs": 0}),
)}
