"""Job sharing (FR8.1.2) through the pages, the JSON API and the notifier: private by default (creator,
managers, admins), team, public without signing in — the public page and its own live stream show the
configuration, progress and results with the creator's name and nothing private — share links that
are revoked at once, sending the link by email and Slack, and "Clone Configuration"."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from uuid import UUID

import httpx
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from handlers.notifications.channels import Mailer, SlackWebhooks, SmtpConfig
from handlers.notifications.notifier import Notifier, NotifierConfig
from handlers.notifications.preferences import TeamSettings, save_team
from infra import envelope, signing
from tests.fakes.mail_and_slack import FakeSlack, SmtpSink
from tests.integration.test_web_job_detail import (
    HTML,
    Served,
    add_job,
    event_count,
    run,
    sse_events,
    telemetry,
    text_of,
    training,
)
from tests.integration.test_web_new_job import add_file, created, job_form
from tests.integration.test_web_templates import complete
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture
from web.share_links import PREFIX, REPORT


def secret_job(web: WebRig) -> UUID:
    """Alice's job with everything a public page must not show: a note, a description, a client."""
    job = add_job(web, name="Advisor tone v7")
    run(web, job, lambda j: j.update_metadata(description="Acme's secret roadmap", tags=["experiment"],
                                              client="Acme Financial", project="Q4", at=j.created_at),
        lambda j: j.add_note("Private hypothesis about Acme", "alice", j.created_at))
    training(web, job)
    return job


def test_a_private_job_opens_only_for_its_creator_managers_and_admins(web: WebRig) -> None:
    job = secret_job(web)
    web.project()
    for user in ("alice", "bob", "root"):
        assert web.client(user).get(f"/jobs/{job}", headers=HTML).status_code == 200, user
    refused = web.client("carol").get(f"/jobs/{job}", headers=HTML)
    assert refused.status_code == 403
    assert "This job is private to alice: ask them (or a manager) to share it with the team." in refused.text
    for path in (f"/api/jobs/{job}/detail", f"/jobs/{job}/metrics-points", f"/jobs/{job}/event-log.json",
                 f"/api/jobs/{job}", f"/jobs/{job}/report.pdf"):
        answer = web.client("carol").get(path, headers=web.token("carol"))
        assert answer.status_code == 403 and "private to alice" in answer.json()["detail"], path
    other = add_job(web, name="Carol's own", created_by="carol")
    compared = web.client("carol").get(f"/compare?jobs={other}&jobs={job}", headers=HTML)
    assert compared.status_code == 403 and "private to alice" in compared.text
    listed = web.client("carol").get("/api/jobs", headers=web.token("carol")).json()
    assert "Advisor tone v7" in [j["name"] for j in listed]  # the row stays: the budget counts it
    before = event_count(web)
    change = web.client("carol").post(f"/api/jobs/{job}/sharing", json={"visibility": "team"},
                                      headers=web.token("carol"))
    assert change.status_code == 403 and "Only the job's creator, a manager or an admin" in change.json()["detail"]
    assert web.client("alice").post(f"/api/jobs/{job}/sharing", json={"visibility": "everyone"},
                                    headers=web.token("alice")).status_code == 400
    assert event_count(web) == before
    shared = web.form("alice", f"/jobs/{job}/sharing/visibility", {"visibility": "team"})
    assert shared.status_code == 303 and "Visibility%3A+team" in shared.headers["location"]
    assert web.client("carol").get(f"/jobs/{job}", headers=HTML).status_code == 200
    web.project()
    log = web.client("alice").get(f"/jobs/{job}/event-log.json").json()
    assert "Visibility changed from private to team by alice" in json.dumps(log)


@pytest.fixture
def served(web: WebRig) -> Iterator[Served]:
    found = Served(web, "alice")
    try:
        yield found
    finally:
        found.close()


def test_a_public_link_shows_the_job_signed_out_live_and_nothing_private_until_it_is_withdrawn(
        web: WebRig, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    from web.pages import public_job

    monkeypatch.setattr(public_job, "POLL_S", 0.1)
    monkeypatch.setattr(public_job, "RECHECK_S", 0.3)
    job = secret_job(web)
    telemetry(web, job, range(1, 51))
    web.project()
    outsider = httpx.Client(base_url=served.base, timeout=10)
    assert outsider.get(f"/training-jobs/{job}", headers=HTML).status_code == 303  # private: sign in first
    assert outsider.get(f"/training-jobs/{job}/summary").status_code == 404
    made = served.client.post(f"/api/jobs/{job}/sharing", json={"visibility": "public"},
                              headers={"X-CSRF-Token": csrf(served)})
    assert made.status_code == 200 and made.json()["link"].endswith(f"/training-jobs/{job}")
    page = outsider.get(f"/training-jobs/{job}", headers=HTML)
    assert page.status_code == 200
    text = text_of(page.text)
    for shown in ("Advisor tone v7", "Created by Alice", "Balanced", "850 of 2,000", "LoRA Rank (r) 16",
                  "Clone Configuration", "242 conversations"):
        assert shown in text, shown
    for hidden in ("$", "Acme", "hypothesis", "financial-advisory.json", "/adapter", "deployment-package",
                   "report.pdf", "Cancel Job", "Budget"):
        assert hidden not in text and hidden not in page.text.split("<body>")[-1], hidden
    summary = outsider.get(f"/training-jobs/{job}/summary").json()
    assert summary["creator"] == "Alice" and summary["progress"]["step"] == 850
    assert not re.search(r"cost|hourly|note|client|project|description|file|acme|budget", json.dumps(summary),
                         re.IGNORECASE)
    points = outsider.get(f"/training-jobs/{job}/points").json()
    assert points["steps"][:3] == [1, 2, 3] and points["last_step"] == 50
    with outsider.stream("GET", f"/training-jobs/{job}/stream?after=50&eval_after=50",
                         headers={"Accept": "text/event-stream"}) as stream:
        events = sse_events(stream.iter_lines())
        first = next(events)
        assert first["event"] == "progress" and json.loads(first["data"])["percent"] == 42
        telemetry(web, job, range(51, 61))
        more = next(events)
        assert more["event"] == "points" and json.loads(more["data"])["steps"] == list(range(51, 61))
        served.client.post(f"/api/jobs/{job}/sharing", json={"visibility": "private"},
                           headers={"X-CSRF-Token": csrf(served)})
        gone = next(e for e in events if e["event"] != "points")
        assert gone["event"] == "revoked"
    assert outsider.get(f"/training-jobs/{job}", headers=HTML).status_code == 303
    assert outsider.get(f"/training-jobs/{job}/points").status_code == 404
    outsider.close()


def csrf(served: Served) -> str:
    page = served.client.get("/files", headers=HTML).text
    return re.search(r'<meta name="csrf-token" content="([^"]*)"', page).group(1)


def test_share_links_are_listed_and_revoked_at_once_old_ones_by_revoke_all(web: WebRig) -> None:
    job = add_job(web, name="Reported advisor")
    complete(web, job)
    web.project()
    made = web.form("alice", f"/jobs/{job}/report/share", {}, headers=HTML)
    assert made.status_code == 200 and "unless it is revoked before then" in made.text
    path = re.search(r'value="([^"]+)" id="share-url"', made.text).group(1).removeprefix(
        web.settings.web.public_base_url)
    outsider = web.client(None)
    assert outsider.get(path).status_code == 200
    sharing = web.client("alice").get(f"/api/jobs/{job}/sharing", headers=web.token("alice")).json()
    [link] = sharing["links"]
    assert (link["purpose"], link["shared_by"]) == ("training-report", "alice")
    page = web.client("alice").get(f"/jobs/{job}?share=1", headers=HTML).text
    assert f'id="share-link-{link["link_id"]}"' in page and "Training report" in page
    before = event_count(web)
    refused = web.form("carol", f"/jobs/{job}/share-links/{link['link_id']}/revoke", {})
    assert "error=" in refused.headers["location"] and event_count(web) == before
    revoked = web.form("alice", f"/jobs/{job}/share-links/{link['link_id']}/revoke", {})
    assert "Link+revoked" in revoked.headers["location"]
    gone = outsider.get(path, headers=HTML)
    assert gone.status_code == 410 and "This report link was revoked: ask alice for a new one" in gone.text
    # a link made before links had ids (no "id" in its payload) works until "Revoke all links"
    secret = web.settings.notifications.approval_secret.get_secret_value()
    expires = int(datetime.now(timezone.utc).timestamp()) + 3600
    old = signing.sign({"p": REPORT.key, "j": str(job), "by": "alice", "exp": expires}, secret, PREFIX)
    assert outsider.get(f"/shared/reports/{old}").status_code == 200
    assert "revoked" in web.form("alice", f"/jobs/{job}/share-links/revoke-all", {}).headers["location"]
    assert outsider.get(f"/shared/reports/{old}", headers=HTML).status_code == 410
    web.project()
    log = json.dumps(web.client("alice").get(f"/jobs/{job}/event-log.json").json())
    assert "Training report link revoked by alice" in log and "Every share link revoked by alice" in log


def test_the_link_goes_by_email_and_to_slack_once_per_recipient(web: WebRig) -> None:
    smtp, slack = SmtpSink().start(), FakeSlack().start()
    job = secret_job(web)
    web.project()
    token = web.token("alice")
    before = event_count(web)
    private = web.client("alice").post(f"/api/jobs/{job}/share", headers=token,
                                       json={"channel": "email", "recipients": ["sarah@example.com"]})
    assert private.status_code == 400 and "make it Team or Public" in private.json()["detail"]
    web.client("alice").post(f"/api/jobs/{job}/sharing", json={"visibility": "team"}, headers=token)
    unknown = web.client("alice").post(f"/api/jobs/{job}/share", headers=token,
                                       json={"channel": "email", "recipients": ["nobody"]})
    assert unknown.status_code == 400 and "No user named nobody" in unknown.json()["detail"]
    assert event_count(web) == before + 2  # the sharing record opened, and its visibility
    sent = web.client("alice").post(f"/api/jobs/{job}/share", headers=token, json={
        "channel": "email", "recipients": ["sarah@example.com", "carol"], "message": "Check out this configuration"})
    assert sent.status_code == 202
    posted = web.form("alice", f"/jobs/{job}/sharing/send", {"channel": "slack", "message": "Great results"})
    assert "Link+posted" in posted.headers["location"]
    with psycopg.connect(web.database_url, autocommit=True) as conn:
        save_team(conn, TeamSettings("default", slack_webhook_url=slack.url))
    pool = ConnectionPool(web.database_url, min_size=1, max_size=2, open=True)
    notifier = Notifier(web.store.app, pool, NotifierConfig("default", "http://pipeline.test", "p@example.com"),
                        Mailer(SmtpConfig("127.0.0.1", smtp.port, tls="none", timeout_s=5)), SlackWebhooks(5))
    try:
        bodies = [envelope.encode("pipeline", n) for n in web.store.app.recorder.select_notifications(1, 1000)]
        assert notifier.handle_batch(bodies) == [None] * len(bodies)
        assert notifier.handle_batch(bodies) == [None] * len(bodies)  # redelivered: nothing sent twice
    finally:
        notifier.slack.close()
        pool.close()
    [to_sarah] = smtp.to("sarah@example.com")
    [to_carol] = smtp.to("carol@example.com")
    assert to_sarah["Subject"] == "alice shared a training job with you: Advisor tone v7"
    body = to_sarah.get_body(("plain",)).get_content()
    assert f"http://pipeline.test/training-jobs/{job}" in body and "Check out this configuration" in body
    assert "Team link: sign in" in body and "Acme" not in body and "$" not in body
    assert to_carol["Subject"] == to_sarah["Subject"]
    [post] = [p for p in slack.received if "shared a training job" in p["text"]]
    assert "Great results" in post["text"] and f"/training-jobs/{job}" in post["text"]
    smtp.stop()
    slack.stop()


def test_clone_configuration_opens_the_new_job_form_with_the_jobs_settings(web: WebRig) -> None:
    file_id = add_file(web)
    web.project()
    original = created(web.form("alice", "/jobs/new", job_form(file_id, name="Original run")))
    web.project()
    carol = web.client("carol").get(f"/jobs/new?clone={original}", headers=HTML).text
    assert "That job cannot be cloned" in carol  # private to alice
    form = web.client("alice").get(f"/jobs/new?clone={original}", headers=HTML).text
    assert f'name="clone_of" value="{original}"' in form and f'value="{file_id}" checked' in form
    assert "Configuration cloned from job “Original run”" in form and "First production model for Acme" in form
    assert 'name="preset" value="balanced" checked' in form
    clone = created(web.form("alice", "/jobs/new", job_form(file_id, name="Cloned run", clone_of=str(original),
                                                            setting_save_steps="50")))
    config = web.store.app.get_job(clone).configuration
    assert config["hyperparameters"]["save_steps"] == 50 and config["preset"] == "balanced"
