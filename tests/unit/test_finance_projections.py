"""The finance projections' event handling in memory: every Budget event is handled, and the job
costs fold keeps exactly the pod lifetimes the aggregate keeps."""

from __future__ import annotations

from domain.aggregates.budget import Budget
from domain.aggregates.training_job import TrainingJob
from domain.applications import Pipeline
from projections.budgets import BudgetsProjection
from projections.job_cost_state import JobCost, fold
from tests.finance_month import POLICY, busy_month, utc


def test_every_budget_event_changes_the_budget_read_model() -> None:
    events = {value for name, value in vars(Budget).items()
              if isinstance(value, type) and issubclass(value, Budget.Event) and name != "Event"}
    assert Budget.ReservationChanged in events and events <= set(vars(BudgetsProjection)["apply"].dispatcher.registry)


def test_folding_a_jobs_events_keeps_the_aggregates_pods_and_cost() -> None:
    app = Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=POLICY)
    month = busy_month(app)
    for job_id in (*month.november, month.october, month.never_started):
        created, *events = app.repository.event_store.get(job_id)
        job = JobCost.created(created)
        for event in events:
            job.as_of = max(job.as_of, event.at)
            fold(event, job)
        aggregate: TrainingJob = app.get_job(job_id)
        assert tuple(job.pods.values()) == tuple(aggregate.pods.values())
        assert job.totals() == aggregate.cost(utc(12, 1, 0, 0))
        assert (job.status, job.interruptions) == (aggregate.status.value, aggregate.interruptions)
