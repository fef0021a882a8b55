"""`pipeline notifications run` as a real process behind the real relay: JetStream redelivery and a
Slack outage, with a real SMTP server and an HTTP server standing in for Slack; its digest loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from handlers.notifications.preferences import Preferences, save_preferences
from infra import bus
from infra.eventstore import EventStore
from tests.fakes.mail_and_slack import FakeSlack, SmtpSink
from tests.helpers import pipeline_process, stop_process, wait_for
from tests.integration.test_notifications import BASE, completed_job

SUBJECT = "events.TrainingJob.Completed"


@pytest.fixture
def env(migrated: str, nats_server) -> dict[str, str]:
    async def declare() -> None:
        nc = await bus.connect(nats_server.url, "test-setup")
        await bus.declare(nc.jetstream())
        await nc.close()

    asyncio.run(declare())
    return {"DATABASE_URL": migrated, "NATS_URL": nats_server.url, "PIPELINE_PUBLIC_URL": BASE}


async def _republish_completed(url: str, times: int) -> None:
    """The Completed event again under new message ids: what a relay republishing it outside
    JetStream's duplicate window would do."""
    nc = await bus.connect(url, "test-publisher")
    js = nc.jetstream()
    info = await js.stream_info("EVENTS")
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg("EVENTS", seq)
        if msg.subject == SUBJECT:
            for n in range(times):
                await js.publish(msg.subject, msg.data, headers={"Nats-Msg-Id": f"again-{n}"})
    await nc.close()


def notifier_settled(url: str) -> bool:
    """The notifier's consumer has every message of the stream acknowledged."""

    async def ask() -> bool:
        nc = await bus.connect(url, "test-reader")
        try:
            js = nc.jetstream()
            info, stream = await js.consumer_info("EVENTS", "notifier"), await js.stream_info("EVENTS")
            return (info.num_pending, info.num_ack_pending, info.ack_floor.stream_seq) == (0, 0, stream.state.last_seq)
        finally:
            await nc.close()

    return asyncio.run(ask())


def table(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def test_the_notifier_process_sends_once_through_redelivery_and_a_slack_outage(env: dict[str, str],
                                                                              tmp_path: Path) -> None:
    smtp, slack = SmtpSink().start(), FakeSlack(answers=[503, 503, 503]).start()
    env |= {"PIPELINE_SMTP_HOST": "127.0.0.1", "PIPELINE_SMTP_PORT": str(smtp.port), "PIPELINE_SMTP_TLS": "none",
            "PIPELINE_SLACK_WEBHOOK_URL": slack.url}
    url = env["DATABASE_URL"]
    with psycopg.connect(url) as conn:
        save_preferences(conn, Preferences("alice", "alice@example.com"))
        save_preferences(conn, Preferences("bob", "bob@example.com", digest="daily"))
    store = EventStore.open(url)
    job_id = completed_job(store.app)
    store.close()
    notifier = pipeline_process(["notifications", "run"], env, tmp_path / "notifier.log")
    relay = pipeline_process(["relay"], env, tmp_path / "relay.log")
    try:
        wait_for(lambda: slack.received, timeout=60, message="the Slack message once Slack is back")
        assert slack.requests == 4  # three 503s, retried with backoff, then one message
        assert [m["To"] for m in smtp.messages] == ["alice@example.com"]
        assert f"{BASE}/jobs/{job_id}" in slack.received[0]["text"]

        asyncio.run(_republish_completed(env["NATS_URL"], 2))  # delivered three times in all
        wait_for(lambda: notifier_settled(env["NATS_URL"]), timeout=60, message="the notifier to ack everything")
        assert len(slack.received) == 1 and slack.requests == 4
        assert len(smtp.messages) == 1
        assert sorted(table(url, "SELECT channel, recipient, status, attempts FROM notification_deliveries"
                                 " WHERE kind <> 'digest'")) == [
            ("banner", "user:alice", "sent", 1), ("email", "alice@example.com", "sent", 1),
            ("slack", "team", "sent", 4)]
        # The digest loop ran at start: bob's digest of the day is settled (nothing happened to his jobs).
        assert table(url, "SELECT recipient, status, error FROM notification_deliveries WHERE kind = 'digest'") == [
            ("user:bob", "skipped", "nothing to report")]
        assert table(url, "SELECT * FROM dead_letters") == []
    finally:
        assert stop_process(relay) == 0
        assert stop_process(notifier) == 0, (tmp_path / "notifier.log").read_text()[-3000:]
        smtp.stop()
        slack.stop()
