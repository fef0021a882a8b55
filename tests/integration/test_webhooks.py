"""Outgoing webhooks (#20) against real PostgreSQL and a local receiver that verifies every request
with the `openai` client's own `webhooks.unwrap`: events of the real application, taken in by the
notifier as the bus delivers them, sent by the sender with retries and backoff, each attempt logged."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import openai
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from domain.budget_month import budget_month
from handlers.notifications.channels import Mailer, SlackWebhooks, SmtpConfig
from handlers.notifications.notifier import Notifier, NotifierConfig
from handlers.webhooks import store
from handlers.webhooks.outbox import WebhookOutbox
from handlers.webhooks.sender import RetryPolicy, WebhookSender
from handlers.webhooks.signing import PREFIX
from infra import envelope
from infra.eventstore import EventStore
from infra.secretbox import SecretBox, box_for
from tests.factories import T0
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.helpers import wait_for
from tests.integration.test_notifications import completed_job, training_job

TEAM = "default"
EVENTS = ["fine_tuning.job.succeeded", "fine_tuning.job.failed", "pipeline.job.paused", "pipeline.budget.threshold"]


@dataclass
class Hooks:
    url: str
    store: EventStore
    pool: ConnectionPool
    notifier: Notifier
    box: SecretBox
    receiver: WebhookReceiver
    fed: int = 0

    @property
    def app(self):
        return self.store.app

    def feed(self) -> list[bytes]:
        """Hands the notifier every event stored since the last feed, as the relay publishes them."""
        stored = self.app.recorder.select_notifications(self.fed + 1, 1000)
        bodies = [envelope.encode(self.app.name, n) for n in stored]
        self.fed = stored[-1].id if stored else self.fed
        assert self.notifier.handle_batch(bodies) == [None] * len(bodies)
        return bodies

    def endpoint(self, events: list[str] = EVENTS) -> UUID:
        with psycopg.connect(self.url) as conn:
            row, secret = store.create_endpoint(conn, self.box, team=TEAM, url=self.receiver.url, events=events,
                                                description="ML platform", actor="bob")
        self.receiver.secret = secret
        return row["id"]

    def sender(self, **policy: float) -> WebhookSender:
        return WebhookSender(self.pool, self.box, RetryPolicy(**({"first_s": 0.05} | policy)), timeout_s=5)

    def log(self) -> list[dict]:
        with psycopg.connect(self.url) as conn:
            return store.deliveries(conn, TEAM)


@pytest.fixture
def hooks(migrated: str, tmp_path: Path) -> Iterator[Hooks]:
    the_store = EventStore.open(migrated, pool_size=2)
    pool = ConnectionPool(migrated, min_size=1, max_size=6, open=True)
    notifier = Notifier(the_store.app, pool, NotifierConfig(TEAM, "http://pipeline.test", "p@example.com"),
                        Mailer(SmtpConfig("", 25)), SlackWebhooks(5), WebhookOutbox(the_store.app, pool, TEAM))
    receiver = WebhookReceiver().start()
    yield Hooks(migrated, the_store, pool, notifier, box_for("", tmp_path / "state"), receiver)
    receiver.stop()
    notifier.slack.close()
    pool.close()
    the_store.close()


def send_until(sender: WebhookSender, done, timeout: float = 10) -> None:
    wait_for(lambda: sender.send_due() >= 0 and done(), timeout=timeout, interval=0.02, message="the deliveries")


def test_a_receiver_that_fails_twice_gets_the_event_on_the_third_try_exactly_once_recorded_as_delivered(
        hooks: Hooks, caplog: pytest.LogCaptureFixture) -> None:
    hooks.endpoint()
    hooks.receiver.answers = [500, 503]
    job_id = completed_job(hooks.app)
    bodies = hooks.feed()
    sender = hooks.sender()
    with caplog.at_level(logging.INFO, logger="handlers.webhooks"):
        send_until(sender, lambda: hooks.receiver.accepted)
    logged = caplog.text  # each attempt logged by the receiver's host: never its secret, path or query
    assert "attempt 1: HTTP 500" in logged and "delivered to 127.0.0.1 on attempt 3" in logged
    assert hooks.receiver.secret[len(PREFIX):] not in logged and "/hooks/" not in logged and "team=ml" not in logged

    requests = hooks.receiver.requests
    assert [r["status"] for r in requests] == [500, 503, 200] and not any(r["error"] for r in requests)
    assert len({r["headers"]["webhook-id"] for r in requests}) == 1 and len({r["body"] for r in requests}) == 1
    [event] = hooks.receiver.accepted  # as the openai client reads it
    assert isinstance(event, openai.types.webhooks.FineTuningJobSucceededWebhookEvent)
    assert (event.type, event.data.id, event.object) == ("fine_tuning.job.succeeded", str(job_id), "event")
    assert json.loads(requests[0]["body"]) == {"id": event.id, "object": "event", "created_at": event.created_at,
                                               "type": "fine_tuning.job.succeeded", "data": {"id": str(job_id)}}
    times = [int(r["headers"]["webhook-timestamp"]) for r in requests]
    assert times == sorted(times) and abs(times[-1] - time.time()) < 30  # each attempt signed at its own time

    [delivery] = hooks.log()
    assert (delivery["status"], delivery["attempts"], delivery["event_id"]) == ("delivered", 3, event.id)
    assert [(a["number"], a["status_code"], a["error"]) for a in delivery["log"]] == [
        (1, 500, "HTTP 500: no"), (2, 503, "HTTP 503: no"), (3, 200, None)]
    gaps = [(b["at"] - a["at"]).total_seconds() for a, b in zip(delivery["log"], delivery["log"][1:], strict=False)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.2  # the backoff: 0.05 s, then 4 × longer

    assert hooks.notifier.handle_batch(bodies) == [None] * len(bodies)  # the bus delivers the events again
    assert sender.send_due() == 0 and len(requests) == 3 and len(hooks.log()) == 1


def test_a_delivery_that_runs_out_of_attempts_has_failed_and_a_redelivery_by_hand_delivers_it(hooks: Hooks) -> None:
    endpoint = hooks.endpoint()
    hooks.receiver.answers = [500, 500]
    training = training_job(hooks.app)
    hooks.app.pause_job(training, actor="alice", role="member", at=datetime.now(timezone.utc))
    hooks.app.update_job(training, lambda j: j.interrupt("sigterm", 512, j.attempt, datetime.now(timezone.utc)))
    hooks.feed()
    sender = hooks.sender(attempts=2)
    send_until(sender, lambda: hooks.log()[0]["status"] == "failed")
    assert len(hooks.receiver.requests) == 2 and not hooks.receiver.accepted

    [failed] = hooks.log()
    with psycopg.connect(hooks.url) as conn:
        store.redeliver(conn, TEAM, failed["id"], "bob")
    send_until(sender, lambda: hooks.receiver.accepted)
    [event] = hooks.receiver.accepted
    assert event.type == "pipeline.job.paused"  # our own type, verified alike
    assert json.loads(hooks.receiver.requests[-1]["body"])["data"] == {"id": str(training), "step": 512,
                                                                      "checkpoint_step": 0}
    [delivered] = hooks.log()
    assert delivered["status"] == "delivered" and delivered["endpoint_id"] == endpoint
    assert [(a["status_code"], a["requested_by"]) for a in delivered["log"]] == [(500, None), (500, None), (200, "bob")]
    with psycopg.connect(hooks.url) as conn, pytest.raises(store.WebhookNotFoundError):
        store.redeliver(conn, "another-team", failed["id"], "mallory")


def test_a_rotated_secret_signs_alongside_the_old_one_and_the_secret_is_sealed_at_rest(hooks: Hooks) -> None:
    endpoint = hooks.endpoint()
    old = hooks.receiver.secret
    with psycopg.connect(hooks.url) as conn:
        new = store.rotate_secret(conn, hooks.box, TEAM, endpoint, datetime.now(timezone.utc))
        sealed = conn.execute("SELECT secret_sealed, previous_sealed FROM webhook_endpoints").fetchone()
    assert new.startswith(PREFIX) and new != old
    assert not any(old in s or new in s or old[len(PREFIX):] in s for s in sealed)  # never stored in the clear
    job_id = completed_job(hooks.app)
    hooks.feed()
    sender = hooks.sender()
    hooks.receiver.secret = old  # a receiver not switched over yet
    send_until(sender, lambda: hooks.receiver.accepted)
    request = hooks.receiver.requests[-1]
    assert len(request["headers"]["webhook-signature"].split()) == 2
    hooks.receiver.secret = new
    assert hooks.receiver.verify(request["body"], request["headers"]).data.id == str(job_id)
    forged = request["body"].replace(str(job_id).encode(), b"00000000-0000-0000-0000-000000000000")
    with pytest.raises(openai.InvalidWebhookSignatureError):
        hooks.receiver.verify(forged, request["headers"])

    other_key = SecretBox(b"k" * 32)  # the deployment's key lost: no guessing, a clear reason, no retry
    hooks.receiver.requests.clear()
    completed_job(hooks.app)
    hooks.feed()
    send_until(WebhookSender(hooks.pool, other_key, RetryPolicy(first_s=0.05)),
               lambda: hooks.log()[0]["status"] == "failed")
    assert "sealed under another key" in hooks.log()[0]["log"][0]["error"] and not hooks.receiver.requests


def test_an_endpoint_gets_only_the_events_it_chose_and_budget_thresholds_name_their_month(hooks: Hooks) -> None:
    hooks.endpoint(["pipeline.budget.threshold"])
    job_id = completed_job(hooks.app)  # its completion is not asked for
    month = budget_month(T0, "UTC")
    hooks.app.change_limit(month, Decimal("34"), "bob", "manager", "A limit low enough for one job to cross"
                           " its budget thresholds", T0)
    hooks.app.record_job_spend(job_id, T0 + timedelta(hours=13))  # $31.87 of $34: 80 % and 90 %
    hooks.feed()
    send_until(hooks.sender(), lambda: not [d for d in hooks.log() if d["status"] == "pending"])
    types = {json.loads(r["body"])["type"] for r in hooks.receiver.requests}
    assert types == {"pipeline.budget.threshold"}
    sent = sorted((json.loads(r["body"])["data"] for r in hooks.receiver.requests), key=lambda d: d["percent"])
    assert [(d["percent"], d["limit"], d["month"]) for d in sent] == [(80, "34", month), (90, "34", month)]


@pytest.mark.parametrize(("url", "events", "problem"), [
    ("ftp://example.com/x", ["fine_tuning.job.failed"], "url: an http:// or https:// address"),
    ("https://", ["fine_tuning.job.failed"], "url: an http:// or https:// address"),
    ("https://example.com/x", [], "events: choose at least one event"),
    ("https://example.com/x", ["job.done"], "events: unknown event type 'job.done'"),
])
def test_an_endpoint_that_cannot_work_is_refused_naming_the_field(hooks: Hooks, url: str, events: list[str],
                                                                  problem: str) -> None:
    with psycopg.connect(hooks.url) as conn, pytest.raises(store.InvalidWebhookError, match=problem):
        store.create_endpoint(conn, hooks.box, team=TEAM, url=url, events=events, description="", actor="bob")
