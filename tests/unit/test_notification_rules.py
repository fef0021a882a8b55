"""Notifications without I/O: who gets what on which channel, the spec's texts, Slack's form, the
daily digest's schedule and text, the banners' way back, and the signed approval links."""

from __future__ import annotations

import copy
import uuid
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from domain.aggregates.budget import Budget
from domain.job_status import FailureType, JobStatus
from domain.presets import preset_named
from domain.values import ArtifactRef
from handlers.notifications import render, tokens
from handlers.notifications.budget_notices import overrun_notice, threshold_notice
from handlers.notifications.digest import Digest, DigestSchedule
from handlers.notifications.notices import job_kind, job_notice
from handlers.notifications.preferences import InvalidPreferencesError, Preferences, TeamSettings, expand_events
from handlers.notifications.routing import budget_alert_deliveries, job_deliveries, overrun_deliveries
from tests.factories import T0, configuration, new_job
from web.auth import local_path as safe_next

BASE = "https://pipeline.example"
HOOK = "https://hooks.slack.test/T/B/team"
ADAPTER = ArtifactRef("job-x", "x/adapter-attempt-1.tar", "d" * 64, 1000)


def trained_job(**hyper: object):
    """A job on a pod since T0+12 min, training, at step 500 of 1000 at T0+1 h."""
    job = new_job()
    job.configure(**configuration(hyperparameters=preset_named("balanced").as_config() | hyper))
    job.queue(T0)
    job.start_provisioning("spot", T0)
    job.pod_started("pod-1", 1, Decimal("2.49"), T0 + timedelta(minutes=12))
    job.change_stage(JobStatus.TRAINING, 1, T0 + timedelta(minutes=15))
    job.record_progress(500, 1000, 1.5, 0.41, 1, T0 + timedelta(hours=1))
    return job


def last_event(job):
    return job.collect_events()[-1]


def test_a_completed_job_reads_as_the_spec_says() -> None:
    job = trained_job()
    job.complete(ADAPTER, {"final_loss": 0.287, "perplexity_improvement_percent": 31.2}, 1,
                 T0 + timedelta(hours=13, minutes=12))
    notice = job_notice(last_event(job), job, BASE)
    assert notice.subject == "✓ Training Job Completed: Advisor tone v1"
    # 13 h of pod at $2.49/h; 13.2 h since it was queued.
    assert notice.headline == "✓ Training completed: Advisor tone v1 (13.2hrs, $32.37, 31% perplexity improvement)"
    assert dict(notice.facts)["Final metrics"] == "Training loss 0.287, Perplexity improvement 31%"
    assert dict(notice.facts)["Configuration"] == ("Balanced preset, spot H100_PCIE_80GB, epochs 3, batch size 2, "
                                                   "LoRA rank 16")
    assert notice.actions == (("View Job Details", f"{BASE}/jobs/{job.id}"),
                              ("Download Adapters", f"{BASE}/jobs/{job.id}/adapter"),
                              ("Generate Report", f"{BASE}/jobs/{job.id}/report.pdf"))


def test_an_oom_failure_carries_the_error_and_the_suggested_fix() -> None:
    job = trained_job(per_device_train_batch_size=4)
    job.fail(FailureType.OOM, "CUDA out of memory", {"suggested_fixes": ["Reduce batch_size to 2 (recommended)"]},
             T0 + timedelta(hours=2, minutes=18))
    event = last_event(job)
    assert job_kind(event) == "failed"
    notice = job_notice(event, job, BASE)
    assert notice.subject == "✗ Training Job Failed: Advisor tone v1"
    assert notice.headline == ("✗ Training failed: Advisor tone v1 (oom: CUDA out of memory). "
                               "Suggested fix: per_device_train_batch_size: 4 → 2.")
    assert notice.sections == (("Suggested fixes", (
        "Your previous job failed with OOM error. Retry with batch_size=2 (suggested)?",
        "Reduce batch_size to 2 (recommended)")),)
    assert dict(notice.facts)["Elapsed time before failure"] == "2.3 hours"
    assert [label for label, _ in notice.actions] == ["View Error Details", "Retry with Suggested Fix"]


def test_an_interruption_says_how_far_training_got_and_that_recovery_runs() -> None:
    job = trained_job()
    job.interrupt("preempted", 420, 1, T0 + timedelta(hours=1))
    notice = job_notice(last_event(job), job, BASE)
    assert notice.headline == "⚠ Advisor tone v1: Training interrupted at 42% complete. Auto-recovery in progress..."
    assert notice.link == ("Track Status", f"{BASE}/jobs/{job.id}")


def test_exhausted_recovery_is_its_own_kind_and_suggests_on_demand() -> None:
    job = trained_job()
    job.fail(FailureType.RECOVERY_EXHAUSTED, "Recovery failed 3 times in a row", {}, T0 + timedelta(hours=3))
    event = last_event(job)
    assert job_kind(event) == "recovery_exhausted"
    assert job_notice(event, job, BASE).headline.endswith("(recovery failed 3 times in a row). "
                                                          "Suggested fix: gpu_tier: spot → on_demand.")


def budget_events(*totals: str, reserve: str | None = None) -> list:
    """The thresholds crossed by one job's cumulative spends, each with the budget as it was then."""
    budget = Budget.open("ml", "2026-11", Decimal(500), T0)
    job = uuid.uuid4()
    if reserve:
        budget.reserve(job, Decimal(reserve), "alice", "member", T0)
    for total in totals:
        budget.record_spend(job, Decimal(total), T0)
    crossed, replayed = [], None
    for event in budget.collect_events():
        replayed = event.mutate(replayed)
        if isinstance(event, Budget.ThresholdCrossed):
            crossed.append((event, copy.deepcopy(replayed)))
    return crossed


def test_budget_alerts_escalate_from_email_to_slack_to_a_banner() -> None:
    team = TeamSettings("ml", manager_emails=("boss@example.com",), finance_emails=("money@example.com",))
    channels = {}
    for event, then in budget_events("400", "450", "475", "505"):
        deliveries = budget_alert_deliveries(threshold_notice(event, then, BASE), event.percent, team, HOOK)
        channels[event.percent] = sorted((d.channel, d.recipient) for d in deliveries)
    emails = [("email", "boss@example.com"), ("email", "money@example.com")]
    assert channels == {80: emails, 90: emails, 95: emails + [("slack", "team")],
                        100: [("banner", "team:ml"), *emails, ("slack", "team")]}


def test_budget_alert_texts_follow_the_spec() -> None:
    texts = [threshold_notice(e, then, BASE).headline for e, then in budget_events("400", "450", "475", "505")]
    assert texts == [
        "You've used 80% of monthly training budget ($400.00 of $500.00)",
        "⚠ Critical Budget Alert: 90% of monthly budget used ($450.00 of $500.00). Only $50.00 remaining. "
        "Consider prioritizing essential training runs.",
        "You've used 95% of monthly training budget ($475.00 of $500.00)",
        "Monthly training budget exceeded ($505.00 of $500.00)",
    ]


def test_active_jobs_that_may_exceed_the_budget_alert_managers_and_finance_and_slack() -> None:
    budget = Budget.open("ml", "2026-11", Decimal(500), T0)
    running, starting = uuid.uuid4(), uuid.uuid4()
    budget.reserve(running, Decimal("100"), "alice", "member", T0)
    budget.record_spend(running, Decimal("487.32"), T0)  # far past its estimate
    budget.reserve(starting, Decimal("42"), "alice", "member", T0)  # within the grace margin
    [event] = [e for e in budget.collect_events() if isinstance(e, Budget.OverrunForecast)]
    notice = overrun_notice(event, "2026-11", BASE)
    assert notice.headline == "Active job may exceed budget. Cancel or increase limit."
    assert dict(notice.facts) == {
        "Month": "2026-11", "Current spending": "$487.32 / $500.00 (97%)", "Remaining budget": "$12.68",
        "Active jobs": "2 (estimated remaining cost: up to $42.00)",
        "Forecast": "May exceed the budget by up to $29.32 (2 active jobs)"}
    assert [label for label, _ in notice.actions] == ["Increase Budget Limit", "Cancel Active Jobs",
                                                      "View Budget Dashboard"]
    assert notice.actions[1][1] == f"{BASE}/jobs?status=active"
    team = TeamSettings("ml", manager_emails=("boss@example.com",), finance_emails=("money@example.com",))
    assert sorted((d.channel, d.recipient) for d in overrun_deliveries(notice, team, HOOK)) == [
        ("email", "boss@example.com"), ("email", "money@example.com"), ("slack", "team")]


def test_a_budget_alert_carries_the_active_jobs_and_the_forecast() -> None:
    """FR7.2.2's alert content: spending, what is left, the active jobs with what they may still
    cost, the forecast, and the three actions."""
    [(eighty, then)] = budget_events("400", reserve="480")
    facts = dict(threshold_notice(eighty, then, BASE).facts)
    assert facts["Current spending"] == "$400.00 / $500.00 (80%)" and facts["Remaining budget"] == "$100.00"
    assert facts["Active jobs"] == "1 (estimated remaining cost: up to $80.00)"
    assert facts["Forecast"] == "Up to $480.00 of $500.00 once the active jobs end"
    assert [label for label, _ in threshold_notice(eighty, then, BASE).actions] == [
        "View Budget Dashboard", "Increase Budget Limit", "Cancel Active Jobs"]
    *_, (hundred, then) = budget_events("400", "505", reserve="520")
    assert dict(threshold_notice(hundred, then, BASE).facts)["Forecast"] == "May exceed the budget by up to $20.00"
    [(idle, then)] = budget_events("400")
    assert dict(threshold_notice(idle, then, BASE).facts)["Active jobs"] == "none"
    assert "Cancel Active Jobs" not in dict(threshold_notice(idle, then, BASE).actions)


def test_a_budget_alert_without_recipients_is_recorded_as_unsendable() -> None:
    [(event, then)] = budget_events("400")
    [delivery] = budget_alert_deliveries(threshold_notice(event, then, BASE), 80, TeamSettings("ml"), HOOK)
    assert delivery.unsendable.startswith("no managers or finance email addresses set")


def test_the_creator_gets_the_events_they_chose_and_one_team_slack_message() -> None:
    job = trained_job()
    job.complete(ADAPTER, {}, 1, T0 + timedelta(hours=2))
    notice = job_notice(last_event(job), job, BASE)
    alice = Preferences("alice", "alice@example.com", ("email", "slack"))
    banner = ("banner", "user:alice", "alice")  # in-app: always on, whatever was chosen
    assert [(d.channel, d.recipient, d.target) for d in job_deliveries(notice, alice, HOOK)] == [
        ("email", "alice@example.com", "alice@example.com"), ("slack", "team", HOOK), banner]
    own = replace(alice, slack_webhook_url="https://hooks.slack.test/alice")
    assert [(d.channel, d.recipient) for d in job_deliveries(notice, own, HOOK)] == [
        ("email", "alice@example.com"), ("slack", "user:alice"), ("slack", "team"), banner[:2]]
    failures_only = replace(alice, events=expand_events(["failures"]))
    assert [(d.channel, d.recipient) for d in job_deliveries(notice, failures_only, HOOK)] == [
        ("slack", "team"), banner[:2]]
    [no_address, team, _] = job_deliveries(notice, Preferences("bob"), "")
    assert no_address.unsendable.startswith("no email address for bob") and team.target == ""


def test_in_digest_mode_job_emails_become_digest_lines_and_slack_stays_immediate() -> None:
    job = trained_job()
    job.fail(FailureType.OOM, "CUDA out of memory", {}, T0 + timedelta(hours=2))
    notice = job_notice(last_event(job), job, BASE)
    alice = Preferences("alice", "alice@example.com", ("email", "slack"), digest="daily",
                        slack_webhook_url="https://hooks.slack.test/alice")
    assert [(d.channel, d.recipient, d.target) for d in job_deliveries(notice, alice, HOOK)] == [
        ("digest", "user:alice", "alice"), ("slack", "user:alice", "https://hooks.slack.test/alice"),
        ("slack", "team", HOOK), ("banner", "user:alice", "alice")]
    assert notice.at == T0 + timedelta(hours=2) and notice.level == "error"


def resumed_job():
    """Checkpoint at step 400, interrupted at step 420 after 1 h, training again 9 min later."""
    job = trained_job()
    job.record_checkpoint(400, replace(ADAPTER, name="x/checkpoint-step-400.pt"), 1, T0 + timedelta(minutes=50))
    job.interrupt("preempted", 420, 1, T0 + timedelta(hours=1))
    job.begin_recovery(T0 + timedelta(hours=1, minutes=1))
    attempt = job.start_provisioning("spot", T0 + timedelta(hours=1, minutes=1))
    job.pod_started("pod-2", attempt, Decimal("2.49"), T0 + timedelta(hours=1, minutes=5))
    job.change_stage(JobStatus.TRAINING, attempt, T0 + timedelta(hours=1, minutes=9))
    return job, next(e for e in job.collect_events() if isinstance(e, type(job).Resumed))


def test_training_resumed_says_from_which_checkpoint_and_how_long_is_left() -> None:
    job, event = resumed_job()
    assert job_kind(event) == "resumed"
    notice = job_notice(event, job, BASE)
    # FR3.2.1's text; 13.5 h estimated, 60 % of the steps still to do from the checkpoint.
    assert notice.headline == ("↻ Advisor tone v1: Training resumed from checkpoint (Step 400). "
                               "Estimated completion: 8h 6m remaining.")
    assert dict(notice.facts)["Downtime"] == "9 min" and notice.level == "info"
    assert notice.link == ("Track Status", f"{BASE}/jobs/{job.id}")


def test_training_resumed_goes_to_those_who_chose_interruptions() -> None:
    job, event = resumed_job()
    notice = job_notice(event, job, BASE)
    alice = Preferences("alice", "alice@example.com")
    assert [d.channel for d in job_deliveries(notice, alice, HOOK)] == ["email", "banner"]
    completions = replace(alice, events=expand_events(["completions"]))
    assert [d.channel for d in job_deliveries(notice, completions, HOOK)] == ["banner"]


def test_preferences_are_checked_and_normalised() -> None:
    p = Preferences(" carol ", "Carol@Example.com", ("slack", "email"), ("failed", "completed")).checked()
    assert (p.user, p.email, p.channels, p.events) == ("carol", "carol@example.com", ("email", "slack"),
                                                       ("completed", "failed"))
    for bad in (Preferences("x", channels=("pager",)), Preferences("x", events=("finished",)),
                Preferences("x", email="not-an-address"), Preferences("x", slack_webhook_url="ftp://x")):
        with pytest.raises(InvalidPreferencesError):
            bad.checked()


def test_slack_messages_bold_the_job_escape_its_name_and_link_the_job() -> None:
    job = new_job(name="A<b> & co")
    job.configure(**configuration())
    job.queue(T0)
    job.cancel("too_expensive", "", "alice", T0 + timedelta(hours=1))
    message = render.slack(job_notice(last_event(job), job, BASE))
    link = f"{BASE}/jobs/{job.id}"
    assert message == {
        "text": f"Training cancelled: A<b> & co (by alice: too expensive) View Job Details: {link}",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text":
            f"Training cancelled: *A&lt;b&gt; &amp; co* (by alice: too expensive) <{link}|View Job Details>"}}]}


def test_the_digest_is_due_at_the_teams_hour_in_its_time_zone() -> None:
    berlin = DigestSchedule("Europe/Berlin", 8)
    assert berlin.due(datetime(2026, 11, 24, 6, 59, tzinfo=timezone.utc)) == date(2026, 11, 23)  # 07:59 CET
    assert berlin.due(datetime(2026, 11, 24, 7, 0, tzinfo=timezone.utc)) == date(2026, 11, 24)   # 08:00 CET
    assert berlin.send_time(date(2026, 7, 1)).astimezone(timezone.utc).hour == 6                # summer time
    # The night summer time begins is one hour short; the digest still comes at 08:00 local.
    utc = [berlin.send_time(date(2026, 3, day)).astimezone(timezone.utc) for day in (28, 29)]
    assert utc[1] - utc[0] == timedelta(hours=23)


def test_the_digest_hour_is_a_setting_checked_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.settings import SettingsError, load_settings
    from pipeline.workers.notifications import digest_hour

    monkeypatch.delenv("PIPELINE_DIGEST_HOUR", raising=False)
    assert digest_hour(load_settings()) == 8
    monkeypatch.setenv("PIPELINE_DIGEST_HOUR", "18")
    assert digest_hour(load_settings()) == 18
    for bad in ("24", "-1", "8am"):
        monkeypatch.setenv("PIPELINE_DIGEST_HOUR", bad)
        with pytest.raises(SettingsError, match="PIPELINE_DIGEST_HOUR"):
            digest_hour(load_settings())


def test_a_digest_counts_the_events_and_sums_up_the_budget() -> None:
    schedule = DigestSchedule("UTC", 8)
    day = date(2026, 11, 25)
    line = {"event_key": "k", "kind": "completed", "headline": "✓ Training completed: A (1.0hrs, $2.49)",
            "link": f"{BASE}/jobs/j", "job_id": None, "occurred_at": datetime(2026, 11, 24, 14, 2, tzinfo=timezone.utc)}
    failed = line | {"kind": "failed", "headline": "✗ Training failed: B (oom: …)"}
    running = {"id": "j2", "name": "C", "status": "training", "step": 500, "total_steps": 1000, "created_by": "alice"}
    queued = {"id": "j3", "name": "D", "status": "queued", "step": 0, "total_steps": 0, "created_by": "bob"}
    digest = Digest("alice", day, "UTC", schedule.send_time(day - timedelta(days=1)), schedule.send_time(day),
                    (line, line, failed), (running,), (running, queued, queued | {"id": "j4"}), Decimal("48.3249"),
                    Decimal("30"), "2026-11", {"monthly_limit": Decimal(500), "spent": Decimal(400),
                                               "reserved": Decimal(40)})
    notice = digest.notice(BASE)
    assert notice.subject == "Your daily training budget summary: Wed 25 Nov 2026"
    assert notice.headline == "3 event(s) on your jobs: 2 completed, 1 failed. Spent today: $48.32."
    assert dict(notice.facts) == {
        "Period": "Tue 24 Nov 08:00 – Wed 25 Nov 08:00 (UTC)", "Spent today": "$48.32 (your jobs: $30.00)",
        "Remaining budget": "$60.00 of $500.00 (2026-11: $400.00 spent, $40.00 reserved for active jobs)",
        "Active jobs": "1 of yours, 3 in the team"}
    assert notice.sections[0][1][0] == ("Tue 14:02  ✓ Training completed: A (1.0hrs, $2.49)", f"{BASE}/jobs/j")
    assert notice.sections[1] == ("Your active jobs", (("C: training, step 500 of 1000", f"{BASE}/jobs/j2"),))
    assert not digest.empty and replace(digest, lines=(), active=(), spent=Decimal(0)).empty
    # The budget recipients' summary: the whole team's jobs and spend.
    team = digest.team_notice(BASE)
    assert (team.kind, team.subject) == ("budget_digest", "Your daily training budget summary: Wed 25 Nov 2026")
    assert team.headline == "Spent today: $48.32. Remaining budget: $60.00. Active jobs: 3."
    assert dict(team.facts)["Active jobs"] == "3" and dict(team.facts)["Spent today"] == "$48.32"
    assert team.sections == (("Active jobs", (("C: training, step 500 of 1000 (alice)", f"{BASE}/jobs/j2"),
                                              ("D: queued (bob)", f"{BASE}/jobs/j3"),
                                              ("D: queued (bob)", f"{BASE}/jobs/j4"))),)
    assert team.link == ("View Budget Dashboard", f"{BASE}/budget?month=2026-11")
    assert not digest.team_empty and replace(digest, team_jobs=(), spent=Decimal(0)).team_empty


def test_a_banner_sends_people_back_only_within_the_site() -> None:
    assert safe_next("/jobs/1?page=2") == "/jobs/1?page=2"
    for unsafe in ("https://evil.example/", "//evil.example/", "/\\evil.example", "/\\/x", "javascript:x", "",
                   None, "/ok\r\nLocation: //evil"):
        assert safe_next(unsafe) == "/"


SECRET = "s" * 32


def approval(**changes: object) -> tokens.Approval:
    return replace(tokens.Approval(uuid.uuid4(), "2026-11", "approve", "boss@example.com", T0 + timedelta(hours=72)),
                   **changes)


def test_an_approval_link_is_valid_until_it_expires() -> None:
    signed = approval()
    token = tokens.sign(signed, SECRET)
    assert tokens.verify(token, SECRET, T0) == signed
    with pytest.raises(tokens.ExpiredTokenError, match="expired on 2026-11-27 12:00 UTC"):
        tokens.verify(token, SECRET, T0 + timedelta(hours=72))


def test_a_tampered_or_foreign_approval_link_is_refused() -> None:
    token = tokens.sign(approval(decision="deny"), SECRET)
    payload, signature = token.split(".")
    approve_instead = tokens.sign(approval(decision="approve"), SECRET).split(".")[0]
    forged = [f"{approve_instead}.{signature}", f"{payload}.{signature[:-2]}AA", f"{payload}.", "garbage", ""]
    for bad in forged:
        with pytest.raises(tokens.InvalidTokenError, match="not valid"):
            tokens.verify(bad, SECRET, T0)
    with pytest.raises(tokens.InvalidTokenError):
        tokens.verify(token, "t" * 32, T0)
    with pytest.raises(tokens.InvalidTokenError, match="not enabled"):
        tokens.verify(token, "", T0)


def test_notification_settings_default_to_nothing_configured_and_refuse_a_short_secret() -> None:
    from infra.settings import SettingsError, load_settings

    settings = load_settings()
    notifications = settings.notifications
    assert (notifications.smtp_host, notifications.slack_webhook_url,
            notifications.approval_secret.get_secret_value()) == ("", "", "")
    assert settings.web.public_base_url == "http://127.0.0.1:8000"
    assert load_settings(PIPELINE_PUBLIC_URL="https://pipeline.example/").web.public_base_url == BASE
    with pytest.raises(SettingsError, match="at least 16 characters"):
        load_settings(PIPELINE_APPROVAL_SECRET="short")
    with pytest.raises(SettingsError):
        load_settings(PIPELINE_SLACK_WEBHOOK_URL="hooks.slack.com/x")
