"""The event log read model (FR2.1.3): rows, categories and messages of a real job history,
idempotent application, live = rebuilt, and the keyword / category / page query."""

import asyncio
import json
import math
from pathlib import Path

import psycopg
import pytest

from domain.job_status import CancelReason
from infra import bus
from infra.eventstore import EventStore
from projections.base import OutOfOrderError, process
from projections.event_log import EventLogProjection
from projections.queries import job_events
from projections.runner import rebuild
from tests.factories import T0, eventful_job, queue_sample_job
from tests.helpers import pipeline_process, stop_process, wait_for
from tests.unit.test_pipeline_application import register

PROJECTION = EventLogProjection()

EXPECTED = [
    ("TrainingJob.Created", "status",
     "Created by alice: Advisor tone v1 (financial-advisory.json, 242 conversations)", "alice"),
    ("TrainingJob.Configured", "status",
     "Configured: balanced preset on H100_PCIE_80GB spot at $2.49/h, estimated $28.61–$38.66", None),
    ("TrainingJob.Queued", "status", "Queued", None),
    ("Budget.Reserved", "status", "Budget reserved: $38.66", None),
    ("TrainingJob.NoteAdded", "status", "Note by bob: Use the smaller learning rate", "bob"),
    ("TrainingJob.ProvisioningStarted", "status", "Provisioning a spot GPU (attempt 1)", None),
    ("TrainingJob.ProvisioningFailed", "error", "Provisioning failed (attempt 1): no spot capacity", None),
    ("TrainingJob.ProvisioningStarted", "status", "Provisioning a spot GPU (attempt 2)", None),
    ("TrainingJob.PodStarted", "status", "Pod pod-1 started (attempt 2, $2.49/h)", None),
    ("TrainingJob.StageChanged", "status", "Preprocessing started", None),
    ("TrainingJob.StageChanged", "status", "Training started", None),
    ("TrainingJob.ProgressRecorded", "metrics", "Step 100 of 2,000: loss 0.5210, epoch 0.05", None),
    ("TrainingJob.ProgressRecorded", "metrics", "Step 200 of 2,000: loss nan, epoch 0.10", None),
    ("TrainingJob.CheckpointSaved", "metrics", "Checkpoint saved at step 300", None),
    ("TrainingJob.Interrupted", "warning", "Interrupted at step 850: pod exited with 143", None),
    ("TrainingJob.PodStopped", "status", "Pod pod-1 stopped", None),
    ("TrainingJob.RecoveryStarted", "warning",
     "Recovery attempt 1 started from checkpoint job/attempt-2/checkpoint-300.tar", None),
    ("Budget.SpendRecorded", "metrics", "Spend recorded: $1.41 (job total $1.41)", None),
    ("TrainingJob.Failed", "error", "Failed (oom): CUDA out of memory", None),
    ("Budget.Released", "status", "Unspent reservation released: $37.25", None),
]


@pytest.fixture
def store(migrated: str):
    s = EventStore.open(migrated)
    yield s
    s.close()


def apply_all(conn: psycopg.Connection, store: EventStore) -> list[bool]:
    return [process(conn, PROJECTION, "pipeline", n.id, store.app.mapper.to_domain_event(n))
            for n in store.app.recorder.select_notifications(1, 1000, topics=PROJECTION.topics)]


def rows(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("SELECT * FROM event_log ORDER BY notification_id").fetchall()


def test_a_job_history_is_logged_with_categories_messages_actors_and_payloads(migrated: str, store: EventStore) -> None:
    job_id = eventful_job(store.app)
    other = queue_sample_job(store.app, name="Other job")
    store.app.cancel_job(other, CancelReason.TOO_EXPENSIVE, "try the fast preset first", "alice", T0)
    with psycopg.connect(migrated) as conn:
        apply_all(conn, store)
        page = job_events(conn, job_id)
        assert [(e.topic, e.category, e.message, e.actor) for e in page.events] == EXPECTED
        assert page.total == len(EXPECTED) and page.pages == 1
        stored = {n.id: n for n in store.app.recorder.select_notifications(1, 1000)}
        for logged in page.events:  # the payload is the stored event, in plain JSON
            state = json.loads(stored[logged.notification_id].state, parse_constant=str)
            assert (logged.originator_id, logged.originator_version) == (
                stored[logged.notification_id].originator_id, stored[logged.notification_id].originator_version)
            assert set(logged.payload) == set(state)
        nan_step = page.events[12].payload
        assert nan_step["loss"] == "nan" and math.isnan(float(nan_step["loss"]))
        assert page.events[1].payload["hourly_rate"] == "2.49"
        assert page.events[1].payload["hyperparameters"]["target_modules"] == ["q_proj"]
        assert [(e.message, e.actor) for e in job_events(conn, other).events[-2:]] == [
            ("Cancelled by alice: too expensive — try the fast preset first", "alice"),
            ("Unspent reservation released: $38.66", None)]
        team_level = conn.execute("SELECT topic FROM event_log WHERE job_id IS NULL").fetchall()
        assert team_level == [("Budget.Created",)]


def test_duplicates_change_nothing_and_a_gap_is_refused(migrated: str, store: EventStore) -> None:
    eventful_job(store.app)
    with psycopg.connect(migrated) as conn:
        first = apply_all(conn, store)
        before = rows(conn)
        again = apply_all(conn, store)
        assert all(first) and not any(again)
        assert rows(conn) == before

    queue_sample_job(store.app, name="Gap")
    created, configured = store.app.recorder.select_notifications(before[-1][2] + 1, 2)
    with psycopg.connect(migrated) as conn:
        with pytest.raises(OutOfOrderError):
            process(conn, PROJECTION, "pipeline", configured.id, store.app.mapper.to_domain_event(configured))
        assert rows(conn) == before


def test_keyword_and_category_filters(migrated: str, store: EventStore) -> None:
    job_id = eventful_job(store.app)
    with psycopg.connect(migrated) as conn:
        apply_all(conn, store)

        def messages(**filters: str) -> list[str]:
            return [e.message for e in job_events(conn, job_id, **filters).events]

        assert messages(category="error") == [
            "Provisioning failed (attempt 1): no spot capacity", "Failed (oom): CUDA out of memory"]
        assert messages(category="warning") == [EXPECTED[14][2], EXPECTED[16][2]]
        assert len(messages(category="metrics")) == 4
        assert messages(keyword="EXITED WITH 143") == ["Interrupted at step 850: pod exited with 143"]
        # In the payload only (a hyperparameter), and LIKE wildcards taken literally.
        assert messages(keyword="q_proj") == [EXPECTED[1][2]]
        assert messages(keyword="q%proj") == []
        assert messages(keyword="oom", category="warning") == []
        assert job_events(conn, job_id, keyword="nothing like this").total == 0
        with pytest.raises(ValueError, match="unknown category"):
            job_events(conn, job_id, category="info")


def test_fifty_events_per_page_with_the_total_on_every_page(migrated: str, store: EventStore) -> None:
    job_id = queue_sample_job(store.app)
    store.app.update_job(job_id, lambda j: j.start_provisioning("spot", T0))
    for step in range(1, 61):
        store.app.update_job(job_id, lambda j, s=step: j.record_progress(s, 60, s / 60, 1 / s, 1, T0))
    with psycopg.connect(migrated) as conn:
        apply_all(conn, store)
        pages = [job_events(conn, job_id, page=n) for n in (1, 2, 3)]
        assert [len(p.events) for p in pages] == [50, 15, 0]
        assert {p.total for p in pages} == {65} and pages[0].pages == 2
        ids = [e.notification_id for p in pages for e in p.events]
        assert ids == sorted(ids) and len(set(ids)) == 65
        assert pages[1].events[-1].message == "Step 60 of 60: loss 0.0167, epoch 1.00"
        metrics = job_events(conn, job_id, category="metrics", page=2, per_page=25)
        assert (metrics.total, len(metrics.events), metrics.pages) == (60, 25, 3)


def test_a_rebuild_equals_incremental_application(migrated: str, store: EventStore) -> None:
    eventful_job(store.app)
    with psycopg.connect(migrated) as conn:
        apply_all(conn, store)
        live = rows(conn)
        assert rebuild(conn, PROJECTION, {"pipeline": store.app}) == len(live)
        assert rows(conn) == live


async def _declare(url: str) -> None:
    nc = await bus.connect(url, "test-setup")
    await bus.declare(nc.jetstream())
    await nc.close()


async def _republish_events(url: str) -> int:
    """Every message of EVENTS again under new ids, as a redelivery would bring them; returns the
    stream's last sequence."""
    nc = await bus.connect(url, "test-publisher")
    js = nc.jetstream()
    info = await js.stream_info("EVENTS")
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg("EVENTS", seq)
        ack = await js.publish(msg.subject, msg.data, headers={"Nats-Msg-Id": f"again-{seq}"})
    await nc.close()
    return ack.seq


def acked_up_to(url: str, durable: str, stream: str = "EVENTS") -> int:
    async def floor() -> int:
        nc = await bus.connect(url, "test-probe")
        try:
            return (await nc.jetstream().consumer_info(stream, durable)).ack_floor.stream_seq
        finally:
            await nc.close()

    return asyncio.run(floor())


def test_the_live_consumer_logs_what_the_relay_publishes_and_skips_catalog_events(
    migrated: str, nats_server, store: EventStore, tmp_path: Path
) -> None:
    asyncio.run(_declare(nats_server.url))
    env = {"DATABASE_URL": migrated, "NATS_URL": nats_server.url}
    file_id = register(store.app)  # its CatalogFile events share the subject events.>
    job_id = store.app.create_job_from_file(file_id, created_by="alice", at=T0)
    store.app.start_job(job_id, "alice", "member", T0)
    expected = len(store.app.recorder.select_notifications(1, 1000, topics=PROJECTION.topics))
    projections = pipeline_process(["projections", "run"], env, tmp_path / "projections.log")
    relay = pipeline_process(["relay"], env, tmp_path / "relay.log")
    try:
        with psycopg.connect(migrated, autocommit=True) as conn:
            wait_for(lambda: len(rows(conn)) == expected, message="the event log to catch up")
            live = rows(conn)
            last = asyncio.run(_republish_events(nats_server.url))
            wait_for(lambda: acked_up_to(nats_server.url, "projection-event_log") >= last,
                     message="the redelivered events consumed")
            assert rows(conn) == live
            topics = {r[4] for r in live}
            assert {"TrainingJob.Queued", "Budget.Reserved"} <= topics
            assert not any(topic.startswith("CatalogFile.") for topic in topics)
            assert job_events(conn, job_id).total == expected - 1  # all but Budget.Created
        assert stop_process(projections) == 0
        with psycopg.connect(migrated) as conn:
            assert rebuild(conn, PROJECTION, {"pipeline": store.app}) == expected
            assert rows(conn) == live
    finally:
        stop_process(relay)
        stop_process(projections)
