"""The daily digest against real PostgreSQL and a real SMTP server: digest-mode emails become lines
of one email per (user, day), at the team's hour, through restarts, concurrent workers and an SMTP
outage, with the day's spend and active jobs from the read models."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage

import psycopg
from psycopg_pool import ConnectionPool

from domain.job_status import FailureType
from handlers.notifications.channels import Mailer
from handlers.notifications.digest import DigestSchedule
from handlers.notifications.digests import DigestSender
from handlers.notifications.preferences import Preferences, TeamSettings
from pipeline.workers.notifications import READ_MODELS
from projections.runner import PROJECTIONS, rebuild
from tests.integration.test_notifications import (  # noqa: F401 - `rig` is a fixture
    BASE,
    SENDER,
    Rig,
    at,
    completed_job,
    rig,
    text_of,
    training_job,
)

UTC = timezone.utc


def sender_for(rig: Rig, pool: ConnectionPool | None = None, mailer: Mailer | None = None) -> DigestSender:
    return DigestSender(pool or rig.pool, DigestSchedule("UTC", 8), mailer or rig.notifier.mailer, team="default",
                        base_url=BASE, sender=SENDER, reads=READ_MODELS)


def project(rig: Rig) -> None:
    with psycopg.connect(rig.url) as conn:
        for name in ("jobs", "budgets"):
            rebuild(conn, PROJECTIONS[name], {rig.app.name: rig.app})


def digests(url: str) -> list[tuple[str, str, str, int, str | None]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT event_key, recipient, status, attempts, error FROM notification_deliveries"
                            " WHERE kind = 'digest' ORDER BY event_key").fetchall()


def in_digest_mode(rig: Rig) -> None:
    rig.save(Preferences("alice", "alice@example.com", ("email",), digest="daily"))


def test_a_digest_user_gets_one_email_a_day_with_her_jobs_events_spend_and_active_jobs(rig: Rig) -> None:
    in_digest_mode(rig)
    assert sender_for(rig).send_due(datetime(2026, 11, 25, 7, 59, tzinfo=UTC)) == {"alice": "skipped"}
    assert digests(rig.url) == [("digest:2026-11-24:alice", "user:alice", "skipped", 1, "nothing to report")]
    done = completed_job(rig.app)            # completed 2026-11-25 01:12 UTC
    broken = training_job(rig.app, batch_size=4)
    rig.app.update_job(broken, lambda j: j.fail(FailureType.OOM, "CUDA out of memory", {}, at(138)))
    running = training_job(rig.app)
    rig.app.record_job_spend(done, at(13 * 60 + 12))
    rig.app.record_job_spend(broken, at(138))
    assert rig.feed() == [None] * len(rig.bodies)
    assert rig.smtp.messages == []           # no immediate emails in digest mode; the team's Slack still hears
    assert len(rig.slack.received) == 2
    project(rig)
    assert sender_for(rig).send_due(datetime(2026, 11, 25, 7, 59, tzinfo=UTC)) == {}
    assert sender_for(rig).send_due(datetime(2026, 11, 25, 8, 0, tzinfo=UTC)) == {"alice": "sent"}
    assert sender_for(rig).send_due(datetime(2026, 11, 25, 9, 0, tzinfo=UTC)) == {}  # a restart: already sent

    [mail] = rig.smtp.messages
    assert (mail["To"], mail["Subject"]) == ("alice@example.com", "Your daily training budget summary: Wed 25 Nov 2026")
    text = text_of(mail).splitlines()
    assert text[0] == "2 event(s) on your jobs: 1 completed, 1 failed. Spent today: $37.60."
    for line in ("Period: Tue 24 Nov 08:00 – Wed 25 Nov 08:00 (UTC)",
                 "Spent today: $37.60 (your jobs: $37.60)", "Active jobs: 1 of yours, 1 in the team",
                 f"  - Tue 14:18  ✗ Training failed: Advisor tone v1 (oom: CUDA out of memory). Suggested fix: "
                 f"per_device_train_batch_size: 4 → 2.  {BASE}/jobs/{broken}",
                 f"  - Advisor tone v1: training, step 500 of 1000  {BASE}/jobs/{running}"):
        assert line in text
    assert any(line.startswith("  - Wed 01:12  ✓ Training completed: Advisor tone v1") and
               line.endswith(f"{BASE}/jobs/{done}") for line in text)
    assert [line for line in text if line.startswith("Remaining budget: ")] == [
        "Remaining budget: $384.02 of $500.00 (2026-11: $37.60 spent, $78.38 reserved for active jobs)"]

    # Tomorrow's digest carries only what happened since.
    rig.app.update_job(running, lambda j: j.fail(FailureType.OOM, "CUDA out of memory", {}, at(22 * 60)))
    assert rig.feed() == [None] * len(rig.bodies)
    assert sender_for(rig).send_due(datetime(2026, 11, 26, 8, 0, tzinfo=UTC)) == {"alice": "sent"}
    assert text_of(rig.smtp.messages[-1]).splitlines()[0] == ("1 event(s) on your jobs: 1 failed. "
                                                              "Spent today: $0.00.")
    assert [row[2] for row in digests(rig.url)] == ["skipped", "sent", "sent"]


def test_the_budget_recipients_get_the_teams_daily_budget_summary_when_the_team_asks_for_it(rig: Rig) -> None:
    """FR7.2.2 "Daily Digest Option": managers and finance, whether or not they use the app, get
    the whole team's day once, when `budget_digest` is on; nothing when it is off."""
    recipients = {"manager_emails": ("boss@example.com", "cfo@example.com"),
                  "finance_emails": ("cfo@example.com", "books@example.com")}
    rig.save(TeamSettings("default", **recipients, budget_digest=True))
    assert sender_for(rig).send_due(datetime(2026, 11, 25, 7, 59, tzinfo=UTC)) == {
        "boss@example.com": "skipped", "cfo@example.com": "skipped", "books@example.com": "skipped"}  # a quiet day
    done = completed_job(rig.app)
    running = training_job(rig.app)
    rig.app.record_job_spend(done, at(13 * 60 + 12))
    project(rig)
    nine = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert sender_for(rig).send_due(nine) == {
        "boss@example.com": "sent", "cfo@example.com": "sent", "books@example.com": "sent"}  # cfo once
    assert sender_for(rig).send_due(nine.replace(minute=1)) == {}  # settled: a restart sends nothing again
    assert sorted(m["To"] for m in rig.smtp.messages) == ["books@example.com", "boss@example.com", "cfo@example.com"]
    mail = rig.smtp.messages[0]
    assert mail["Subject"] == "Your daily training budget summary: Wed 25 Nov 2026"
    text = text_of(mail).splitlines()
    assert text[0] == "Spent today: $32.37. Remaining budget: $422.68. Active jobs: 1."
    for line in ("Spent today: $32.37", "Active jobs: 1", f"  - Advisor tone v1: training, step 500 of 1000 (alice)"
                 f"  {BASE}/jobs/{running}", f"View Budget Dashboard: {BASE}/budget?month=2026-11"):
        assert line in text, (line, text)
    with psycopg.connect(rig.url) as conn:
        rows = conn.execute("SELECT event_key, recipient, status FROM notification_deliveries WHERE kind ="
                            " 'budget_digest' ORDER BY event_key, recipient").fetchall()
    assert [r for r in rows if r[2] == "sent"] == [("budget-digest:2026-11-25", a, "sent") for a in
                                                   ("books@example.com", "boss@example.com", "cfo@example.com")]
    rig.save(TeamSettings("default", **recipients, budget_digest=False))
    assert sender_for(rig).send_due(nine + timedelta(days=1)) == {}  # turned off: nothing the next day


def test_one_failing_mailbox_or_users_digest_holds_up_no_budget_summary(rig: Rig) -> None:
    """A user's digest or the first manager's mailbox answering 4xx delays only that one; a
    summary still failing when the next day's is settled is retired."""
    in_digest_mode(rig)
    rig.save(TeamSettings("default", manager_emails=("full@example.com", "boss@example.com"), budget_digest=True))
    training_job(rig.app)
    project(rig)
    rig.smtp.refusals = {"alice@example.com": ["451 4.3.0 Try again later"] * 3,
                         "full@example.com": ["452 4.2.2 Mailbox full"] * 3}
    now = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    assert sender_for(rig).send_due(now) == {"alice": "pending", "full@example.com": "pending",
                                             "boss@example.com": "sent"}
    assert sender_for(rig).send_due(now.replace(minute=1)) == {"alice": "pending", "full@example.com": "pending"}
    rig.smtp.refusals = {"full@example.com": ["452 4.2.2 Mailbox full"] * 5}
    assert sender_for(rig).send_due(now.replace(minute=2)) == {"alice": "sent", "full@example.com": "pending"}
    assert sender_for(rig).send_due(now + timedelta(days=1)) == {"full@example.com": "pending",
                                                                 "boss@example.com": "sent", "alice": "sent"}
    rig.smtp.refusals = {}
    assert sender_for(rig).send_due(now + timedelta(days=1, minutes=1)) == {"full@example.com": "sent"}
    with psycopg.connect(rig.url) as conn:
        rows = conn.execute("SELECT event_key, status, error FROM notification_deliveries WHERE kind = 'budget_digest'"
                            " AND recipient = 'full@example.com' ORDER BY event_key").fetchall()
    assert rows == [("budget-digest:2026-11-25", "failed", "not sent; superseded by budget-digest:2026-11-26"),
                    ("budget-digest:2026-11-26", "sent", None)]


class SlowMailer(Mailer):
    """The real SMTP client, taking its time: two workers overlap inside the send."""

    def send(self, message: EmailMessage) -> None:
        time.sleep(0.3)
        super().send(message)


def test_two_workers_at_the_same_time_send_one_digest(rig: Rig) -> None:
    in_digest_mode(rig)
    completed_job(rig.app)
    rig.feed()
    mailer = SlowMailer(rig.notifier.mailer.config)
    now = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    start, outcomes = threading.Barrier(2), []

    def worker() -> None:
        with ConnectionPool(rig.url, min_size=1, max_size=1) as pool:
            sender = sender_for(rig, pool, mailer)
            start.wait()
            outcomes.append(sender.send_due(now))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(rig.smtp.messages) == 1
    assert sorted(o.get("alice", "-") for o in outcomes) in (["-", "sent"], ["done", "sent"])
    assert digests(rig.url) == [("digest:2026-11-25:alice", "user:alice", "sent", 1, None)]


def test_an_smtp_outage_delays_the_digest_without_losing_or_repeating_it(rig: Rig) -> None:
    in_digest_mode(rig)
    completed_job(rig.app)
    rig.feed()
    rig.smtp.refusals = {"alice@example.com": ["451 4.3.0 Try again later"]}
    now = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    assert sender_for(rig).send_due(now) == {"alice": "pending"}
    assert digests(rig.url) == [("digest:2026-11-25:alice", "user:alice", "pending", 1,
                                 "SMTP 451: alice@example.com: 4.3.0 Try again later")]
    assert sender_for(rig).send_due(now.replace(minute=1)) == {"alice": "sent"}
    assert sender_for(rig).send_due(now.replace(minute=2)) == {}
    assert [m["To"] for m in rig.smtp.messages] == ["alice@example.com"]
    assert digests(rig.url) == [("digest:2026-11-25:alice", "user:alice", "sent", 2, None)]
    with psycopg.connect(rig.url) as conn:
        assert conn.execute("SELECT digest_key FROM notification_digest_lines").fetchall() == [
            ("digest:2026-11-25:alice",)]
