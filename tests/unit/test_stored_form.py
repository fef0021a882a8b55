"""Every event class survives the trip through the stored form (transcoder) unchanged."""

import uuid
from datetime import datetime, timezone
from decimal import Decimal

from eventsourcing.application import Application

from domain.applications import Budgets, TrainingJobs
from domain.values import ArtifactRef
from pipeline import envelope

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
REF = ArtifactRef("files", "sample.json", "b" * 64, 99)


def round_trip(app: Application, events: list) -> None:
    for event in events:
        stored = app.mapper.to_stored_event(event)
        assert app.mapper.to_domain_event(stored) == event
        # …and through the wire envelope the relay publishes.
        notification = type("N", (), {"id": 7, **vars(stored)})()
        decoded = envelope.decode(envelope.encode(app.name, notification))
        assert (decoded.application, decoded.notification_id) == (app.name, 7)
        assert app.mapper.to_domain_event(decoded.stored_event) == event


def test_training_job_events_round_trip() -> None:
    from domain.aggregates.training_job import TrainingJob

    app = TrainingJobs(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    job = TrainingJob.create(uuid.uuid4(), "Round trip", REF, "bob", T0)
    job.queue(T0)
    round_trip(app, job.collect_events())


def test_budget_events_round_trip_with_exact_decimals() -> None:
    from domain.aggregates.budget import Budget

    app = Budgets(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    budget = Budget.open("ml", "2026-11", Decimal("500.10"), T0)
    events = budget.collect_events()
    round_trip(app, events)
    assert app.mapper.to_domain_event(app.mapper.to_stored_event(events[0])).limit == Decimal("500.10")


def test_a_malformed_envelope_is_reported_as_such() -> None:
    import pytest

    for body in (b"not json", b"{}", b'{"originator_id": "nope"}'):
        with pytest.raises(ValueError, match="not an event envelope"):
            envelope.decode(body)
