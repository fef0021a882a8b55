"""Relay and live projection as real processes against PostgreSQL and nats-server."""

import asyncio
import signal
from pathlib import Path

import psycopg
import pytest

from infra import bus
from infra.eventstore import EventStore
from tests.factories import queue_sample_job
from tests.helpers import pipeline_process, stop_process, wait_for


def stream_messages(url: str, stream: str = "EVENTS") -> list[tuple[str, str]]:
    """(subject, Nats-Msg-Id) of every message in the stream, in order."""

    async def read() -> list[tuple[str, str]]:
        nc = await bus.connect(url, "test-reader")
        try:
            js = nc.jetstream()
            info = await js.stream_info(stream)
            out = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                msg = await js.get_msg(stream, seq)
                out.append((msg.subject, (msg.headers or {}).get("Nats-Msg-Id")))
            return out if info.state.messages else []
        finally:
            await nc.close()

    return asyncio.run(read())


def job_rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT * FROM jobs ORDER BY id").fetchall()


def dead_letters(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT consumer, msg_id, error FROM dead_letters").fetchall()


def relay_position(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT notification_id FROM relay_positions WHERE application = 'pipeline'").fetchone()
    return row[0] if row else 0


@pytest.fixture
def env(migrated: str, nats_server) -> dict[str, str]:
    asyncio.run(_declare(nats_server.url))
    return {"DATABASE_URL": migrated, "NATS_URL": nats_server.url}


async def _declare(url: str) -> None:
    nc = await bus.connect(url, "test-setup")
    await bus.declare(nc.jetstream())
    await nc.close()


def test_a_relay_killed_between_publish_and_tracking_republishes_without_duplicates(
    env: dict[str, str], tmp_path: Path
) -> None:
    store = EventStore.open(env["DATABASE_URL"])
    ids = [queue_sample_job(store.app, name=f"Job {i}") for i in range(3)]
    last = store.app.recorder.max_notification_id()
    store.close()

    crashing = pipeline_process(["relay"], env | {"PIPELINE_FAULT": "relay_kill_after_publish"},
                                tmp_path / "relay1.log")
    assert crashing.wait(30) == -signal.SIGKILL
    assert relay_position(env["DATABASE_URL"]) == 0  # it died before recording its position
    assert len(stream_messages(env["NATS_URL"])) == last

    projections = pipeline_process(["projections", "run"], env, tmp_path / "projections.log")
    relay = pipeline_process(["relay"], env, tmp_path / "relay2.log")
    try:
        wait_for(lambda: relay_position(env["DATABASE_URL"]) == last, message="relay to catch up")
        wait_for(lambda: [r[2] for r in job_rows(env["DATABASE_URL"])] == ["queued"] * 3,
                 message="read model")
        rows_before = job_rows(env["DATABASE_URL"])
        messages = stream_messages(env["NATS_URL"])
        assert len(messages) == last
        assert sorted(m for _, m in messages) == sorted(f"pipeline:{n}" for n in range(1, last + 1))
        assert [s for s, _ in messages[:3]] == ["events.TrainingJob.Created", "events.TrainingJob.Configured",
                                                "events.TrainingJob.Queued"]
        assert sorted(r[0] for r in job_rows(env["DATABASE_URL"])) == sorted(ids)
        assert job_rows(env["DATABASE_URL"]) == rows_before
    finally:
        assert stop_process(relay) == 0
        assert stop_process(projections) == 0


def test_redelivered_and_poison_messages_change_nothing_and_the_consumer_keeps_going(
    env: dict[str, str], tmp_path: Path
) -> None:
    store = EventStore.open(env["DATABASE_URL"])
    queue_sample_job(store.app, name="First")
    projections = pipeline_process(["projections", "run"], env, tmp_path / "projections.log")
    relay = pipeline_process(["relay"], env, tmp_path / "relay.log")
    try:
        wait_for(lambda: [r[2] for r in job_rows(env["DATABASE_URL"])] == ["queued"],
                 message="the first job fully projected")
        before = job_rows(env["DATABASE_URL"])

        async def republish_and_poison() -> None:
            nc = await bus.connect(env["NATS_URL"], "test-publisher")
            js = nc.jetstream()
            for seq in (1, 2, 3):  # the same job events again, under new ids, as a redelivery would
                msg = await js.get_msg("EVENTS", seq)
                await js.publish(msg.subject, msg.data, headers={"Nats-Msg-Id": f"again-{seq}"})
            await js.publish("events.TrainingJob.Queued", b"{not json", headers={"Nats-Msg-Id": "poison"})
            await nc.close()

        asyncio.run(republish_and_poison())
        second = queue_sample_job(store.app, name="Second")
        wait_for(lambda: len(job_rows(env["DATABASE_URL"])) == 2, message="consumer past the poison")
        # Every projection reading job events dead-letters it on its own.
        dead = wait_for(lambda: len(d := dead_letters(env["DATABASE_URL"])) == 3 and d,
                        message="the poison message dead-lettered")
        assert sorted((c, m) for c, m, _ in dead) == [
            ("projection-event_log", "poison"), ("projection-job_costs", "poison"), ("projection-jobs", "poison")]
        assert all("not an event envelope" in error for _, _, error in dead)
        rows = job_rows(env["DATABASE_URL"])
        assert [r for r in rows if r[0] != second] == before
    finally:
        stop_process(relay)
        stop_process(projections)
        store.close()
