"""Every event class survives the trip through the stored form (transcoder) and the wire
envelope unchanged; a new event class without a case here fails the coverage test."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

from domain.aggregates.budget import Budget
from domain.aggregates.training_job import TrainingJob
from domain.applications import Pipeline
from domain.job_status import CancelReason, FailureType, JobStatus
from domain.values import ArtifactRef
from infra import envelope
from projections.base import event_topics
from tests.factories import T0, configured_job, new_job

CKPT = ArtifactRef("checkpoints", "job/checkpoint-step-100", "c" * 64, 2048)
ADAPTER = ArtifactRef("adapters", "job/adapter.safetensors", "d" * 64, 4096)


def t(minutes: float):
    return T0 + timedelta(minutes=minutes)


def full_life_events() -> list:
    job = configured_job()
    job.rename("Advisor tone v2", t(1))
    job.update_metadata(description="First run", tags=["experiment"], client="Acme", project="Q1", at=t(1))
    job.add_note("Testing r=16", "alice", t(1))
    job.queue(t(2))
    attempt = job.start_provisioning("spot", t(2))
    job.provisioning_failed(attempt, "no capacity", t(3))
    attempt = job.start_provisioning("spot", t(8))
    job.pod_started("pod-1", attempt, Decimal("2.49"), t(9))
    for i, stage in enumerate((JobStatus.PREPROCESSING, JobStatus.MODEL_LOADING, JobStatus.TRAINING)):
        job.change_stage(stage, attempt, t(10 + i))
    job.record_progress(50, 400, 0.5, 1.25, attempt, t(20))
    job.record_checkpoint(100, CKPT, attempt, t(30))
    job.complete_epoch(1, 1.1, attempt, t(40))
    job.interrupt("preempted", 120, attempt, t(45))
    job.pod_stopped("pod-1", t(45))
    job.begin_recovery(t(46))
    attempt = job.start_provisioning("spot", t(46))
    job.pod_started("pod-2", attempt, Decimal("2.49"), t(47))
    job.change_stage(JobStatus.TRAINING, attempt, t(50))
    job.change_stage(JobStatus.FINALIZATION, attempt, t(90))
    job.complete(ADAPTER, {"final_loss": 0.287, "perplexity_improvement": 31.0}, attempt, t(95))
    job.record_export("metrics-csv", "alice", t(96))
    job.delete_adapter("bob", "manager", "Superseded by v2, freeing storage", t(97))
    events = job.collect_events()
    other = configured_job()
    other.queue(t(1))
    other.promote("carol", "manager", t(1))
    other.provisioning_failed(other.start_provisioning("spot", t(1)), "no capacity", t(1))
    other.provisioning_timed_out(Decimal(3600), t(61))
    other.change_gpu_tier("on_demand", Decimal("7.99"), Decimal("20.10"), Decimal("30.15"), "alice", t(62))
    other.change_stage(JobStatus.PREPROCESSING, other.start_provisioning("on_demand", t(62)), t(63))
    other.fail(FailureType.DATASET_FORMAT, "Training pair #47 is missing 'target_response'", {"pair": 47}, t(1))
    cancelled = new_job()
    cancelled.cancel(CancelReason.TESTING, "just a test", "bob", t(1))
    return events + other.collect_events() + cancelled.collect_events()


def budget_events() -> list:
    budget = Budget.open("ml", "2026-11", Decimal("500.10"), T0)
    job = uuid.uuid4()
    budget.reserve(job, Decimal("600"), "carol", "manager", t(1), "Client deadline, approved by the VP")
    budget.change_reservation(job, Decimal("650"), "carol", "manager", t(1), "Switched to on-demand for the deadline")
    budget.record_spend(job, Decimal("450.25"), t(2))
    budget.release(job, t(3))
    request = uuid.uuid4()
    budget.request_limit_increase(request, Decimal("750"), "x" * 60, "alice", t(4))
    budget.decide_limit_increase(request, True, "carol", "manager", t(5))
    budget.set_blocking(False, "carol", "manager", "Soft limits while the client pays overruns", t(6))
    budget.reserve(uuid.uuid4(), Decimal("900.5"), "alice", "member", t(7))
    return budget.collect_events()


@pytest.fixture(scope="module")
def app() -> Pipeline:
    return Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


@pytest.mark.parametrize("event", full_life_events() + budget_events(), ids=lambda e: type(e).__qualname__)
def test_an_event_round_trips_through_the_stored_form_and_the_envelope(app: Pipeline, event) -> None:
    stored = app.mapper.to_stored_event(event)
    assert app.mapper.to_domain_event(stored) == event
    notification = type("N", (), {"id": 7, **vars(stored)})()
    decoded = envelope.decode(envelope.encode(app.name, notification))
    assert (decoded.application, decoded.notification_id) == (app.name, 7)
    assert app.mapper.to_domain_event(decoded.stored_event) == event


def test_every_event_class_has_a_round_trip_case() -> None:
    covered = {type(e).TOPIC for e in full_life_events() + budget_events()}
    assert covered == set(event_topics(TrainingJob)) | set(event_topics(Budget))


def test_money_keeps_its_exact_decimal_value(app: Pipeline) -> None:
    created = budget_events()[0]
    assert app.mapper.to_domain_event(app.mapper.to_stored_event(created)).limit == Decimal("500.10")


def test_a_malformed_envelope_is_reported_as_such() -> None:
    for body in (b"not json", b"{}", b'{"originator_id": "nope"}'):
        with pytest.raises(ValueError, match="not an event envelope"):
            envelope.decode(body)
