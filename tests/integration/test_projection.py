"""The jobs projection: idempotent, ordered per aggregate, rebuilt identical from the store."""

from datetime import datetime, timezone

import psycopg
import pytest

from domain.values import ArtifactRef
from pipeline.eventstore import EventStore
from projections.base import OutOfOrderError, process
from projections.jobs import JobsProjection
from projections.runner import rebuild

REF = ArtifactRef("files", "a.json", "d" * 64, 3)
AT = datetime(2026, 11, 24, 9, 30, tzinfo=timezone.utc)


def rows(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT * FROM jobs ORDER BY id").fetchall()


@pytest.fixture
def store(migrated: str):
    s = EventStore.open(migrated)
    yield s
    s.close()


def test_the_same_event_applied_twice_changes_nothing(migrated: str, store: EventStore) -> None:
    store.jobs.create_and_queue("Twice", REF, "dave", AT)
    notifications = store.jobs.recorder.select_notifications(1, 10)
    projection = JobsProjection()
    with psycopg.connect(migrated) as conn:
        changed = [process(conn, projection, "trainingjobs", n.id, store.jobs.mapper.to_domain_event(n))
                   for n in notifications]
        before = rows(conn)
        again = [process(conn, projection, "trainingjobs", n.id, store.jobs.mapper.to_domain_event(n))
                 for n in notifications]
        assert changed == [True, True] and again == [False, False]
        assert rows(conn) == before
        assert before[0][2] == "queued"


def test_an_event_ahead_of_its_predecessor_is_refused_for_a_later_retry(migrated: str, store: EventStore) -> None:
    store.jobs.create_and_queue("Gap", REF, "erin", AT)
    created, queued = store.jobs.recorder.select_notifications(1, 10)
    projection = JobsProjection()
    with psycopg.connect(migrated) as conn:
        with pytest.raises(OutOfOrderError):
            process(conn, projection, "trainingjobs", queued.id, store.jobs.mapper.to_domain_event(queued))
        assert rows(conn) == []
        assert conn.execute("SELECT count(*) FROM projection_positions").fetchone()[0] == 0


def test_a_rebuild_yields_the_same_rows_as_incremental_application(migrated: str, store: EventStore) -> None:
    for i in range(5):
        store.jobs.create_and_queue(f"Job {i}", REF, "frank", AT)
    projection = JobsProjection()
    with psycopg.connect(migrated) as conn:
        for n in store.jobs.recorder.select_notifications(1, 100):
            process(conn, projection, "trainingjobs", n.id, store.jobs.mapper.to_domain_event(n))
        live = rows(conn)
        count = rebuild(conn, projection, {"trainingjobs": store.jobs})
        assert count == 10
        assert rows(conn) == live
        assert conn.execute("SELECT notification_id FROM projection_positions").fetchone()[0] == 10
