"""The jobs projection: idempotent, ordered per aggregate, rebuilt identical from the store."""

import psycopg
import pytest

from tests.factories import queue_sample_job
from pipeline.eventstore import EventStore
from projections.base import OutOfOrderError, process
from projections.jobs import JobsProjection
from projections.runner import rebuild



def rows(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT * FROM jobs ORDER BY id").fetchall()


@pytest.fixture
def store(migrated: str):
    s = EventStore.open(migrated)
    yield s
    s.close()


def test_the_same_event_applied_twice_changes_nothing(migrated: str, store: EventStore) -> None:
    queue_sample_job(store.app, name="Twice")
    notifications = store.app.recorder.select_notifications(1, 10)
    projection = JobsProjection()
    with psycopg.connect(migrated) as conn:
        changed = [process(conn, projection, "pipeline", n.id, store.app.mapper.to_domain_event(n))
                   for n in notifications if n.topic.startswith("TrainingJob.")]
        before = rows(conn)
        again = [process(conn, projection, "pipeline", n.id, store.app.mapper.to_domain_event(n))
                 for n in notifications if n.topic.startswith("TrainingJob.")]
        assert changed == [True, True, True] and again == [False, False, False]
        assert rows(conn) == before
        assert before[0][2] == "queued"


def test_an_event_ahead_of_its_predecessor_is_refused_for_a_later_retry(migrated: str, store: EventStore) -> None:
    queue_sample_job(store.app, name="Gap")
    created, configured = store.app.recorder.select_notifications(1, 2)
    projection = JobsProjection()
    with psycopg.connect(migrated) as conn:
        with pytest.raises(OutOfOrderError):
            process(conn, projection, "pipeline", configured.id, store.app.mapper.to_domain_event(configured))
        assert rows(conn) == []
        assert conn.execute("SELECT count(*) FROM projection_positions").fetchone()[0] == 0


def test_a_rebuild_yields_the_same_rows_as_incremental_application(migrated: str, store: EventStore) -> None:
    for i in range(5):
        queue_sample_job(store.app, name=f"Job {i}")
    projection = JobsProjection()
    with psycopg.connect(migrated) as conn:
        for n in store.app.recorder.select_notifications(1, 100, topics=projection.topics):
            process(conn, projection, "pipeline", n.id, store.app.mapper.to_domain_event(n))
        live = rows(conn)
        count = rebuild(conn, projection, {"pipeline": store.app})
        assert count == 5 * 3
        assert rows(conn) == live
        last_job_event = store.app.recorder.select_notifications(1, 100, topics=projection.topics)[-1].id
        assert conn.execute("SELECT notification_id FROM projection_positions").fetchone()[0] == last_job_event
