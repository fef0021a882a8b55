"""Finance read models against real PostgreSQL: a month generated through the real application
reconciles to the cent (per-job rows = monthly total = the Budget's spend, each job = its ledger);
redelivery changes nothing; a rebuild equals live application row by row; budget dashboard and
analytics figures."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from domain.aggregates.budget import Budget
from domain.billing import BillingTolerance
from domain.cost_ledger import CENT, SECONDS_PER_HOUR
from domain.money import cents
from infra.eventstore import EventStore
from projections.analytics import by_gpu_tier, by_preset, failure_types, team_activity
from projections.base import OutOfOrderError, process
from projections.budget_dashboard import budget_dashboard
from projections.budgets import BudgetsProjection
from projections.finance import (
    Query,
    attribution_rows,
    billing_monthly_rows,
    billing_rows,
    cost_rows,
    monthly_rows,
    savings_rows,
)
from projections.job_costs import JobCostsProjection
from projections.runner import rebuild
from tests.factories import configuration, job_fields
from tests.finance_month import OVERRIDE, POLICY, SPOT, Month, add_job, busy_month, pod_steps, run_steps, utc
from tests.helpers import pipeline_process, stop_process, wait_for
from tests.integration.test_event_log import _declare

PROJECTIONS = (BudgetsProjection(), JobCostsProjection())
TABLES = ("budgets", "budget_jobs", "budget_spend", "budget_thresholds", "budget_decisions", "job_costs")
NOVEMBER, OCTOBER = Query("ml", "2026-11"), Query("ml", "2026-10")


@dataclass
class Projected:
    store: EventStore
    month: Month
    conn: psycopg.Connection


def apply_all(conn: psycopg.Connection, store: EventStore) -> list[bool]:
    """Every stored event through both projections, in log order, as the live consumers apply them."""
    return [process(conn, projection, "pipeline", n.id, store.app.mapper.to_domain_event(n))
            for projection in PROJECTIONS
            for n in store.app.recorder.select_notifications(1, 10_000, topics=projection.topics)]


def tables(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in TABLES}  # noqa: S608


@pytest.fixture
def projected(migrated: str) -> Iterator[Projected]:
    store = EventStore.open(migrated, policy=POLICY)
    month = busy_month(store.app)
    with psycopg.connect(migrated) as conn:
        assert all(apply_all(conn, store))
        yield Projected(store, month, conn)
    store.close()


def test_a_month_reconciles_to_the_cent_with_the_budget_and_every_job_ledger(projected: Projected) -> None:
    app, month, conn = projected.store.app, projected.month, projected.conn
    budget = app.budget("2026-11")
    rows = list(cost_rows(conn, NOVEMBER))
    [monthly] = list(monthly_rows(conn, NOVEMBER))

    assert [row["job_id"] for row in rows] == [str(j) for j in month.november]  # in the month, by creation
    assert sum(row["total_cost"] for row in rows) == monthly["spent"] == cents(budget.charged) == Decimal("83.01")
    # Rounding each job on its own would lose a cent here: the month is rounded once and apportioned.
    assert sum(cents(spent) for spent in budget.spent_by_job.values()) == Decimal("83.00")
    for row in rows:
        job = app.get_job(row["job_id"])
        exact = job.cost(job.updated_at)
        assert exact.total_cost == budget.spent_by_job.get(row["job_id"], Decimal(0))  # all of it charged
        assert abs(row["total_cost"] - exact.total_cost) < CENT
        assert row["useful_cost"] + row["lost_cost"] + row["setup_cost"] == row["total_cost"]
        for part, exact_part in (("useful_cost", exact.useful_cost), ("lost_cost", exact.lost_cost),
                                 ("setup_cost", exact.setup_cost)):
            assert abs(row[part] - exact_part) < CENT
        assert row["pod_hours"] == cents(exact.total_seconds / SECONDS_PER_HOUR)
    assert sum(g["total_cost"] for g in attribution_rows(conn, NOVEMBER)) == monthly["spent"]
    spot = [r for r in rows if r["gpu_tier"] == "spot"]
    assert sum(s["spot_cost"] for s in savings_rows(conn, NOVEMBER)) == sum(r["total_cost"] for r in spot)

    october = list(cost_rows(conn, OCTOBER))  # queued at 22:00 on Oct 31 in New York, run on Nov 1 (UTC)
    assert [r["job_id"] for r in october] == [str(month.october)]
    assert october[0]["total_cost"] == cents(app.budget("2026-10").charged) == Decimal("7.37")
    assert str(month.never_started) not in {r["job_id"] for r in cost_rows(conn, Query("ml"))}


def test_the_projected_ledger_is_the_aggregates_own(projected: Projected) -> None:
    app, month, conn = projected.store.app, projected.month, projected.conn
    for job_id in (*month.november, month.october, month.never_started):
        job = app.get_job(job_id)
        row = JobCostsProjection.load(conn.cursor(), job_id)
        assert tuple(row.pods.values()) == tuple(job.pods.values())
        exact = job.cost(job.updated_at)
        stored = conn.execute("SELECT useful_seconds, lost_seconds, setup_seconds, useful_cost, lost_cost,"
                              " setup_cost, total_cost, status, interruptions FROM job_costs WHERE job_id = %s",
                              (job_id,)).fetchone()
        assert stored == (exact.useful_seconds, exact.lost_seconds, exact.setup_seconds, exact.useful_cost,
                          exact.lost_cost, exact.setup_cost, exact.total_cost, job.status.value, job.interruptions)
    recovered = conn.execute("SELECT hourly_rates, gpu_tier, client, project, final_loss FROM job_costs"
                             " WHERE job_id = %s", (month.recovered_spot,)).fetchone()
    assert recovered == ([Decimal("2.49"), Decimal("2.61")], "spot", "Acme Financial", "Q1 Advisors", 0.312)


def test_the_budget_read_model_mirrors_the_aggregate(projected: Projected) -> None:
    app, month, conn = projected.store.app, projected.month, projected.conn
    budget = app.budget("2026-11")
    spent, reserved, limit = conn.execute("SELECT spent, reserved, monthly_limit FROM budgets WHERE id = %s",
                                          (budget.id,)).fetchone()
    # The aggregate sums at Decimal's 28 significant digits, PostgreSQL exactly: equal far below a cent.
    assert abs(spent - budget.charged) < Decimal("1e-20") and (reserved, limit) == (budget.reserved, Decimal(150))
    jobs = dict(conn.execute("SELECT job_id::text, spent FROM budget_jobs WHERE budget_id = %s", (budget.id,)))
    assert jobs == {job_id: budget.spent_by_job.get(job_id, Decimal(0)) for job_id in map(str, month.november)}
    decisions = conn.execute("SELECT kind, actor, old_limit, new_limit FROM budget_decisions WHERE budget_id = %s"
                             " ORDER BY version", (budget.id,)).fetchall()
    assert decisions == [("override", "dave", None, None),
                         ("limit_increase_requested", "alice", None, Decimal(200)),
                         ("limit_increase_denied", "dave", None, None),
                         ("limit_changed", "dave", Decimal(100), Decimal(150))]
    assert conn.execute("SELECT justification FROM budget_decisions WHERE kind = 'override'").fetchone() == (OVERRIDE,)
    assert conn.execute("SELECT percent FROM budget_thresholds").fetchall() == [(80,)]


def test_a_running_job_holds_its_reservation_in_the_forecast(migrated: str) -> None:
    store = EventStore.open(migrated, policy=POLICY)
    job_id = add_job(store.app, "Still training", "alice", utc(11, 3, 9, 0), "spot", SPOT, Decimal(20), "balanced")
    run_steps(store.app, job_id, [*pod_steps("pod-1", 1, SPOT, utc(11, 3, 9, 1), utc(11, 3, 9, 5)),
                                  (utc(11, 3, 10, 1), None)])
    with psycopg.connect(migrated) as conn:
        apply_all(conn, store)
        [monthly] = list(monthly_rows(conn, NOVEMBER))
        budget = store.app.budget("2026-11")
        assert (monthly["spent"], monthly["reserved"]) == (cents(budget.charged), cents(budget.reserved))
        assert monthly["forecast"] == monthly["spent"] + monthly["reserved"] == Decimal("20.00")
        assert monthly["remaining"] == Decimal("80.00")
    store.close()


def test_duplicates_and_redelivered_events_change_nothing(projected: Projected, migrated: str) -> None:
    conn, store = projected.conn, projected.store
    before = tables(conn)
    assert not any(apply_all(conn, store))
    assert tables(conn) == before

    job_id = store.app.create_job(**job_fields())
    store.app.configure_job(job_id, **configuration())
    created, configured = store.app.recorder.select_events(job_id)
    event = store.app.mapper.to_domain_event(configured)
    with pytest.raises(OutOfOrderError):  # a gap: retried later by the consumer, nothing written
        process(conn, PROJECTIONS[1], "pipeline", 10**6, event)
    assert tables(conn) == before


def test_a_rebuild_equals_live_application_row_by_row(projected: Projected) -> None:
    conn, store = projected.conn, projected.store
    live = tables(conn)
    for projection in PROJECTIONS:
        assert rebuild(conn, projection, {"pipeline": store.app}) > 0
    assert tables(conn) == live
    assert live["job_costs"] and live["budget_spend"]


def test_the_live_consumers_build_what_a_rebuild_builds(migrated: str, nats_server, tmp_path: Path) -> None:
    asyncio.run(_declare(nats_server.url))
    env = {"DATABASE_URL": migrated, "NATS_URL": nats_server.url}
    store = EventStore.open(migrated, policy=POLICY)
    busy_month(store.app)
    last = {p.name: store.app.recorder.select_notifications(1, 10_000, topics=p.topics)[-1].id for p in PROJECTIONS}
    projections = pipeline_process(["projections", "run", "budgets", "job_costs"], env, tmp_path / "projections.log")
    relay = pipeline_process(["relay"], env, tmp_path / "relay.log")
    try:
        with psycopg.connect(migrated, autocommit=True) as conn:
            wait_for(lambda: dict(conn.execute("SELECT projection, notification_id FROM projection_positions"))
                     == last, timeout=60, message="both finance projections caught up")
            live = tables(conn)
        assert stop_process(projections) == 0
        with psycopg.connect(migrated) as conn:
            for projection in PROJECTIONS:
                rebuild(conn, projection, {"pipeline": store.app})
            assert tables(conn) == live
    finally:
        stop_process(relay)
        stop_process(projections)
        store.close()


def test_the_budget_dashboard_adds_up_by_day_and_by_job_in_the_team_time_zone(projected: Projected) -> None:
    month, conn = projected.month, projected.conn
    dashboard = budget_dashboard(conn, "ml", "2026-11", POLICY.time_zone)
    summary = dashboard["summary"]
    assert (summary["spent"], summary["limit"], summary["reserved"], summary["remaining"]) == (
        Decimal("83.01"), Decimal("150.00"), Decimal("0.00"), Decimal("66.99"))
    assert summary["jobs"] == {"total": 6, "completed": 3, "failed": 1, "cancelled": 2, "active": 0}
    assert summary["average_cost_per_job"] == cents(projected.store.app.budget("2026-11").charged / 6)
    days = dashboard["daily"]
    assert days[-1]["cumulative"] == sum(d["spend"] for d in days) == summary["spent"]
    # The recovered job's spend at 03:13 UTC on Nov 6 is still Nov 5 in New York.
    assert [d["day"] for d in days] == ["2026-11-03", "2026-11-05", "2026-11-10", "2026-11-12", "2026-11-20"]
    jobs = dashboard["jobs"]
    assert sum(j["spent"] for j in jobs) == summary["spent"]
    assert [j["job_id"] for j in jobs][:2] == [month.completed_on_demand, month.cancelled_on_demand]
    assert jobs[0]["percent_of_budget"] == Decimal("24.1")
    overridden = next(j for j in jobs if j["job_id"] == month.overridden)
    assert overridden["overridden"] and overridden["released"] == Decimal("120.00")
    assert [t["percent"] for t in dashboard["thresholds"]] == [80]
    assert budget_dashboard(conn, "ml", "2026-12", POLICY.time_zone) is None
    assert Budget.id_for("ml", "2026-11") == projected.store.app.budget("2026-11").id


def test_analytics_by_preset_tier_failure_and_creator(projected: Projected) -> None:
    conn, month = projected.conn, projected.month

    def cost(*jobs: object) -> Decimal:
        return sum((projected.store.app.get_job(j).cost(utc(12, 1, 0, 0)).total_cost for j in jobs), Decimal(0))

    presets = {r["preset"]: r for r in by_preset(conn, "ml", "2026-11")}
    assert list(presets) == ["conservative", "balanced", "aggressive"]
    assert (presets["balanced"]["jobs"], presets["balanced"]["completed"], presets["balanced"]["failed"],
            presets["balanced"]["cancelled"], presets["balanced"]["success_rate"]) == (3, 1, 1, 1, Decimal("50.0"))
    assert presets["conservative"]["success_rate"] == Decimal("100.0")
    assert presets["aggressive"]["success_rate"] is None  # cancelled only: no outcome to rate
    assert presets["conservative"]["average_cost"] == cents(cost(month.recovered_spot, month.completed_on_demand) / 2)
    assert presets["balanced"]["average_final_loss"] == 0.312
    assert presets["balanced"]["average_duration_hours"] == Decimal("4.85")
    everything = {r["preset"]: r["jobs"] for r in by_preset(conn, "ml")}
    assert everything == {"conservative": 2, "balanced": 5, "aggressive": 1}  # October's and the unstarted too
    tiers = {r["gpu_tier"]: r for r in by_gpu_tier(conn, "ml", "2026-11")}
    assert (tiers["spot"]["jobs"], tiers["spot"]["interruptions"], tiers["spot"]["interrupted_jobs"],
            tiers["spot"]["overhead_cost"]) == (
        3, 1, 1, cents(projected.store.app.get_job(month.recovered_spot).cost(utc(12, 1, 0, 0)).lost_cost))
    assert tiers["on_demand"]["share_of_jobs"] == Decimal("50.0")
    assert failure_types(conn, "ml", "2026-11") == [
        {"failure_type": "oom", "jobs": 1, "share": Decimal("100.0"), "presets": ["balanced"], "gpu_tiers": ["spot"]}]
    team = {r["created_by"]: r for r in team_activity(conn, "ml", "2026-11")}
    assert list(team) == ["alice", "bob", "carol", "dave"]
    assert (team["bob"]["jobs"], team["bob"]["completed"], team["bob"]["total_cost"]) == (
        2, 1, cents(cost(month.cancelled_on_demand, month.completed_on_demand)))


def test_runpods_bill_stands_beside_our_ledger_per_job_and_per_month_and_a_difference_past_the_tolerance_is_flagged(
        projected: Projected) -> None:
    """Issue #16: two pods' bills were read back (tests/finance_month.py `billed`): job e's within the tolerance,
    job c's $3.00 over our ledger."""
    cancelled, completed = projected.month.cancelled_on_demand, projected.month.completed_on_demand
    rows = {row["job_id"]: row for row in billing_rows(projected.conn, NOVEMBER)}
    assert set(rows) == {str(cancelled), str(completed)}
    c, e = rows[str(cancelled)], rows[str(completed)]
    assert (c["pods"], c["pods_billed"], c["difference"], c["flagged"]) == (1, 1, Decimal("3.00"), True)
    assert (e["difference"], e["flagged"]) == (Decimal("0.12"), False)
    for row in (c, e):
        assert row["billed_cost"] - row["ledger_cost"] == row["difference"]
        assert row["allowed_difference"] == max(Decimal("0.50"), cents(row["ledger_cost"] * 2 / 100))
    ledger_c = cents(projected.store.app.get_job(cancelled).cost(utc(11, 30, 0, 0)).total_cost)
    assert c["ledger_cost"] == ledger_c  # our ledger: the aggregate's own figure

    (summary,) = billing_monthly_rows(projected.conn, NOVEMBER)
    assert summary == {"month": "2026-11", "jobs": 2, "ledger_cost": c["ledger_cost"] + e["ledger_cost"],
                       "billed_cost": c["billed_cost"] + e["billed_cost"], "difference": Decimal("3.12"),
                       "flagged_jobs": 1}
    loose = Query("ml", "2026-11", tolerance=BillingTolerance(Decimal(5), Decimal(0)))
    assert not any(row["flagged"] for row in billing_rows(projected.conn, loose))
    assert list(billing_rows(projected.conn, OCTOBER)) == []
