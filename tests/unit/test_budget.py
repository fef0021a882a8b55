"""Budget rules (FR1.2.2, FR7.2.2) and their invariants under random command sequences."""

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.aggregates.budget import (
    Budget,
    BudgetExceededError,
    InvalidBudgetCommandError,
    PermissionDeniedError,
)
from domain.applications import BudgetPolicy, Pipeline
from domain.budget_month import budget_month
from domain.cost_ledger import allocate_cents
from tests.factories import T0

D = Decimal


def budget(limit: str = "500") -> Budget:
    return Budget.open("ml", "2026-11", D(limit), T0)


def test_remaining_is_limit_minus_charges_minus_reservations() -> None:
    b = budget()
    job = uuid.uuid4()
    b.reserve(job, D("100"), "alice", "member", T0)
    b.record_spend(job, D("30"), T0)
    assert (b.charged, b.reserved, b.remaining) == (D("30"), D("70"), D("400"))
    b.release(job, T0)
    assert (b.reserved, b.remaining) == (D(0), D("470"))


def test_a_reservation_over_the_limit_plus_grace_is_refused_with_the_spec_message() -> None:
    b = budget()
    b.reserve(uuid.uuid4(), D("450"), "alice", "member", T0)
    with pytest.raises(BudgetExceededError) as caught:
        b.reserve(uuid.uuid4(), D("105"), "alice", "member", T0)
    assert str(caught.value) == ("Estimated cost ($105.00) exceeds remaining monthly budget ($50.00). "
                                 "Adjust configuration or increase budget limit.")
    assert caught.value.figures == ("❌ Budget Exceeded - Estimated Cost: $105.00, Remaining Budget: $50.00, "
                                    "Shortfall: $55.00")
    assert len(b.reservations) == 1


def test_within_the_grace_margin_a_job_proceeds_with_the_spec_warning() -> None:
    warnings = budget().reserve(uuid.uuid4(), D("525"), "alice", "member", T0)
    assert warnings == ["⚠ Slight Overage: This job will exceed budget by 5% ($525.00 total vs $500.00 limit). "
                        "Proceeding allowed as within 10% grace period."]


def test_only_a_manager_with_a_justification_may_override() -> None:
    b = budget()
    with pytest.raises(PermissionDeniedError):
        b.reserve(uuid.uuid4(), D("700"), "alice", "member", T0, "Client deadline needs this run")
    with pytest.raises(InvalidBudgetCommandError, match="at least 20 characters"):
        b.reserve(uuid.uuid4(), D("700"), "carol", "manager", T0, "urgent")
    b.reserve(uuid.uuid4(), D("700"), "carol", "manager", T0, "Client deadline needs this run")
    override = [e for e in b.collect_events() if isinstance(e, Budget.OverrideRecorded)]
    assert [(o.actor, o.over_by, o.justification) for o in override] == \
        [("carol", D("200"), "Client deadline needs this run")]


def test_a_managers_override_is_told_as_an_override_not_as_a_grace_overage() -> None:
    b = budget()
    warnings = b.reserve(uuid.uuid4(), D("700"), "carol", "manager", T0, "Client deadline needs this run")
    assert warnings == ["⚠ Manager Override: This job exceeds the monthly budget by 40% ($700.00 total vs "
                        "$500.00 limit). Proceeding on carol's override; the justification is recorded."]


def test_a_refusal_past_the_limit_never_quotes_a_negative_remaining_budget() -> None:
    b = budget()
    b.reserve(uuid.uuid4(), D("545"), "alice", "member", T0)  # within grace: $45 past the limit
    with pytest.raises(BudgetExceededError) as caught:
        b.reserve(uuid.uuid4(), D("9.09"), "alice", "member", T0)
    assert str(caught.value) == ("Estimated cost ($9.09) exceeds remaining monthly budget ($0.00: already $45.00 "
                                 "over the limit). Adjust configuration or increase budget limit.")
    assert caught.value.figures == ("❌ Budget Exceeded - Estimated Cost: $9.09, Remaining Budget: $0.00 (already "
                                    "$45.00 over the limit), Shortfall: $54.09")


def test_a_budget_that_does_not_block_new_jobs_lets_one_past_the_grace_margin_start_and_records_it() -> None:
    b = budget()
    with pytest.raises(PermissionDeniedError):
        b.set_blocking(False, "alice", "member", "We invoice the client for overruns", T0)
    with pytest.raises(InvalidBudgetCommandError, match="at least 20 characters"):
        b.set_blocking(False, "carol", "manager", "client pays", T0)
    b.set_blocking(False, "carol", "manager", "  We invoice the client for overruns  ", T0)
    b.set_blocking(False, "carol", "manager", "We invoice the client for overruns", T0)  # already off: nothing
    job = uuid.uuid4()
    warnings = b.reserve(job, D("700"), "alice", "member", T0)  # no override asked of a member
    assert warnings == ["⚠ Over Budget: This job will exceed budget by 40% ($700.00 total vs $500.00 limit). "
                        "Proceeding allowed because new jobs are not blocked when the budget is exceeded "
                        "(Budget Controls)."]
    events = b.collect_events()
    changed = [e for e in events if isinstance(e, Budget.BlockingChanged)]
    assert [(e.block_new_jobs, e.actor, e.justification) for e in changed] == [
        (False, "carol", "We invoice the client for overruns")]
    allowed = [e for e in events if isinstance(e, Budget.OverLimitAllowed)]
    assert [(e.job_id, e.amount, e.over_by, e.actor) for e in allowed] == [(job, D("700"), D("200"), "alice")]
    assert not any(isinstance(e, Budget.OverrideRecorded) for e in events)
    assert b.reservations == {str(job): D("700")}
    # A zero limit warns too, without a percentage.
    zero = Budget.open("ml", "2026-12", D(0), T0)
    zero.set_blocking(False, "carol", "manager", "We invoice the client for overruns", T0)
    assert zero.reserve(uuid.uuid4(), D("5"), "alice", "member", T0) == [
        "⚠ Over Budget: This job will exceed budget ($5.00 total vs $0.00 limit). Proceeding allowed because new "
        "jobs are not blocked when the budget is exceeded (Budget Controls)."]
    # On again, a start past the grace margin is refused.
    b.set_blocking(True, "carol", "manager", "Back to hard limits for December", T0)
    with pytest.raises(BudgetExceededError):
        b.reserve(uuid.uuid4(), D("10"), "alice", "member", T0)


def test_a_larger_reservation_past_the_grace_margin_follows_the_blocking_setting_too() -> None:
    b = budget()
    job = uuid.uuid4()
    b.reserve(job, D("400"), "alice", "member", T0)
    with pytest.raises(BudgetExceededError):
        b.change_reservation(job, D("600"), "alice", "member", T0)
    b.set_blocking(False, "carol", "manager", "We invoice the client for overruns", T0)
    assert b.change_reservation(job, D("600"), "alice", "member", T0)[0].startswith("⚠ Over Budget")
    allowed = [e for e in b.collect_events() if isinstance(e, Budget.OverLimitAllowed)]
    assert [(e.amount, e.over_by) for e in allowed] == [(D("200"), D("100"))]


def test_a_new_month_keeps_the_budget_controls_of_the_latest_budget_before_it() -> None:
    app = Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=BudgetPolicy(team="ml"))
    app.set_budget_blocking("2026-11", False, "carol", "manager", "We invoice the client for overruns", T0)
    december = datetime(2026, 12, 2, 9, tzinfo=timezone.utc)
    app.change_limit("2026-12", D(600), "carol", "manager", "December has the year-end client deliveries to train",
                     december)
    carried = app.budget("2026-12")
    assert carried.block_new_jobs is False
    events = [app.mapper.to_domain_event(item) for item in app.recorder.select_events(carried.id)]
    change = [e for e in events if isinstance(e, Budget.BlockingChanged)]
    assert [(e.block_new_jobs, e.actor, e.justification) for e in change] == [
        (False, "system", "Carried over from 2026-11")]
    # A month after a month without a budget takes the latest budget's of the year before it (the
    # nearest: December, blocking again, not November)…
    app.set_budget_blocking("2026-12", True, "carol", "manager", "Back to hard limits for the new year", december)
    app.change_limit("2027-02", D(600), "carol", "manager", "February has the year-end client deliveries to train",
                     datetime(2027, 2, 1, 9, tzinfo=timezone.utc))
    assert app.budget("2027-02").block_new_jobs is True
    app.set_budget_blocking("2027-02", False, "carol", "manager", "Soft limits again for the spring pilots", december)
    app.change_limit("2027-04", D(600), "carol", "manager",
                     "April has the spring client deliveries of the year to train",
                     datetime(2027, 4, 1, 9, tzinfo=timezone.utc))
    assert app.budget("2027-04").block_new_jobs is False
    # …and one with no budget in the twelve months before starts from the default: blocking.
    app.change_limit("2028-05", D(600), "carol", "manager", "May has the first client deliveries of the year to train",
                     datetime(2028, 5, 1, 9, tzinfo=timezone.utc))
    assert app.budget("2028-05").block_new_jobs is True


def test_thresholds_fire_once_each_per_month() -> None:
    b = budget()
    job = uuid.uuid4()
    b.reserve(job, D("540"), "alice", "member", T0)
    for total in ("100", "400", "400", "460", "476", "505", "520"):
        b.record_spend(job, D(total), T0)
    crossed = [(e.percent, e.spent) for e in b.collect_events() if isinstance(e, Budget.ThresholdCrossed)]
    assert crossed == [(80, D("400")), (90, D("460")), (95, D("476")), (100, D("505"))]


def overruns(b: Budget) -> list[Budget.OverrunForecast]:
    return [e for e in b.collect_events() if isinstance(e, Budget.OverrunForecast)]


def test_active_jobs_that_may_exceed_the_budget_are_recorded_once_a_month() -> None:
    """FR7.2.2 "Budget exceeded during active job": spend plus what active jobs still hold."""
    b = budget()
    first, second = uuid.uuid4(), uuid.uuid4()
    b.reserve(first, D("300"), "alice", "member", T0)
    b.record_spend(first, D("300"), T0)  # within its estimate: the forecast stays at $300
    assert overruns(b) == []
    b.reserve(second, D("225"), "alice", "member", T0 + timedelta(hours=1))  # within the grace margin
    [event] = overruns(b)
    assert (event.spent, event.reserved, event.limit, event.active_jobs) == (D("300"), D("225"), D("500"), 2)
    assert event.at == T0 + timedelta(hours=1)
    b.record_spend(first, D("400"), T0 + timedelta(hours=2))  # past its estimate: still the same month
    assert overruns(b) == []


def test_a_job_spending_past_its_estimate_or_a_lower_limit_can_start_the_overrun() -> None:
    b = budget()
    job = uuid.uuid4()
    b.reserve(job, D("100"), "alice", "member", T0)
    b.record_spend(job, D("450"), T0)  # 100 % is not reached: $450 of $500
    assert overruns(b) == []
    b.record_spend(job, D("520"), T0)
    [event] = overruns(b)
    assert (event.spent, event.reserved, event.active_jobs) == (D("520"), D(0), 1)

    lowered = budget()
    job = uuid.uuid4()
    lowered.reserve(job, D("300"), "alice", "member", T0)
    lowered.change_limit(D("250"), "carol", "manager", "Finance cut the training budget for the quarter end", T0)
    [event] = overruns(lowered)
    assert (event.reserved, event.limit) == (D("300"), D("250"))


def test_no_overrun_without_active_jobs() -> None:
    b = budget()
    job = uuid.uuid4()
    b.reserve(job, D("300"), "alice", "member", T0)
    b.record_spend(job, D("200"), T0)
    b.release(job, T0)
    b.change_limit(D("150"), "carol", "manager", "Finance cut the training budget for the quarter end", T0)
    assert overruns(b) == []


def test_a_repeated_or_older_spend_report_changes_nothing() -> None:
    b = budget()
    job = uuid.uuid4()
    b.record_spend(job, D("10"), T0)
    version = b.version
    b.record_spend(job, D("10"), T0)
    b.record_spend(job, D("9"), T0)
    assert (b.version, b.charged) == (version, D("10"))


def test_a_limit_increase_needs_a_50_character_justification_and_another_managers_approval() -> None:
    b = budget()
    with pytest.raises(InvalidBudgetCommandError, match="at least 50 characters"):
        b.request_limit_increase(uuid.uuid4(), D("750"), "need more", "alice", T0)
    request = uuid.uuid4()
    b.request_limit_increase(request, D("750"), "Q1 client delivery needs two extra Balanced runs this month",
                             "alice", T0)
    with pytest.raises(PermissionDeniedError):
        b.decide_limit_increase(request, True, "bob", "member", T0)
    b.decide_limit_increase(request, True, "carol", "manager", T0)
    assert b.limit == D("750")
    with pytest.raises(InvalidBudgetCommandError, match="already approved"):
        b.decide_limit_increase(request, False, "carol", "manager", T0)


def test_an_outdated_request_cannot_lower_the_limit() -> None:
    b = budget()
    request = uuid.uuid4()
    b.request_limit_increase(request, D("1000"), "j" * 50, "alice", T0)
    b.change_limit(D("3000"), "carol", "admin", "Annual planning raised the whole team's monthly limit", T0)
    with pytest.raises(InvalidBudgetCommandError, match="outdated"):
        b.decide_limit_increase(request, True, "dave", "manager", T0)
    assert b.limit == D("3000")


def test_a_denied_request_leaves_the_limit_alone() -> None:
    b = budget()
    request = uuid.uuid4()
    b.request_limit_increase(request, D("900"), "j" * 50, "alice", T0)
    b.decide_limit_increase(request, False, "carol", "admin", T0, "Not this month")
    assert b.limit == D("500") and b.requests[str(request)]["status"] == "denied"


def test_the_budget_month_is_the_calendar_month_in_the_team_time_zone() -> None:
    late = datetime(2026, 12, 1, 3, 0, tzinfo=timezone.utc)
    assert budget_month(late, "UTC") == "2026-12"
    assert budget_month(late, "America/Los_Angeles") == "2026-11"


money = st.decimals(min_value=0, max_value=400, places=2, allow_nan=False, allow_infinity=False)
command = st.one_of(
    st.tuples(st.just("reserve"), st.integers(0, 5), money),
    st.tuples(st.just("override"), st.integers(0, 5), money),
    st.tuples(st.just("spend"), st.integers(0, 5), money),
    st.tuples(st.just("release"), st.integers(0, 5), money),
    st.tuples(st.sampled_from(["block", "unblock"]), st.just(0), st.just(D(0))),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(command, max_size=40))
def test_no_reservation_is_admitted_past_limit_plus_grace_without_an_override(commands) -> None:
    b = budget()
    jobs = [uuid.uuid4() for _ in range(6)]
    spent = {j: D(0) for j in jobs}
    overrun = False  # jobs active and spend + what they hold over the limit, after some command
    for kind, index, amount in commands:
        job = jobs[index]
        try:
            if kind == "reserve":
                before, recorded = dict(b.reservations), len(b.pending_events)
                b.reserve(job, amount, "alice", "member", T0)
                if b.reservations != before and b.charged + b.reserved > b.ceiling:
                    # admitted past limit + grace without an override: only when not blocking, recorded
                    assert not b.block_new_jobs
                    assert any(isinstance(e, Budget.OverLimitAllowed) and e.job_id == job
                               for e in b.pending_events[recorded:])
            elif kind in ("block", "unblock"):
                b.set_blocking(kind == "block", "carol", "manager", "Finance agreed to this setting", T0)
            elif kind == "override":
                b.reserve(job, amount, "carol", "manager", T0, "Approved by finance for a client")
            elif kind == "spend":
                spent[job] += amount
                b.record_spend(job, spent[job], T0)
            else:
                b.release(job, T0)
        except BudgetExceededError:
            pass
        assert all(v >= 0 for v in b.reservations.values())
        assert b.charged == sum(spent.values(), D(0))
        overrun = overrun or bool(b.reservations) and b.charged + b.reserved > b.limit
    replayed = None
    events = b.collect_events()
    assert sum(isinstance(e, Budget.OverrunForecast) for e in events) == (1 if overrun else 0)
    for e in events:
        replayed = e.mutate(replayed)
    assert (replayed.charged, replayed.reserved, replayed.limit) == (b.charged, b.reserved, b.limit)


@given(st.lists(st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False), min_size=1, max_size=5))
def test_cents_split_always_adds_up_to_the_rounded_total(amounts) -> None:
    total = sum(amounts, D(0)).quantize(D("0.01"))
    parts = allocate_cents(amounts, total)
    assert sum(parts, D(0)) == total
    assert all(abs(p - a) < D("0.01") for p, a in zip(parts, amounts, strict=True))


def test_ledger_parts_always_reconcile_for_random_pod_histories() -> None:
    from domain.cost_ledger import PodLifetime, ledger

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 10_000),
                              st.booleans(), st.decimals(min_value="0.5", max_value="9.99", places=2)),
                    min_size=1, max_size=4))
    def check(pods) -> None:
        lifetimes = []
        for i, (setup, work, tail, interrupted, rate) in enumerate(pods):
            start = T0 + timedelta(seconds=i * 50_000)
            train = start + timedelta(seconds=setup)
            stop = train + timedelta(seconds=work + tail)
            lifetimes.append(PodLifetime(f"p{i}", rate, start, train, train + timedelta(seconds=work),
                                         stop if interrupted else None, stop))
        totals = ledger(tuple(lifetimes), T0)
        assert totals.useful_seconds >= 0 and totals.lost_seconds >= 0 and totals.setup_seconds >= 0
        assert totals.total_seconds == sum((seconds(p) for p in lifetimes), D(0))
        cents = totals.in_cents()
        assert cents["useful"] + cents["lost"] + cents["setup"] == cents["total"]

    def seconds(p) -> Decimal:
        return D((p.stopped_at - p.started_at).total_seconds())

    check()
