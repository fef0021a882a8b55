"""A realistic budget month for finance tests, driven through the real application as the reactors
drive it: spend charged while pods run, at each ending (pod maybe still running) and at each pod
exit. Team `ml` in New York time; November 2026 with a $100 limit, plus one job charged to October."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.aggregates.training_job import TrainingJob
from domain.applications import BudgetPolicy, Pipeline
from domain.cost_ledger import ledger
from domain.job_status import CancelReason, FailureType, JobStatus
from domain.money import cents
from domain.values import ArtifactRef
from tests.factories import configuration, job_fields

POLICY = BudgetPolicy(team="ml", time_zone="America/New_York", default_limit=Decimal(100))
SPOT, ON_DEMAND, SPOT_LATER = Decimal("2.49"), Decimal("7.99"), Decimal("2.61")
ADAPTER = ArtifactRef("adapters", "job/adapter.tar", "d" * 64, 4_321)
CHECKPOINT = ArtifactRef("checkpoints", "job/checkpoint.tar", "c" * 64, 1_234)
OVERRIDE = "Beta Bank demo on Monday: the client pays for this run"
LIMIT_REASON = "Two client projects this month need more training runs than planned in the budget"


def utc(month: int, day: int, hour: int, minute: int, second: float = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=timezone.utc) + timedelta(seconds=second)


@dataclass(frozen=True)
class Month:
    completed_spot: UUID      # alice, Acme / Q1 Advisors
    recovered_spot: UUID      # alice, Acme / Q1 Advisors: preempted, resumed on a pod at another rate
    cancelled_on_demand: UUID  # bob, Beta Bank / Chatbot: cancelled while its pod ran
    failed_spot: UUID         # carol, no client: OOM
    overridden: UUID          # dave (manager), Beta Bank / Chatbot: over the limit, cancelled before a pod
    completed_on_demand: UUID  # bob, Beta Bank / Chatbot: crosses the 80 % threshold
    october: UUID             # alice, Acme / Q1 Advisors: queued on Oct 31 in New York, run on Nov 1 (UTC)
    never_started: UUID       # carol: configured only

    @property
    def november(self) -> tuple[UUID, ...]:
        return (self.completed_spot, self.recovered_spot, self.cancelled_on_demand, self.failed_spot,
                self.overridden, self.completed_on_demand)


def add_job(app: Pipeline, name: str, by: str, when: datetime, tier: str, rate: Decimal, cost_max: Decimal,
            preset: str, client: str | None = None, project: str | None = None, start: bool = True,
            role: str = "member", override: str | None = None) -> UUID:
    job_id = app.create_job(**job_fields(name=name, created_by=by, at=when, client=client, project=project))
    app.configure_job(job_id, **configuration(preset=preset, gpu_tier=tier, hourly_rate=rate, at=when,
                                              estimated_cost_min=cost_max * Decimal("0.74"),
                                              estimated_cost_max=cost_max))
    if start:
        app.start_job(job_id, by, role, when, override)
    return job_id


Step = tuple[datetime, Callable[[TrainingJob], Any] | None]


def billed(pod: str, over_ledger: Decimal, at: datetime) -> Step:
    """RunPod's bill for an ended pod (issue #16): our ledger's figure for it, plus `over_ledger`, in two buckets."""
    def reconcile(job: TrainingJob) -> None:
        amount = cents(ledger((job.pods[pod],), at).total_cost) + over_ledger
        first = cents(amount / 3)
        job.reconcile_billing(pod, amount, [{"start": "2026-11-01T00:00:00Z", "end": "2026-11-01T01:00:00Z",
                                             "amount": first},
                                            {"start": "2026-11-01T01:00:00Z", "end": "2026-11-01T02:00:00Z",
                                             "amount": amount - first}], at)

    return at, reconcile


def run_steps(app: Pipeline, job_id: UUID, steps: list[Step]) -> None:
    """Each step is a job command at its time, or None: charge the spend so far (as the reactors do)."""
    for when, command in steps:
        if command is None:
            app.record_job_spend(job_id, when)
        else:
            app.update_job(job_id, lambda job, c=command: c(job))


def pod_steps(pod: str, attempt: int, rate: Decimal, start: datetime, training: datetime) -> list[Step]:
    return [(start - timedelta(seconds=61), lambda j: j.start_provisioning(j.configuration["gpu_tier"], start)),
            (start, lambda j: j.pod_started(pod, attempt, rate, start)),
            (start + timedelta(seconds=40), lambda j: j.change_stage(JobStatus.PREPROCESSING, attempt,
                                                                      start + timedelta(seconds=40))),
            (training, lambda j: j.change_stage(JobStatus.TRAINING, attempt, training))]


def completion_steps(pod: str, attempt: int, at: datetime, stopped: datetime) -> list[Step]:
    return [(at, lambda j: j.complete(ADAPTER, {"final_loss": 0.312, "steps": 900}, attempt, at)), (at, None),
            (stopped, lambda j: j.pod_stopped(pod, stopped)), (stopped, None)]


def busy_month(app: Pipeline) -> Month:
    a = add_job(app, "Acme advisor v1", "alice", utc(11, 3, 9, 0), "spot", SPOT, Decimal(20), "balanced",
                "Acme Financial", "Q1 Advisors")
    run_steps(app, a, [
        *pod_steps("pod-a1", 1, SPOT, utc(11, 3, 9, 1, 17.25), utc(11, 3, 9, 5, 42.5)),
        (utc(11, 3, 10, 0, 3), lambda j: j.record_checkpoint(300, CHECKPOINT, 1, utc(11, 3, 10, 0, 3))),
        (utc(11, 3, 10, 30), None),
        (utc(11, 3, 13, 40), lambda j: j.change_stage(JobStatus.FINALIZATION, 1, utc(11, 3, 13, 40))),
        *completion_steps("pod-a1", 1, utc(11, 3, 13, 52, 11.9), utc(11, 3, 13, 52, 40.1)),
    ])

    b = add_job(app, "Acme advisor v2", "alice", utc(11, 5, 21, 58), "spot", SPOT, Decimal(20), "conservative",
                "Acme Financial", "Q1 Advisors")
    run_steps(app, b, [
        *pod_steps("pod-b1", 1, SPOT, utc(11, 5, 22, 0, 9.4), utc(11, 5, 22, 4, 1)),
        (utc(11, 5, 23, 10), lambda j: j.record_checkpoint(100, CHECKPOINT, 1, utc(11, 5, 23, 10))),
        (utc(11, 5, 23, 30), lambda j: j.record_checkpoint(200, CHECKPOINT, 1, utc(11, 5, 23, 30))),
        (utc(11, 5, 23, 47, 13.7), lambda j: j.interrupt("preempted", 260, 1, utc(11, 5, 23, 47, 13.7))),
        (utc(11, 5, 23, 47, 18.2), lambda j: j.pod_stopped("pod-b1", utc(11, 5, 23, 47, 18.2))),
        (utc(11, 5, 23, 47, 18.2), None),
        (utc(11, 5, 23, 47, 20), lambda j: j.begin_recovery(utc(11, 5, 23, 47, 20))),
        *pod_steps("pod-b2", 2, SPOT_LATER, utc(11, 5, 23, 49, 2.3), utc(11, 5, 23, 53, 40)),
        (utc(11, 6, 1, 0), lambda j: j.record_checkpoint(500, CHECKPOINT, 2, utc(11, 6, 1, 0))),
        *completion_steps("pod-b2", 2, utc(11, 6, 3, 12, 45), utc(11, 6, 3, 13, 1.6)),
    ])

    c = add_job(app, "Beta chatbot aggressive", "bob", utc(11, 10, 14, 0), "on_demand", ON_DEMAND, Decimal(30),
                "aggressive", "Beta Bank", "Chatbot")
    run_steps(app, c, [
        *pod_steps("pod-c1", 1, ON_DEMAND, utc(11, 10, 14, 2, 30), utc(11, 10, 14, 6, 0.8)),
        (utc(11, 10, 15, 0), None),
    ])
    app.cancel_job(c, CancelReason.LOSS_NOT_DECREASING, "flat after 2 h", "bob", utc(11, 10, 16, 20, 5))
    run_steps(app, c, [
        (utc(11, 10, 16, 20, 9.8), lambda j: j.pod_stopped("pod-c1", utc(11, 10, 16, 20, 9.8))),
        (utc(11, 10, 16, 20, 10), None),
        billed("pod-c1", Decimal("3.00"), utc(11, 10, 16, 31)),  # RunPod billed $3 more than our ledger: flagged
    ])

    d = add_job(app, "Untagged experiment", "carol", utc(11, 12, 8, 0), "spot", SPOT, Decimal(10), "balanced")
    run_steps(app, d, [
        *pod_steps("pod-d1", 1, SPOT, utc(11, 12, 8, 0, 10), utc(11, 12, 8, 3, 7.7)),
        (utc(11, 12, 9, 15, 33), lambda j: j.fail(FailureType.OOM, "CUDA out of memory", {}, utc(11, 12, 9, 15, 33))),
        (utc(11, 12, 9, 15, 33), None),
        (utc(11, 12, 9, 15, 36.4), lambda j: j.pod_stopped("pod-d1", utc(11, 12, 9, 15, 36.4))),
        (utc(11, 12, 9, 15, 36.4), None),
    ])

    f = add_job(app, "Beta chatbot demo", "dave", utc(11, 14, 10, 0), "on_demand", ON_DEMAND, Decimal(120),
                "balanced", "Beta Bank", "Chatbot", role="manager", override=OVERRIDE)
    app.cancel_job(f, CancelReason.WRONG_CONFIGURATION, "", "dave", utc(11, 14, 10, 5))

    e = add_job(app, "Beta chatbot v1", "bob", utc(11, 20, 9, 0), "on_demand", ON_DEMAND, Decimal(45), "conservative",
                "Beta Bank", "Chatbot")
    run_steps(app, e, [
        *pod_steps("pod-e1", 1, ON_DEMAND, utc(11, 20, 9, 2, 0.6), utc(11, 20, 9, 6, 30)),
        (utc(11, 20, 11, 0), None),
        *completion_steps("pod-e1", 1, utc(11, 20, 13, 33, 3.3), utc(11, 20, 13, 33, 20)),
        billed("pod-e1", Decimal("0.12"), utc(11, 20, 13, 44)),  # within the tolerance
    ])
    request = app.request_limit_increase("2026-11", Decimal(200), LIMIT_REASON, "alice", utc(11, 21, 9, 0))
    app.decide_limit_increase("2026-11", request, False, "dave", "manager", utc(11, 21, 10, 0), "Use 150 instead")
    app.change_limit("2026-11", Decimal(150), "dave", "manager", LIMIT_REASON, utc(11, 21, 10, 1))

    g = add_job(app, "Acme advisor v0", "alice", utc(11, 1, 2, 0), "spot", SPOT, Decimal(20), "balanced",
                "Acme Financial", "Q1 Advisors")
    run_steps(app, g, [
        *pod_steps("pod-g1", 1, SPOT, utc(11, 1, 2, 3, 0.1), utc(11, 1, 2, 7, 0)),
        *completion_steps("pod-g1", 1, utc(11, 1, 4, 59, 59.9), utc(11, 1, 5, 0, 30)),
    ])
    h = add_job(app, "Not yet", "carol", utc(11, 25, 9, 0), "spot", SPOT, Decimal(20), "balanced", start=False)
    return Month(a, b, c, d, f, e, g, h)
