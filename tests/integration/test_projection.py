"""The jobs projection: idempotent, ordered per aggregate, rebuilt identical from the store; every
event-store read model replayed (in worker processes or not) equal to live application."""

import multiprocessing
from decimal import Decimal

import psycopg
import pytest

from infra.eventstore import EventStore
from projections.base import OutOfOrderError, process, process_batch
from projections.event_log import EventLogProjection
from projections.jobs import JobsProjection
from projections.replay import replay
from projections.runner import PROJECTIONS, rebuild, rebuild_all
from tests.factories import T0, eventful_job, queue_sample_job
from tests.finance_month import POLICY, busy_month
from tests.unit.test_pipeline_application import register


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


# Every read model of the event store, replayed in this process or in worker processes, equals
# what the live consumers' `process_batch` writes, batch by batch.

EVENT_STORE_MODELS = list(PROJECTIONS.values())
AWKWARD_NOTE = "tab\there, new\nline, back\\slash \\N, CR\r, “quotes”, naïve 🚀"
TABLES = [*(t for p in EVENT_STORE_MODELS for t in p.tables), "projection_positions"]


def every_table(conn: psycopg.Connection) -> dict[str, list[str]]:
    """Every row (repr, so that a NaN loss compares equal), in a fixed order."""
    return {t: sorted(repr(r) for r in conn.execute(f"SELECT * FROM {t}")) for t in TABLES}  # noqa: S608


def emptied(conn: psycopg.Connection) -> None:
    conn.execute(f"TRUNCATE {', '.join(TABLES)}")  # noqa: S608 - fixed names


def keys_and_indexes(conn: psycopg.Connection) -> list[tuple]:
    """What a rebuild drops and makes again around its COPY (the event log's)."""
    return conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) ORDER BY 1",
                        (TABLES,)).fetchall() + conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'event_log'::regclass"
        " ORDER BY 1").fetchall()


def test_a_replay_in_worker_processes_writes_row_for_row_what_the_live_consumers_write(migrated: str) -> None:
    store = EventStore.open(migrated, policy=POLICY)
    try:
        busy_month(store.app)
        reason = "Finance agreed to soft limits this month"  # Budget Controls: a start past the limit
        store.app.set_budget_blocking("2026-11", False, "dave", "manager", reason, T0)
        queue_sample_job(store.app, cost_max=Decimal(900), name="Past the limit")
        register(store.app)
        job = eventful_job(store.app, name="NaN loss, preempted, then OOM")
        store.app.update_job(job, lambda j: j.add_note(AWKWARD_NOTE, "bob", T0))
        store.app.set_budget_blocking("2026-11", True, "dave", "manager", reason, T0)
        applications = {"pipeline": store.app}
        with psycopg.connect(migrated) as conn:
            for projection in EVENT_STORE_MODELS:  # live: small batches, as JetStream hands them
                items = [(n.id, store.app.mapper.to_domain_event(n))
                         for n in store.app.recorder.select_notifications(1, 10_000, topics=projection.topics)]
                for start in range(0, len(items), 7):
                    assert False not in process_batch(conn, projection, "pipeline", items[start:start + 7])
            live, schema = every_table(conn), keys_and_indexes(conn)
            assert all(live[t] for t in ("jobs", "event_log", "training_files", "budget_spend", "job_costs"))
            assert {"over_limit_allowed", "blocking_off", "blocking_on"} <= {
                kind for (kind,) in conn.execute("SELECT kind FROM budget_decisions")}
            assert conn.execute("SELECT message, payload->>'text' FROM event_log WHERE job_id = %s AND topic"
                                " LIKE '%%NoteAdded' ORDER BY originator_version DESC", (job,)).fetchone() == (
                f"Note by bob: {AWKWARD_NOTE}", AWKWARD_NOTE)  # the log's rows go through COPY's text format
            for workers, page, every_topic in ((0, 5000, False), (2, 5000, True), (3, 17, False), (2, 17, True)):
                with conn.transaction():
                    emptied(conn)
                    counts = replay(conn, EVENT_STORE_MODELS, applications, page=page, workers=workers,
                                    every_topic=every_topic)
                assert every_table(conn) == live, (workers, page, every_topic)
                assert counts["event_log"] == len(live["event_log"])
                assert keys_and_indexes(conn) == schema
            assert multiprocessing.active_children() == []
            counts = rebuild_all(conn, applications)  # the command's way: empties the tables itself
            assert every_table(conn) == live
            assert counts["jobs"] == conn.execute("SELECT sum(version) FROM jobs").fetchone()[0]
    finally:
        store.close()


@pytest.mark.parametrize("workers", [0, 2])
def test_a_replay_stops_at_an_event_missing_from_the_store_and_writes_nothing(migrated: str, store: EventStore,
                                                                              workers: int) -> None:
    queue_sample_job(store.app, name="Whole")
    gap = queue_sample_job(store.app, name="Lost its second event")
    with psycopg.connect(migrated) as conn:
        conn.execute("DELETE FROM pipeline_events WHERE originator_id = %s AND originator_version = 2", (gap,))
        conn.commit()
        schema = keys_and_indexes(conn)
        with pytest.raises(RuntimeError, match=rf"event_log: replay stopped at notification \d+: {gap} v3 before v2"):
            replay(conn, [EventLogProjection(), JobsProjection()], {"pipeline": store.app}, workers=workers)
        assert rows(conn) == [] and every_table(conn)["event_log"] == []
        assert keys_and_indexes(conn) == schema  # the log's, dropped for its COPY, are back
    assert multiprocessing.active_children() == []
