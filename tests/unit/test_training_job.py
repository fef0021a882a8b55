from datetime import datetime, timedelta, timezone

import pytest
from eventsourcing.domain import Aggregate

from domain.aggregates.budget import Budget
from domain.aggregates.training_job import IllegalTransitionError, InvalidJobError, JobStatus, TrainingJob
from domain.values import ArtifactRef

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
REF = ArtifactRef("files", "sample.json", "a" * 64, 1234)


def new_job(name: str = "Fraud advisor v1") -> TrainingJob:
    import uuid

    return TrainingJob.create(uuid.uuid4(), name, REF, "alice", T0)


def test_a_created_job_awaits_configuration_then_queues_at_the_given_time() -> None:
    job = new_job()
    assert job.status == JobStatus.PENDING_CONFIGURATION
    job.queue(T0 + timedelta(seconds=5))
    assert job.status == JobStatus.QUEUED
    assert job.queued_at == T0 + timedelta(seconds=5)
    assert [type(e).__name__ for e in job.collect_events()] == ["Created", "Queued"]


def test_queueing_twice_raises_and_changes_nothing() -> None:
    job = new_job()
    job.queue(T0)
    version = job.version
    with pytest.raises(IllegalTransitionError):
        job.queue(T0)
    assert job.version == version


@pytest.mark.parametrize("name", ["ab", "x" * 101, "   "])
def test_a_name_outside_3_to_100_characters_is_refused(name: str) -> None:
    with pytest.raises(InvalidJobError, match="3-100 characters"):
        new_job(name)


def test_replaying_the_events_rebuilds_the_same_job() -> None:
    job = new_job()
    job.queue(T0)
    events = job.collect_events()
    copy = None
    for e in events:
        copy = e.mutate(copy)
    assert (copy.name, copy.status, copy.training_file, copy.version) == (job.name, job.status, REF, 2)


def test_budget_ids_are_derived_from_team_and_month() -> None:
    assert Budget.id_for("ml", "2026-11") == Budget.id_for("ml", "2026-11")
    assert Budget.id_for("ml", "2026-11") != Budget.id_for("ml", "2026-12")


@pytest.mark.parametrize("aggregate", [TrainingJob, Budget])
def test_every_event_class_has_its_own_explicit_topic(aggregate: type[Aggregate]) -> None:
    classes = [v for k, v in vars(aggregate).items() if isinstance(v, type) and k != "Event"
               and issubclass(v, Aggregate.Event)]
    topics = [getattr(cls, "TOPIC", None) for cls in classes]
    assert all(topics) and len(set(topics)) == len(topics)
    assert all(topic.startswith(aggregate.TOPIC + ".") for topic in topics)


@pytest.mark.parametrize(
    "kwargs", [{"sha256": "xyz"}, {"size": -1}, {"bucket": ""}],
)
def test_an_artifact_reference_must_be_well_formed(kwargs: dict) -> None:
    fields = {"bucket": "files", "name": "a", "sha256": "0" * 64, "size": 1} | kwargs
    with pytest.raises(ValueError):
        ArtifactRef(**fields)
