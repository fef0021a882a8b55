"""The notifier against real PostgreSQL, a real SMTP server (aiosmtpd) and an HTTP server standing in
for Slack's webhook, fed the EVENTS envelopes of events stored by the real application."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace
from uuid import UUID

import psycopg
import pytest
from litestar import Litestar
from litestar.datastructures import State
from litestar.testing import TestClient
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from domain.aggregates.budget import Budget
from domain.budget_month import budget_month
from domain.job_status import FailureType, JobStatus
from domain.presets import preset_named
from domain.values import ArtifactRef
from handlers.notifications import ledger, tokens
from handlers.notifications.channels import Mailer, SlackWebhooks, SmtpConfig
from handlers.notifications.notifier import DeliveryRetryError, Notifier, NotifierConfig
from handlers.notifications.preferences import Preferences, TeamSettings, save_preferences, save_team
from infra import envelope
from infra.consumers import TRANSIENT
from infra.eventstore import EventStore
from infra.settings import load_settings
from tests.factories import T0, configuration, job_fields
from tests.fakes.mail_and_slack import FakeSlack, SmtpSink
from web import notifications
from web.app import template_config

BASE = "http://pipeline.test"
SECRET = "test-approval-secret-0123456789"
SENDER = "LoRA Pipeline <pipeline@example.com>"
ADAPTER = ArtifactRef("job-x", "x/adapter-attempt-1.tar", "d" * 64, 1000)


@dataclass
class Rig:
    url: str
    store: EventStore
    pool: ConnectionPool
    smtp: SmtpSink
    slack: FakeSlack
    notifier: Notifier
    fed: int = 0
    bodies: list[bytes] = field(default_factory=list)

    @property
    def app(self):
        return self.store.app

    def feed(self) -> list[Exception | None]:
        """Hands the notifier every event stored since the last feed, as the relay would publish them."""
        stored = self.app.recorder.select_notifications(self.fed + 1, 1000)
        self.bodies = [envelope.encode(self.app.name, n) for n in stored]
        self.fed = stored[-1].id if stored else self.fed
        return self.notifier.handle_batch(self.bodies)

    def again(self) -> list[Exception | None]:
        return self.notifier.handle_batch(self.bodies)

    def deliveries(self, failed_only: bool = False) -> list[tuple[str, str, str, str | None]]:
        with psycopg.connect(self.url) as conn:
            rows = ledger.deliveries(conn, failed_only)
        return sorted((r["channel"], r["recipient"], r["status"], r["error"]) for r in rows)

    def save(self, value: Preferences | TeamSettings) -> None:
        with psycopg.connect(self.url) as conn:
            (save_preferences if isinstance(value, Preferences) else save_team)(conn, value)


def rig_for(url: str, smtp: SmtpSink | None, slack: FakeSlack | None, secret: str = SECRET) -> Notifier:
    store = EventStore.open(url, pool_size=2)
    pool = ConnectionPool(url, min_size=1, max_size=2, open=True)
    mailer = Mailer(SmtpConfig("127.0.0.1" if smtp else "", smtp.port if smtp else 25, tls="none", timeout_s=5))
    config = NotifierConfig("default", BASE, SENDER, slack.url if slack else "", secret)
    return Notifier(store.app, pool, config, mailer, SlackWebhooks(5))


@pytest.fixture
def rig(migrated: str) -> Iterator[Rig]:
    smtp, slack = SmtpSink().start(), FakeSlack().start()
    notifier = rig_for(migrated, smtp, slack)
    rig = Rig(migrated, EventStore(notifier.app), notifier.pool, smtp, slack, notifier)
    rig.save(Preferences("alice", "alice@example.com", ("email", "slack")))
    rig.save(TeamSettings("default", manager_emails=("boss@example.com",), finance_emails=("money@example.com",)))
    yield rig
    notifier.slack.close()
    notifier.pool.close()
    rig.store.close()
    smtp.stop()
    slack.stop()


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def training_job(app, batch_size: int = 2) -> UUID:
    """Alice's job, queued at T0, on a pod from T0+12 min, training at step 500 of 1000."""
    job_id = app.create_job(**job_fields(at=T0))
    app.configure_job(job_id, **configuration(hyperparameters=preset_named("balanced").as_config()
                                              | {"per_device_train_batch_size": batch_size}))
    app.start_job(job_id, "alice", "member", T0)
    for step in (lambda j: j.start_provisioning("spot", at(0)),
                 lambda j: j.pod_started("pod-1", 1, Decimal("2.49"), at(12)),
                 lambda j: j.change_stage(JobStatus.TRAINING, 1, at(15)),
                 lambda j: j.record_progress(500, 1000, 1.5, 0.41, 1, at(60))):
        app.update_job(job_id, step)
    return job_id


def completed_job(app) -> UUID:
    job_id = training_job(app)
    app.update_job(job_id, lambda j: j.complete(
        ADAPTER, {"final_loss": 0.287, "perplexity_improvement_percent": 31.2}, 1, at(13 * 60 + 12)))
    return job_id


def team_banners(conn: psycopg.Connection) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT kind, level, message, link FROM notification_banners WHERE team = 'default'"
                           " AND user_name IS NULL AND dismissed_at IS NULL ORDER BY created_at DESC").fetchall()


def text_of(message) -> str:
    return message.get_body(("plain",)).get_content()


def html_of(message) -> str:
    return message.get_body(("html",)).get_content()


def test_a_completed_job_sends_its_creator_one_email_and_the_team_channel_one_slack_message(rig: Rig) -> None:
    rig.save(TeamSettings("default", slack_webhook_url=rig.slack.url, slack_channel="#training"))
    job_id = completed_job(rig.app)
    assert rig.feed() == [None] * len(rig.bodies)

    [mail] = rig.smtp.messages
    assert (mail["To"], mail["From"], mail["Subject"]) == ("alice@example.com", SENDER,
                                                          "✓ Training Job Completed: Advisor tone v1")
    headline = "✓ Training completed: Advisor tone v1 (13.2hrs, $32.37, 31% perplexity improvement)"
    text = text_of(mail)
    for line in (headline, "Duration: 13.2 hours", "Final cost: $32.37",
                 "Final metrics: Training loss 0.287, Perplexity improvement 31%",
                 "Configuration: Balanced preset, spot H100_PCIE_80GB, epochs 3, batch size 2, LoRA rank 16",
                 f"View Job Details: {BASE}/jobs/{job_id}", f"Download Adapters: {BASE}/jobs/{job_id}/adapter",
                 f"Generate Report: {BASE}/jobs/{job_id}/report.pdf"):
        assert line in text.splitlines()
    html = html_of(mail)
    assert headline in html and f'href="{BASE}/jobs/{job_id}"' in html

    link = f"{BASE}/jobs/{job_id}"
    assert rig.slack.received == [{
        "text": f"{headline} View Job Details: {link}",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text":
            f"✓ Training completed: *Advisor tone v1* (13.2hrs, $32.37, 31% perplexity improvement) "
            f"<{link}|View Job Details>"}}]}]
    # Alice chose Slack too, without a webhook of her own: the team channel's message is hers.
    assert rig.deliveries() == [("banner", "user:alice", "sent", None), ("email", "alice@example.com", "sent", None),
                                ("slack", "team", "sent", None)]


def test_a_failed_oom_job_emails_the_error_and_its_suggested_fix(rig: Rig) -> None:
    job_id = training_job(rig.app, batch_size=4)
    details = {"batch_size": 4, "suggested_fixes": ["Reduce batch_size to 2 (recommended)",
                                                    "Switch to Conservative preset (r=8 instead of r=16)"]}
    rig.app.update_job(job_id, lambda j: j.fail(FailureType.OOM, "CUDA out of memory. Tried to allocate 2.00 GiB",
                                                details, at(138)))
    assert rig.feed() == [None] * len(rig.bodies)

    [mail] = rig.smtp.to("alice@example.com")
    assert mail["Subject"] == "✗ Training Job Failed: Advisor tone v1"
    text = text_of(mail).splitlines()
    for line in ("✗ Training failed: Advisor tone v1 (oom: CUDA out of memory. Tried to allocate 2.00 GiB). "
                 "Suggested fix: per_device_train_batch_size: 4 → 2.",
                 "Error type: oom", "Error message: CUDA out of memory. Tried to allocate 2.00 GiB",
                 "Elapsed time before failure: 2.3 hours", "Cost spent: $5.23", "Suggested fixes:",
                 "  - Your previous job failed with OOM error. Retry with batch_size=2 (suggested)?",
                 "  - Reduce batch_size to 2 (recommended)",
                 "  - Switch to Conservative preset (r=8 instead of r=16)",
                 f"Retry with Suggested Fix: {BASE}/jobs/{job_id}#retry"):
        assert line in text
    assert len(rig.smtp.messages) == 1
    assert [p["text"] for p in rig.slack.received] == [  # no webhook in the team settings: the default one
        "✗ Training failed: Advisor tone v1 (oom: CUDA out of memory. Tried to allocate 2.00 GiB). Suggested fix: "
        f"per_device_train_batch_size: 4 → 2. View Error Details: {BASE}/jobs/{job_id}"]


def test_each_budget_threshold_reaches_exactly_its_channels(rig: Rig) -> None:
    month = "2026-11"
    budget = Budget.open("default", month, Decimal(500), T0)
    rig.app.save(budget)
    rig.feed()
    job = UUID(int=7)
    seen: dict[int, tuple] = {}
    for percent, total in ((80, "400"), (90, "450"), (95, "475"), (100, "505")):
        mails, posts = len(rig.smtp.messages), len(rig.slack.received)
        budget.record_spend(job, Decimal(total), T0)
        rig.app.save(budget)
        assert rig.feed() == [None, None]  # SpendRecorded (nothing to say), ThresholdCrossed
        new_mails = rig.smtp.messages[mails:]
        with psycopg.connect(rig.url) as conn:
            banners = [b["message"] for b in team_banners(conn)]
        seen[percent] = (sorted(m["To"] for m in new_mails), len(rig.slack.received) - posts, len(banners))
        assert {m["Subject"] for m in new_mails} == {
            f"⚠ Budget Alert: {percent}% of the {month} training budget {'exceeded' if percent == 100 else 'used'}"}
    both = ["boss@example.com", "money@example.com"]
    assert seen == {80: (both, 0, 0), 90: (both, 0, 0), 95: (both, 1, 0), 100: (both, 1, 1)}

    assert "You've used 80% of monthly training budget ($400.00 of $500.00)" in text_of(rig.smtp.messages[0])
    assert "Active jobs: none" in text_of(rig.smtp.messages[0])  # the job charged here holds no reservation
    dashboard = f"View Budget Dashboard: {BASE}/budget?month={month}"
    assert [p["text"] for p in rig.slack.received] == [
        f"You've used 95% of monthly training budget ($475.00 of $500.00) {dashboard}",
        f"Monthly training budget exceeded ($505.00 of $500.00) {dashboard}"]
    with psycopg.connect(rig.url) as conn:
        [banner] = team_banners(conn)
    assert (banner["kind"], banner["level"], banner["message"], banner["link"]) == (
        "budget_100", "error", "Monthly training budget exceeded ($505.00 of $500.00)", f"/budget?month={month}")


def test_active_jobs_that_may_exceed_the_budget_email_managers_and_finance_and_post_once(rig: Rig) -> None:
    """A job started within the grace margin of the limit: the budget records the forecast overrun
    with the reservation, and the notifier tells managers, finance and the team channel, once."""
    budget = Budget.open("default", "2026-11", Decimal(500), T0)
    budget.reserve(UUID(int=8), Decimal("480"), "alice", "member", T0)
    budget.record_spend(UUID(int=8), Decimal("480"), T0)
    rig.app.save(budget)
    rig.feed()
    mails, posts = len(rig.smtp.messages), len(rig.slack.received)
    budget.reserve(UUID(int=9), Decimal("45"), "alice", "member", at(5))
    rig.app.save(budget)
    assert rig.feed() == [None, None]  # Reserved, OverrunForecast
    assert rig.again() == [None, None]  # delivered again: nothing sent again
    new_mails = rig.smtp.messages[mails:]
    assert sorted(m["To"] for m in new_mails) == ["boss@example.com", "money@example.com"]
    assert {m["Subject"] for m in new_mails} == {"⚠ Budget Alert: active jobs may exceed the 2026-11 training budget"}
    text = text_of(new_mails[0])
    for line in ("Active job may exceed budget. Cancel or increase limit.", "$480.00 / $500.00 (96%)",
                 "2 (estimated remaining cost: up to $45.00)", "May exceed the budget by up to $25.00",
                 f"Cancel Active Jobs: {BASE}/jobs?status=active"):
        assert line in text
    assert [p["text"] for p in rig.slack.received[posts:]] == [
        "Active job may exceed budget. Cancel or increase limit."
        f" Increase Budget Limit: {BASE}/budget?month=2026-11#limit"]


def test_the_same_event_delivered_three_times_sends_one_message_per_recipient(rig: Rig) -> None:
    completed_job(rig.app)
    for _ in range(3):
        outcomes = rig.again() if rig.bodies else rig.feed()
        assert outcomes == [None] * len(rig.bodies)
    assert [m["To"] for m in rig.smtp.messages] == ["alice@example.com"]
    assert len(rig.slack.received) == 1 and rig.slack.requests == 1
    with psycopg.connect(rig.url) as conn:
        attempts = conn.execute("SELECT attempts FROM notification_deliveries").fetchall()
    assert attempts == [(1,), (1,), (1,)]  # email, Slack, banner


def test_a_slack_outage_is_retried_and_the_message_arrives_once_without_resending_the_email(rig: Rig) -> None:
    rig.slack.answers = [503, 503, 429]
    job_id = completed_job(rig.app)
    outcomes = rig.feed()
    [failure] = [o for o in outcomes if o is not None]
    assert isinstance(failure, DeliveryRetryError) and isinstance(failure, TRANSIENT)  # nak'd, never dead-lettered
    assert "HTTP 503" in str(failure)
    assert rig.deliveries(failed_only=True) == [
        ("slack", "team", "pending", "Slack webhook answered HTTP 503: service_unavailable")]
    for answer in ("HTTP 503", "HTTP 429"):
        [failure] = [o for o in rig.again() if o is not None]
        assert answer in str(failure)
    assert rig.slack.received == []
    assert rig.again() == [None] * len(rig.bodies)
    assert [p["text"].split(" View Job Details")[0] for p in rig.slack.received] == [
        "✓ Training completed: Advisor tone v1 (13.2hrs, $32.37, 31% perplexity improvement)"]
    assert rig.slack.requests == 4 and len(rig.smtp.messages) == 1
    assert rig.deliveries() == [("banner", "user:alice", "sent", None), ("email", "alice@example.com", "sent", None),
                                ("slack", "team", "sent", None)]
    assert rig.again() == [None] * len(rig.bodies) and rig.slack.requests == 4
    assert str(job_id)  # the job the message named


def test_refusals_are_recorded_as_failed_and_smtp_4xx_is_retried(rig: Rig, web: TestClient) -> None:
    rig.save(Preferences("alice", "alice@example.com", ("email",)))
    rig.smtp.refusals = {"alice@example.com": ["451 4.3.0 Mailbox busy, try again later"],
                         "money@example.com": ["550 5.1.1 No such user"]}
    rig.slack.answers = [404]
    completed_job(rig.app)
    [retry] = [o for o in rig.feed() if o is not None]
    assert "SMTP 451" in str(retry)
    assert rig.again() == [None] * len(rig.bodies)
    assert [m["To"] for m in rig.smtp.messages] == ["alice@example.com"]

    budget = Budget.open("default", "2026-12", Decimal(100), T0)  # November's is the job's
    budget.record_spend(UUID(int=1), Decimal(96), T0)  # 80, 90 and 95 at once
    rig.app.save(budget)
    assert rig.feed() == [None] * len(rig.bodies)  # permanent refusals are settled, not retried
    assert rig.deliveries(failed_only=True) == [
        ("email", "money@example.com", "failed", "SMTP 550: money@example.com: 5.1.1 No such user"),
        ("slack", "team", "failed", "Slack webhook answered HTTP 404: no_service")]
    assert [m["To"] for m in rig.smtp.messages].count("boss@example.com") == 3  # 80, 90 and 95 %
    assert [m["To"] for m in rig.smtp.messages].count("money@example.com") == 2  # refused at 80 % only
    assert [p["text"][:15] for p in rig.slack.received] == ["You've used 95%"]

    api = web.get("/api/notifications/deliveries", params={"failed": "true"}).json()
    assert sorted((d["kind"], d["channel"], d["recipient"], d["status"]) for d in api) == [
        ("budget_80", "email", "money@example.com", "failed"), ("completed", "slack", "team", "failed")]
    shown = pipeline(rig.url, "notifications", "deliveries", "--failed")
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"budget_80 +email +money@example\.com +failed \(SMTP 550: money@example\.com: 5\.1\.1 No such",
                     shown.stdout)
    assert re.search(r"completed +slack +team +failed \(Slack webhook answered HTTP 404: no_service\)", shown.stdout)


def test_the_deliveries_command_refuses_a_limit_past_its_range_in_one_line(migrated: str) -> None:
    huge = pipeline(migrated, "notifications", "deliveries", "--limit", str(2**70))
    assert huge.returncode == 2 and "Traceback" not in huge.stderr  # not PostgreSQL's "bigint out of range"
    assert huge.stderr.splitlines()[-1] == ("pipeline notifications deliveries: error: argument --limit: must be a"
                                            " whole number from 1 to 1,000 (got 1180591620717411303424)")
    assert pipeline(migrated, "notifications", "deliveries", "--limit", "1000").stdout == "no deliveries yet\n"


def test_channels_not_configured_are_recorded_as_skipped(migrated: str) -> None:
    notifier = rig_for(migrated, None, None)
    rig = Rig(migrated, EventStore(notifier.app), notifier.pool, SmtpSink(), FakeSlack(), notifier)
    try:
        rig.save(Preferences("alice", "alice@example.com", ("email", "slack")))
        completed_job(rig.app)
        assert rig.feed() == [None] * len(rig.bodies)
        assert rig.deliveries() == [("banner", "user:alice", "sent", None),
                                    ("email", "alice@example.com", "skipped", "channel not configured"),
                                    ("slack", "team", "skipped", "channel not configured")]
    finally:
        notifier.pool.close()
        rig.store.close()


def pipeline(url: str, *args: str) -> subprocess.CompletedProcess:
    # NATS unreachable on purpose: these commands read and write PostgreSQL only.
    env = os.environ | {"DATABASE_URL": url, "NATS_URL": "nats://127.0.0.1:1"}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def web(rig: Rig) -> Iterator[TestClient]:
    settings = load_settings(approval_secret=SECRET, trust_identity_headers=True)
    state = State({"pool": SimpleNamespace(conninfo=rig.url), "store": rig.store, "settings": settings})
    app = Litestar(route_handlers=[notifications.router], state=state,
                   template_config=template_config())
    with TestClient(app) as client:
        yield client


def links_in(message) -> dict[str, str]:
    return dict(m.groups() for line in text_of(message).splitlines()
                if (m := re.fullmatch(r"(Approve|Deny): \S+(/approvals/\S+)", line)))


def test_a_limit_request_emails_each_manager_links_that_decide_it_once(rig: Rig, web: TestClient) -> None:
    rig.save(TeamSettings("default", manager_emails=("boss@example.com", "alice@example.com", "cfo@example.com")))
    now = datetime.now(timezone.utc)
    month = budget_month(now, "UTC")
    request_id = rig.app.request_limit_increase(month, Decimal(750), "Client delivery for Acme needs two more 70B "
                                                "runs before the end of the month.", "alice", now)
    assert rig.feed() == [None, None]  # the month's budget opened, the request
    # Alice asked: she may not decide, so she gets no links.
    assert sorted(m["To"] for m in rig.smtp.messages) == ["boss@example.com", "cfo@example.com"]
    [mail] = rig.smtp.to("boss@example.com")
    assert mail["Subject"] == f"Budget increase request: $750.00 for {month} from alice"
    assert f"alice asks to raise the {month} training budget from $500.00 to $750.00." in text_of(mail)
    boss, cfo = links_in(mail), links_in(rig.smtp.to("cfo@example.com")[0])
    assert boss.keys() == {"Approve", "Deny"} and boss["Approve"] != cfo["Approve"]

    page = web.get(boss["Approve"])  # a mail scanner opening the link decides nothing
    assert page.status_code == 200 and "Approve this request" in page.text
    assert "<strong>alice</strong> asks to raise" in page.text and "<strong>$750.00</strong>" in page.text
    assert rig.app.budget(month).limit == Decimal(500)

    tampered = boss["Approve"][:-3] + ("AAA" if not boss["Approve"].endswith("AAA") else "BBB")
    assert web.post(tampered).status_code == 400
    expired = tokens.sign(tokens.Approval(request_id, month, "approve", "boss@example.com", now - timedelta(seconds=1)),
                          SECRET)
    refused = web.post(f"/approvals/{expired}")
    assert refused.status_code == 410 and "expired" in refused.text
    assert rig.app.budget(month).limit == Decimal(500)

    decided = web.post(boss["Approve"])
    assert decided.status_code == 200 and "Request approved" in decided.text and ">approved</span>" in decided.text
    assert rig.app.budget(month).limit == Decimal(750)
    again = web.post(boss["Approve"])
    assert again.status_code == 409 and "used already" in again.text
    assert web.get(boss["Approve"]).status_code == 409
    other = web.post(cfo["Deny"])  # an unused link of a decided request: the domain refuses it
    assert other.status_code == 409 and "already approved" in other.text
    assert rig.app.budget(month).requests[str(request_id)]["status"] == "approved"

    assert rig.feed() == [None, None]  # LimitIncreaseDecided, LimitChanged
    [answer] = rig.smtp.to("alice@example.com")
    assert answer["Subject"] == "Budget increase approved, new limit: $750.00 effective immediately"
    assert "Decided by: boss@example.com" in text_of(answer)


def test_preferences_and_team_settings_from_the_cli_and_the_api(rig: Rig, web: TestClient) -> None:
    result = pipeline(rig.url, "notifications", "prefs", "set", "bob", "--email", "Bob@Example.com",
                      "--channels", "email,slack", "--events", "failures", "--digest", "daily")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("bob: email bob@example.com, channels email,slack, events "
                                     "failed,recovery_exhausted,provisioning_timeout, digest daily")
    bad = pipeline(rig.url, "notifications", "prefs", "set", "bob", "--channels", "pager")
    assert bad.returncode == 2 and "unknown channel pager" in bad.stderr
    listed = pipeline(rig.url, "notifications", "prefs", "list").stdout.splitlines()
    assert [line.split(":")[0] for line in listed] == ["alice", "bob"]
    team = pipeline(rig.url, "notifications", "team", "set", "--finance", "ap@example.com", "--slack-channel",
                    "#training-budget")
    assert "finance ap@example.com" in team.stdout and "managers boss@example.com" in team.stdout
    assert team.stdout.strip().endswith("daily budget summary off")
    summary = pipeline(rig.url, "notifications", "team", "set", "--budget-digest", "on")
    assert summary.stdout.strip().endswith("daily budget summary on") and "finance ap@example.com" in summary.stdout

    as_bob = {"X-Pipeline-User": "bob", "X-Pipeline-Role": "member"}
    assert web.get("/api/notification-preferences/bob", headers=as_bob).json()["events"] == [
        "failed", "recovery_exhausted", "provisioning_timeout"]
    assert web.get("/api/notification-preferences/alice", headers=as_bob).status_code == 403
    saved = web.put("/api/notification-preferences/bob", headers=as_bob,
                    json={"email": "bob@example.com", "channels": ["email"], "events": ["completed"]})
    assert saved.status_code == 200 and saved.json()["events"] == ["completed"]
    assert web.put("/api/notification-preferences/bob", headers=as_bob,
                   json={"email": "nobody", "channels": ["email"]}).status_code == 400
    assert web.get("/api/notification-team-settings", headers=as_bob).status_code == 403
    as_manager = {"X-Pipeline-User": "dana", "X-Pipeline-Role": "manager"}
    assert web.get("/api/notification-team-settings", headers=as_manager).json()["slack_channel"] == "#training-budget"
    assert web.get("/api/notification-team-settings", headers=as_manager).json()["budget_digest"] is True
    replaced = web.put("/api/notification-team-settings", headers=as_manager,
                       json={"finance_emails": ["ap@example.com"], "budget_digest": False})
    assert replaced.status_code == 200 and replaced.json()["budget_digest"] is False
    assert web.get("/api/notification-preferences/alice", headers=as_manager).json()["email"] == "alice@example.com"
    assert web.get("/api/notifications/deliveries").json() == []


def test_an_interruption_and_the_resumption_reach_the_creator_once_and_her_banner_follows_the_job(rig: Rig) -> None:
    rig.save(Preferences("alice", "alice@example.com", ("email",)))
    job_id = training_job(rig.app)
    checkpoint = ArtifactRef("job-x", "x/checkpoint-step-400.pt", "e" * 64, 100)
    rig.app.update_job(job_id, lambda j: j.record_checkpoint(400, checkpoint, 1, at(50)))
    rig.app.update_job(job_id, lambda j: j.interrupt("preempted", 420, 1, at(60)))
    assert rig.feed() == [None] * len(rig.bodies)
    assert open_banners(rig.url, "alice") == [("interrupted", "warning", "⚠ Advisor tone v1: Training interrupted at "
                                               "42% complete. Auto-recovery in progress...", f"/jobs/{job_id}")]

    def resume(job) -> None:
        job.begin_recovery(at(61))
        attempt = job.start_provisioning("spot", at(61))
        job.pod_started("pod-2", attempt, Decimal("2.49"), at(65))
        job.change_stage(JobStatus.TRAINING, attempt, at(69))

    rig.app.update_job(job_id, resume)
    assert rig.feed() == [None] * len(rig.bodies) and rig.again() == [None] * len(rig.bodies)
    resumed = "↻ Advisor tone v1: Training resumed from checkpoint (Step 400). Estimated completion: 8h 6m remaining."
    assert [m["Subject"] for m in rig.smtp.to("alice@example.com")] == [
        "⚠ Training Interrupted: Advisor tone v1", "↻ Training Resumed: Advisor tone v1"]
    assert f"Track Status: {BASE}/jobs/{job_id}" in text_of(rig.smtp.messages[-1]).splitlines()
    # The interruption's banner is retired by the resumption's: one banner per job, the latest.
    assert open_banners(rig.url, "alice") == [("resumed", "info", resumed, f"/jobs/{job_id}")]


def open_banners(url: str, user: str) -> list[tuple[str, str, str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT kind, level, message, link FROM notification_banners WHERE user_name = %s"
                            " AND dismissed_at IS NULL ORDER BY created_at DESC", (user,)).fetchall()


def test_an_account_email_is_used_until_the_preferences_name_one(migrated: str) -> None:
    from handlers.notifications.preferences import Preferences, get_preferences, recipient_preferences, save_preferences
    from web import users

    with psycopg.connect(migrated, autocommit=True) as conn:
        users.add_user(conn, "erin", "member", "a long enough password", email="erin@example.com")
        assert recipient_preferences(conn, "erin").email == "erin@example.com"  # no preferences yet
        save_preferences(conn, Preferences("erin", channels=("email", "slack")))
        assert get_preferences(conn, "erin").email is None  # what is stored (and edited) stays as it is
        assert recipient_preferences(conn, "erin").email == "erin@example.com"
        assert recipient_preferences(conn, "erin").channels == ("email", "slack")
        save_preferences(conn, Preferences("erin", email="erin@home.example"))
        assert recipient_preferences(conn, "erin").email == "erin@home.example"
        assert recipient_preferences(conn, "nobody").email is None
