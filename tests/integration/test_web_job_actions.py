"""The job page's actions and status (issue #23, web/job_menu.py, web/job_page.py): one primary action for
the job's state and the rest in a menu, the status a command just set shown at once while the read model
catches up, share links offered only where they can be signed, and refusals shown beside their form."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import httpx
from pydantic import SecretStr

from domain.job_status import FailureType, JobStatus
from tests.factories import CHECKPOINT, configuration, job_fields
from tests.integration.test_web_job_detail import HTML, add_job, ago, run, text_of, training
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture

LONG_REASON = "The Gamma Insurance pilot starts next week and needs four more training runs"


def html(web: WebRig, user: str, path: str) -> str:
    answer = web.client(user).get(path, headers=HTML)
    assert answer.status_code == 200, answer.text
    return answer.text


def primary(page: str) -> str:
    """The first action in the action bar: its visible words."""
    bar = page.split('<div class="jd-actions"', 1)[1]
    first = re.search(r"<(a|button|summary)\b[^>]*>(.*?)</\1>", bar, re.S)
    assert first, bar[:500]
    return text_of(first.group(2)).strip()


def menu(page: str) -> str:
    return text_of(page.split('class="jd-menu-list', 1)[1].split("</details>\n</div>", 1)[0])


def page_key(page: str) -> str:
    return re.search(r'<div class="jd-actions" data-key="([^"]+)"', page).group(1)


def page_data(page: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="job-data">(.*?)</script>', page, re.S).group(1))


def test_one_primary_action_follows_the_state_and_the_rest_are_in_the_menu(web: WebRig) -> None:
    configured = web.store.app.create_job(**job_fields(name="Not started", at=ago(5)))
    web.store.app.configure_job(configured, **configuration(at=ago(5)))
    trains, paused, done, failed = (add_job(web, name=n) for n in ("Trains", "Paused", "Done", "Failed"))
    for job in (trains, paused, done, failed):
        training(web, job, step=400, total=400 if job == done else 2000)
    run(web, paused, lambda j: j.record_checkpoint(300, CHECKPOINT, 1, ago(3)),
        lambda j: j.request_pause("alice", "member", ago(3)), lambda j: j.interrupt("sigterm", 400, 1, ago(2)),
        lambda j: j.pod_stopped("pod-1", ago(1)))
    run(web, done, lambda j: j.complete(CHECKPOINT, {"final_loss": 0.3}, 1, ago(1)))
    run(web, failed, lambda j: j.pod_stopped("pod-1", ago(2)),
        lambda j: j.fail(FailureType.OOM, "CUDA out of memory", {"step": 400}, ago(2)))
    web.project()

    assert primary(html(web, "alice", f"/jobs/{configured}")) == "Review and start"
    mine = html(web, "alice", f"/jobs/{trains}")
    assert primary(mine) == "Cancel Job" and 'id="jd-pause"' in mine and "Pause" in menu(mine)
    assert web.store.app.get_job(paused).status is JobStatus.PAUSED
    resumable = html(web, "alice", f"/jobs/{paused}")
    assert primary(resumable) == "Resume" and "Cancel Job" in menu(resumable)
    finished = html(web, "alice", f"/jobs/{done}")
    assert primary(finished) == "Download Adapters" and "Cancel Job" not in finished
    for entry in ("Download Deployment Package", "Generate Report", "Share report link", "Share package link",
                  "Clone Configuration", "Share Job"):
        assert entry in menu(finished), entry
    broken = html(web, "alice", f"/jobs/{failed}")
    assert primary(broken) == "Retry…" and 'id="retry"' in broken and "Cancel Job" not in broken
    # the live cards carry the actions of a job that runs (redrawn when their key changes), not of an ended one
    live = web.client("alice").get(f"/jobs/{trains}/cards").json()["actions"]
    assert live["key"] == page_key(mine) and primary(live["html"]) == "Cancel Job" and 'name="_csrf"' in live["html"]
    assert "actions" not in web.client("alice").get(f"/jobs/{done}/cards").json()


def test_the_page_shows_a_commands_outcome_at_once_and_the_read_models_confirmation_when_it_lands(
    web: WebRig,
) -> None:
    """Cancelled while the read model still says training: no "Training" badge and no Cancel button under
    "Job cancelled"; the page asks the live stream to confirm from the version the command reached."""
    job = add_job(web)
    training(web, job)
    web.project()
    done = web.form("alice", f"/jobs/{job}/cancel", {"reason": "testing", "confirm": "yes"})
    assert done.status_code == 303
    lagging = html(web, "alice", done.headers["location"])  # the read model has not seen the cancellation
    header = text_of(lagging.split('id="job-header"', 1)[1].split('id="jd-updated"', 1)[0])
    assert "Cancelled" in header and "confirming…" in header and "Training" not in header
    assert "Cancel Job" not in lagging and "Job cancelled." in text_of(lagging)
    told = page_data(lagging)
    assert told["live"] is True and told["confirm"] == web.store.app.get_job(job).version
    web.project()
    landed = html(web, "alice", done.headers["location"])
    assert "confirming…" not in landed and "confirm" not in page_data(landed)
    assert "Cancelled" in text_of(landed.split('id="job-header"', 1)[1].split('id="jd-updated"', 1)[0])
    plain = html(web, "alice", f"/jobs/{job}")  # without the command's notice the page reads the read model only
    assert "Job cancelled." not in text_of(plain)


def test_share_links_are_not_offered_where_they_cannot_be_signed(web: WebRig) -> None:
    job = add_job(web)
    training(web, job, step=400, total=400)
    run(web, job, lambda j: j.complete(CHECKPOINT, {"final_loss": 0.3}, 1, ago(1)))
    web.project()
    notify = web.settings.notifications.model_copy(update={"approval_secret": SecretStr("")})
    web.settings = web.settings.model_copy(update={"notifications": notify})
    page = html(web, "alice", f"/jobs/{job}")
    assert "Share report link" not in page and "Share package link" not in page
    assert "Share links need PIPELINE_APPROVAL_SECRET on this deployment" in text_of(page)
    # nor by email or to Slack where neither is set up: the panel says what to do instead
    assert web.form("alice", f"/jobs/{job}/sharing/visibility", {"visibility": "team"}).status_code == 303
    page = html(web, "alice", f"/jobs/{job}")
    assert 'id="share-email"' not in page and 'id="share-slack"' not in page
    assert "Email is not set up on this deployment" in page and "The team has no Slack channel yet" in page


def test_a_refused_form_shows_its_message_beside_the_form_not_above_the_page(web: WebRig) -> None:
    job = add_job(web)
    training(web, job)
    web.project()
    refused = web.form("alice", f"/jobs/{job}/cancel", {"reason": "", "confirm": "yes"}, headers=HTML)
    assert refused.status_code == 400
    main = re.split(r"<main[^>]*>", refused.text, maxsplit=1)[1]
    assert not main.lstrip().startswith('<p class="error"')  # nothing above the page
    dialog = main.split('class="jd-cancel-form', 1)[1].split("</form>", 1)[0]
    assert 'id="jd-cancel-error">Choose a reason for cancellation<' in dialog
    assert 'id="jd-cancel" open' in refused.text  # the dialog is open again, as sent

    web.store.app.change_limit("2026-11", Decimal(100), "root", "admin", LONG_REASON, ago(1))
    short = web.form("bob", "/budget/limit", {"month": "2026-11", "new_limit": "250", "justification": "more runs"},
                     headers=HTML)
    assert short.status_code == 400
    main = re.split(r"<main[^>]*>", short.text, maxsplit=1)[1]
    assert not main.lstrip().startswith('<p class="error"')
    form = main.split('id="change-limit"', 1)[1].split("</form>", 1)[0]
    beside = (r'<textarea name="justification"[^>]* aria-invalid="true" aria-describedby="limit-justification-error"'
              r' autofocus>more runs</textarea></label>\s*<p class="error field-error" id="limit-justification-error"'
              r' role="alert">Justification \(required\) must be at least 50 characters')
    assert re.search(beside, form), form
    wrong = web.form("alice", "/budget/requests",
                     {"month": "2026-11", "new_limit": "lots", "justification": LONG_REASON}, headers=HTML)
    request = wrong.text.split('id="request-increase"', 1)[1].split("</form>", 1)[0]
    assert 'id="request-new_limit-error" role="alert">Enter the new limit in dollars' in request


def test_the_notice_of_a_command_is_shown_where_the_status_is(web: WebRig) -> None:
    job = add_job(web)
    training(web, job)
    web.project()
    paused = web.form("alice", f"/jobs/{job}/pause", {})
    location = httpx.URL(paused.headers["location"])
    assert location.params["notice"].startswith("Pausing:")
    page = html(web, "alice", str(location))
    outcome = re.search(r'<p class="notice jd-outcome" role="status" id="jd-outcome">(.*?)</p>', page).group(1)
    assert outcome.startswith("Pausing: the pod saves a checkpoint")
    assert page.index('id="jd-outcome"') < page.index('id="loss-chart"')
