"""The configuration templates library (FR5.2.2) through the pages, the JSON API and the command line:
"Save as Template" on a completed job, the library and its analytics, "Start from Template" into the
new-job form, edit, delete, the default templates, and every refusal leaving the event store as it was."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from argparse import Namespace
from uuid import UUID

import psycopg
import pytest

from domain.aggregates.template import ConfigurationTemplate
from domain.job_status import FailureType, JobStatus
from pipeline import template_commands
from tests.integration.test_web_job_detail import HTML, add_job, ago, event_count, run, training
from tests.integration.test_web_new_job import add_file, created, job_form, plain
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture


def complete(web: WebRig, job_id: UUID, loss: float = 0.31, minutes_ago: float = 10) -> None:
    training(web, job_id)
    run(web, job_id, lambda j: j.change_stage(JobStatus.FINALIZATION, 1, ago(minutes_ago + 1)),
        lambda j: j.complete(j.training_file, {"final_loss": loss}, 1, ago(minutes_ago)),
        lambda j: j.pod_stopped("pod-1", ago(minutes_ago)))
    web.store.app.record_job_spend(job_id, ago(minutes_ago))


def fail(web: WebRig, job_id: UUID) -> None:
    training(web, job_id)
    run(web, job_id, lambda j: j.fail(FailureType.OOM, "CUDA out of memory", {}, ago(5)),
        lambda j: j.pod_stopped("pod-1", ago(5)))
    web.store.app.record_job_spend(job_id, ago(5))


def save_form(**overrides: str) -> dict[str, str]:
    return {"name": "Production Financial Advisory - High Quality",
            "description": "Best configuration for 200+ conversation datasets", "visibility": "team",
            "tags": "production, financial, high-quality, balanced"} | overrides


def test_a_completed_job_is_saved_as_a_template_and_a_new_job_starts_from_it(web: WebRig) -> None:
    add_file(web)
    job = add_job(web, name="Advisor tone v1")
    complete(web, job)
    web.project()
    page = web.client("alice").get(f"/jobs/{job}", headers=HTML).text
    assert 'id="save-template-form"' in page and "Balanced preset, 3 epochs" in page
    saved = web.form("alice", f"/jobs/{job}/save-as-template", save_form())
    assert saved.status_code == 303, saved.text
    template_id = UUID(re.fullmatch(r"/templates/([0-9a-f-]{36})\?notice=Template\+saved\.",
                                    saved.headers["location"]).group(1))
    assert web.client("alice").get(f"/templates/{template_id}", headers=HTML).text.count("on its way") == 1
    web.project()
    library = plain(web.client("carol").get("/templates", headers=HTML).text)
    assert "Production Financial Advisory - High Quality" in library and "Used 0 jobs" in library
    form = web.client("carol").get(f"/jobs/new?template={template_id}", headers=HTML).text
    assert f'name="template_id" value="{template_id}"' in form
    assert "Started from template: Production Financial Advisory - High Quality" in form
    assert 'name="preset" value="balanced" checked' in form and 'name="gpu_tier" value="spot" checked' in form
    fields = job_form(add_file(web), name="From the template", notes="Started from template: Production Financial"
                      " Advisory - High Quality\n\nSame as v1, new data", template_id=str(template_id),
                      setting_num_train_epochs="2", tags=[], custom_tags="", client="", project="")
    new_job = created(web.form("carol", "/jobs/new", fields))
    job_state = web.store.app.get_job(new_job)
    assert job_state.notes[0][2].startswith("Started from template: Production Financial Advisory - High Quality")
    assert job_state.configuration["hyperparameters"]["num_train_epochs"] == 2  # edited before starting
    assert web.store.app.template(template_id).jobs == [str(new_job)]
    web.project()
    shown = plain(web.client("carol").get(f"/templates/{template_id}", headers=HTML).text)
    assert "Usage count 1" in shown and "From the template" in shown


def test_template_analytics_come_from_the_jobs_started_from_it(web: WebRig) -> None:
    app = web.store.app
    file_id = add_file(web)
    assert app.ensure_default_templates(ago(60)) == ["Quick Test", "Standard Production", "Maximum Quality"]
    quick = ConfigurationTemplate.default_id("quick-test")
    started = []
    for n in range(3):
        job_id = app.create_job_from_template(quick, file_id, created_by="alice", at=ago(200 - n),
                                              preset="conservative", gpu_tier="spot", name=f"Quick {n}",
                                              overrides={"num_train_epochs": 1})
        app.start_job(job_id, "alice", "member", ago(200 - n))
        started.append(job_id)
        if n < 2:  # the file is free again once the job has ended
            (complete(web, job_id, loss=0.3 + n / 10, minutes_ago=100 - 10 * n) if n == 0 else fail(web, job_id))
    web.project()
    listed = {t["name"]: t for t in web.client("alice").get("/api/templates?sort=usage&descending=true").json()}
    assert list(listed)[0] == "Quick Test"
    quick_row = listed["Quick Test"]
    assert (quick_row["usage_count"], quick_row["completed"], quick_row["failed"], quick_row["success_rate"]) == (
        3, 1, 1, 50)
    # the completed one: its pod ran from 120 to 100 minutes ago at $2.49/h (the failed one is no average)
    assert quick_row["average_final_loss"] == 0.3 and quick_row["average_cost"] == "0.83"
    assert quick_row["average_duration_hours"] == pytest.approx(20 / 60, abs=0.01)
    assert quick_row["checkpoint_every"] is None and quick_row["overrides"] == {"num_train_epochs": 1}
    assert listed["Standard Production"]["usage_count"] == 0 and listed["Standard Production"]["success_rate"] is None
    card = plain(web.client("alice").get("/templates?view=list", headers=HTML).text)
    assert "Quick Test" in card and "50%" in card
    assert app.get_job(started[2]).notes[0][2] == "Started from template: Quick Test"


def test_refusals_say_why_and_change_nothing(web: WebRig) -> None:
    add_file(web)
    running = add_job(web, name="Still training")
    training(web, running)
    web.project()
    before = event_count(web)
    refused = web.client("alice").post("/api/templates", json={"job_id": str(running), "name": "Too early"},
                                       headers=web.token("alice"))
    assert refused.status_code == 409
    assert refused.json()["detail"] == "Only a completed job can be saved as a template (this one is training)"
    page = web.form("alice", f"/jobs/{running}/save-as-template", save_form())
    assert page.status_code == 409 and "Only a completed job can be saved" in page.text
    assert event_count(web) == before
    done = add_job(web, name="Done once")
    complete(web, done)
    for n in range(2):
        other = add_job(web, name=f"Balanced spot failure {n}")
        fail(web, other)
    web.project()
    before = event_count(web)
    low = web.client("alice").post("/api/templates", json={"job_id": str(done), "name": "Flaky"},
                                   headers=web.token("alice"))
    assert low.status_code == 409 and "completed 1 of 3 times (33%)" in low.json()["detail"]
    bad = web.client("alice").post("/api/templates", json={"job_id": str(done), "name": "x", "visibility": "team"},
                                   headers=web.token("alice"))
    assert bad.status_code in (400, 409)
    missing = web.client("alice").post("/api/templates", json={"name": "No job"}, headers=web.token("alice"))
    assert missing.status_code == 400 and "job_id" in missing.text
    assert event_count(web) == before
    page = web.client("alice").get(f"/jobs/{done}", headers=HTML).text
    assert 'id="save-template-refused"' in page and "(33%)" in page


def test_only_creators_managers_and_admins_change_templates_and_private_ones_stay_private(web: WebRig) -> None:
    app = web.store.app
    app.ensure_default_templates(ago(60))
    standard = ConfigurationTemplate.default_id("standard-production")
    add_file(web)
    job = add_job(web)
    complete(web, job)
    web.project()
    private = UUID(web.client("alice").post("/api/templates", headers=web.token("alice"), json={
        "job_id": str(job), "name": "Alice's own", "visibility": "private", "tags": ["experiment"]}).json()["id"])
    web.project()
    before = event_count(web)
    assert web.client("carol").get(f"/api/templates/{private}", headers=web.token("carol")).status_code == 404
    assert "Alice's own" not in web.client("carol").get("/templates", headers=HTML).text
    assert web.client("carol").get(f"/jobs/new?template={private}", headers=HTML).text.count(
        "That template was not found") == 1
    edit = web.client("carol").patch(f"/api/templates/{standard}", json={"description": "mine now"},
                                     headers=web.token("carol"))
    assert edit.status_code == 403 and "creator, a manager or an admin" in edit.json()["detail"]
    unconfirmed = web.client("bob").delete(f"/api/templates/{standard}", headers=web.token("bob"))
    assert unconfirmed.status_code == 400 and "confirm=true" in unconfirmed.json()["detail"]
    page_delete = web.form("bob", f"/templates/{standard}/delete", {})
    assert "Tick" in page_delete.headers["location"]
    assert event_count(web) == before
    edited = web.client("bob").patch(f"/api/templates/{standard}", headers=web.token("bob"),
                                     json={"description": "Our default", "tags": ["production"]})
    assert edited.status_code == 200 and edited.json()["visibility"] == "team"
    form = web.form("alice", f"/templates/{private}/edit", {"description": "Now shared", "tags": "experiment",
                                                             "visibility": "team"})
    assert "Template+updated" in form.headers["location"]
    assert web.client("bob").delete(f"/api/templates/{standard}?confirm=true",
                                    headers=web.token("bob")).json()["deleted"]
    web.project()
    names = [t["name"] for t in web.client("carol").get("/api/templates", headers=web.token("carol")).json()]
    assert "Standard Production" not in names and "Alice's own" in names
    assert app.ensure_default_templates(ago(0)) == []  # a deleted default is not created again
    assert app.get_job(job).status is JobStatus.COMPLETED


def test_filters_and_sorts_and_the_command_line(web: WebRig) -> None:
    web.store.app.ensure_default_templates(ago(60))
    web.project()
    api = web.client("alice")
    token = web.token("alice")
    by_name = [t["name"] for t in api.get("/api/templates?sort=name", headers=token).json()]
    assert by_name == ["Maximum Quality", "Quick Test", "Standard Production"]
    tagged = [t["name"] for t in api.get("/api/templates?tag=aggressive", headers=token).json()]
    assert tagged == ["Maximum Quality"]
    assert api.get("/api/templates?creator=bob", headers=token).json() == []
    assert api.get("/api/templates?sort=price", headers=token).status_code == 400
    grid = api.get("/templates?tag=quick-test&view=grid", headers=HTML).text
    assert 'id="template-grid"' in grid and grid.count('class="card template-card"') == 1
    with psycopg.connect(web.database_url, autocommit=True) as conn:
        out = io.StringIO()
        args = Namespace(user=None, creator=None, tag=None, visibility=None, sort="name", descending=False,
                         format="text", action=template_commands._list)
        assert template_commands.run(conn, args, out) == 0
        lines = out.getvalue().splitlines()
        assert lines[0].startswith("NAME") and lines[2].startswith("Quick Test") and "conservative" in lines[2]
        out = io.StringIO()
        shown = Namespace(template="Quick Test", format="json", action=template_commands._show)
        assert template_commands.run(conn, shown, out) == 0
        assert json.loads(out.getvalue())["overrides"] == {"num_train_epochs": 1}


@pytest.mark.slow
def test_a_fresh_install_has_the_three_default_templates_recorded_by_system(migrated: str, nats_server) -> None:
    env = {"DATABASE_URL": migrated, "NATS_URL": nats_server.url}
    done = subprocess.run([sys.executable, "-m", "pipeline", "db", "migrate"], capture_output=True, text=True,
                          timeout=120, env=os.environ | env)
    assert done.returncode == 0, done.stderr
    assert "default templates created: Quick Test, Standard Production, Maximum Quality" in done.stdout
    again = subprocess.run([sys.executable, "-m", "pipeline", "db", "migrate"], capture_output=True, text=True,
                           timeout=120, env=os.environ | env)
    assert "default templates created" not in again.stdout
    replay = subprocess.run([sys.executable, "-m", "pipeline", "audit", "replay", "--format", "json"],
                            capture_output=True, text=True, timeout=120, env=os.environ | env)
    created = [json.loads(line) for line in replay.stdout.splitlines()]
    assert [(r["topic"], r["actor"]) for r in created if r["aggregate_type"] == "ConfigurationTemplate"] == [
        ("ConfigurationTemplate.Created", "system")] * 3
