"""Migrations and the event store on real PostgreSQL."""

import threading
from datetime import datetime, timezone

import psycopg

from infra import db
from infra.eventstore import EventStore
from tests.factories import REF, queue_sample_job


def test_migrations_apply_once_each_even_when_two_processes_start_together(database_url: str) -> None:
    results: list[list[str]] = []
    errors: list[Exception] = []

    def run() -> None:
        try:
            results.append(db.migrate(database_url))
        except Exception as exc:  # noqa: BLE001 - the assertion below reports it  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(len(r) for r in results) == [0, 0, 0, len(list(db.migration_files()))]
    with psycopg.connect(database_url) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
        tables = {row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert versions == [v for v, _ in db.migration_files()]
    assert {"jobs", "relay_positions", "pipeline_events"} <= tables


def test_a_saved_job_is_read_back_from_postgresql_with_its_events_in_order(migrated: str) -> None:
    store = EventStore.open(migrated)
    try:
        at = datetime(2026, 11, 24, tzinfo=timezone.utc)
        job_id = queue_sample_job(store.app, name="Stored job", at=at)
        reopened = EventStore.open(migrated)
        job = reopened.app.get_job(job_id)
        assert (job.name, job.status, job.training_file, job.version) == ("Stored job", "queued", REF, 3)
        topics = [n.topic for n in reopened.app.recorder.select_notifications(1, 10)]
        assert topics == ["TrainingJob.Created", "TrainingJob.Configured", "TrainingJob.Queued",
                          "Budget.Created", "Budget.Reserved"]
        reopened.close()
    finally:
        store.close()


def test_an_unreachable_database_gives_a_one_line_error() -> None:
    import pytest

    with pytest.raises(db.DatabaseUnavailableError) as caught:
        db.migrate("postgresql://postgres@127.0.0.1:1/none", timeout=2)
    assert str(caught.value).startswith("cannot connect to PostgreSQL")
    assert "\n" not in str(caught.value)
