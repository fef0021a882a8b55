"""Pause and resume on the job page and the JSON API (FR2.2.2, #20): the buttons for those who may,
the notices, the refusals with their reasons, the event log's sentences and the jobs read model."""

from __future__ import annotations

from decimal import Decimal

import psycopg

from domain.job_status import JobStatus
from domain.values import ArtifactRef
from tests.integration.test_web_job_detail import HTML, add_job, ago, run
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture

CKPT = ArtifactRef("job-x", "x/attempt-1/checkpoint-step-300.tar", "c" * 64, 10)


def training(web: WebRig):
    job_id = add_job(web)
    run(web, job_id, lambda j: j.start_provisioning("spot", ago(170)),
        lambda j: j.pod_started("pod-1", 1, Decimal("2.49"), ago(168)),
        lambda j: j.change_stage(JobStatus.TRAINING, 1, ago(160)),
        lambda j: j.record_progress(320, 1000, 0.9, 1.1, 1, ago(2)),
        lambda j: j.record_checkpoint(300, CKPT, 1, ago(3)))
    web.project()
    return job_id


def test_the_creator_pauses_from_the_page_and_resumes_and_others_see_no_buttons(web: WebRig) -> None:
    job_id = training(web)
    page = web.client("alice").get(f"/jobs/{job_id}", headers=HTML).text
    assert 'id="jd-pause"' in page and 'id="jd-resume"' not in page
    assert 'id="jd-pause"' not in web.client("carol").get(f"/jobs/{job_id}", headers=HTML).text  # not hers
    assert 'id="jd-pause"' in web.client("bob").get(f"/jobs/{job_id}", headers=HTML).text  # a manager

    paused = web.form("alice", f"/jobs/{job_id}/pause", {})
    assert paused.status_code == 303
    shown = web.client("alice").get(paused.headers["location"], headers=HTML).text
    assert "Pausing: the pod saves a checkpoint at the next step and stops." in shown
    run(web, job_id, lambda j: j.interrupt("sigterm", 321, 1, ago(0.2)), lambda j: j.pod_stopped("pod-1", ago(0.1)))
    web.project()
    with psycopg.connect(web.database_url) as conn:  # no pod: nothing more is spent, whenever it is read
        row = conn.execute("SELECT status, running_rate, checkpoint_step FROM jobs WHERE id = %s", (job_id,)).fetchone()
    assert row == ("paused", 0, 300)
    page = web.client("alice").get(f"/jobs/{job_id}", headers=HTML).text
    assert 'id="jd-resume"' in page and 'id="jd-pause"' not in page
    assert "Resuming continues from the checkpoint at step 300." in page
    events = web.client("alice").get(f"/jobs/{job_id}?tab=events", headers=HTML).text
    assert "Pause requested by alice" in events
    assert "Paused at step 321 (no pod, no spend); a resume continues from the checkpoint at step 300" in events

    resumed = web.form("alice", f"/jobs/{job_id}/resume", {})
    assert resumed.status_code == 303 and web.store.app.get_job(job_id).status == JobStatus.QUEUED


def test_the_api_refuses_a_stranger_and_a_job_that_is_not_training_with_the_reason(web: WebRig) -> None:
    job_id = training(web)
    client = web.client()
    stranger = client.post(f"/api/jobs/{job_id}/pause", headers=web.token("carol"))
    assert stranger.status_code == 403
    assert stranger.json()["detail"] == "Only the job's creator, a manager or an admin may pause it"
    early = client.post(f"/api/jobs/{job_id}/resume", headers=web.token("alice"))
    assert early.status_code == 409
    assert early.json()["detail"] == "Only a paused job can be resumed (this one is training)"
    paused = client.post(f"/api/jobs/{job_id}/pause", headers=web.token("bob"))
    assert paused.status_code == 200 and paused.json() == {"id": str(job_id), "status": "pausing"}
    web.project()
    assert client.get(f"/api/jobs/{job_id}", headers=web.token("bob")).json()["status"] == "pausing"
