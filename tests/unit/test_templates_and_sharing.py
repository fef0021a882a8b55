"""Configuration templates (FR5.2.2) and job sharing (FR8.1.2) in the domain: their rules, the
application commands that save them, and every event class through the stored form."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from domain.aggregates.budget import PermissionDeniedError
from domain.aggregates.job_sharing import InvalidSharingError, JobSharing, SharingNotFoundError, can_view
from domain.aggregates.template import (
    ConfigurationTemplate,
    InvalidTemplateError,
    TemplateNotAllowedError,
    TemplateNotFoundError,
)
from domain.applications import BudgetPolicy, Pipeline
from domain.job_status import JobStatus
from domain.preset_choice import HyperparameterError
from domain.training_file import ValidationReport, summarize
from domain.values import ArtifactRef
from infra import envelope
from projections.base import event_topics
from tests.factories import T0, configured_job

SAMPLE = Path(__file__).parents[2] / "samples" / "financial-advisory.json"
FILE = ArtifactRef("files", "ab/financial-advisory.json", "b" * 64, 1234)


def t(minutes: float):
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def app() -> Pipeline:
    return Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=BudgetPolicy(default_limit=5000))


def completed_job(app: Pipeline, created_by: str = "alice") -> uuid.UUID:
    file_id = app.register_training_file("Advisor sample", FILE, ValidationReport(()), summarize(SAMPLE.read_bytes()),
                                         "alice", T0)
    job_id = app.create_job_from_file(file_id, created_by=created_by, at=T0, preset="conservative",
                                      overrides={"num_train_epochs": "1", "save_steps": "50"})

    def finish(job):
        job.queue(t(1))
        attempt = job.start_provisioning("spot", t(1))
        job.pod_started("pod-1", attempt, Decimal("2.49"), t(2))
        for stage in (JobStatus.PREPROCESSING, JobStatus.MODEL_LOADING, JobStatus.TRAINING, JobStatus.FINALIZATION):
            job.change_stage(stage, attempt, t(3))
        job.complete(FILE, {"final_loss": 0.3}, attempt, t(30))

    app.update_job(job_id, finish)
    return job_id


# --- templates -----------------------------------------------------------------------------------

def test_a_completed_job_saves_its_preset_changed_settings_gpu_and_checkpoint_frequency(app: Pipeline) -> None:
    job_id = completed_job(app)
    template_id = app.save_job_as_template(job_id, completed=19, failed=1, name="  Quick   advisor ",
                                           description="Fast check", visibility="team", tags=["quick-test"],
                                           actor="bob", at=t(40))
    template = app.template(template_id)
    assert (template.name, template.preset, template.gpu_tier, template.created_by) == (
        "Quick advisor", "conservative", "spot", "bob")
    assert template.overrides == {"num_train_epochs": 1, "save_steps": 50} and template.checkpoint_every == 50
    assert template.hyperparameters["num_train_epochs"] == 1 and template.hyperparameters["r"] == 8
    assert template.source_job_id == job_id


@pytest.mark.parametrize(("completed", "failed", "message"), [
    (9, 1, r"completed 9 of 10 times \(90%\)"), (0, 0, r"completed 0 of 0 times \(0%\)")])
def test_a_configuration_succeeding_90_percent_or_less_cannot_become_a_template(app, completed, failed,
                                                                                message) -> None:
    job_id = completed_job(app)
    with pytest.raises(TemplateNotAllowedError, match=message):
        app.save_job_as_template(job_id, completed=completed, failed=failed, name="Nope", description=None,
                                 visibility="private", tags=[], actor="alice", at=t(40))


def test_an_unfinished_job_or_bad_fields_are_refused_with_the_reason(app: Pipeline) -> None:
    job = configured_job()
    with pytest.raises(TemplateNotAllowedError, match="Only a completed job .* \\(this one is configured\\)"):
        ConfigurationTemplate.from_job(uuid.uuid4(), job, completed=5, failed=0, name="Early", description=None,
                                       visibility="team", tags=[], actor="alice", at=T0)
    job_id = completed_job(app)
    for fields, error, match in (({"name": "ab"}, InvalidTemplateError, "between 3 and 100 characters \\(got 2\\)"),
                                 ({"visibility": "public"}, InvalidTemplateError, "private or team"),
                                 ({"tags": ["Bad Tag"]}, Exception, "lowercase letters"),
                                 ({"description": "x" * 1001}, InvalidTemplateError, "at most 1000")):
        with pytest.raises(error, match=match):
            app.save_job_as_template(job_id, completed=5, failed=0, **({"name": "Fine name", "description": None,
                                                                         "visibility": "team", "tags": []} | fields),
                                     actor="alice", at=t(40))


def test_a_job_from_a_template_notes_it_and_counts_as_its_use(app: Pipeline) -> None:
    assert app.ensure_default_templates(T0) == ["Quick Test", "Standard Production", "Maximum Quality"]
    assert app.ensure_default_templates(t(1)) == []  # idempotent
    quick = app.template(ConfigurationTemplate.default_id("quick-test"))
    assert (quick.created_by, quick.preset, quick.overrides, quick.visibility) == (
        "system", "conservative", {"num_train_epochs": 1}, "team")
    file_id = app.register_training_file("Advisor sample", FILE, ValidationReport(()), summarize(SAMPLE.read_bytes()),
                                         "alice", T0)
    job_id = app.create_job_from_template(quick.id, file_id, created_by="carol", at=t(2), preset=quick.preset,
                                          gpu_tier=quick.gpu_tier, overrides={"num_train_epochs": "2"},
                                          notes="My hypothesis")
    job = app.get_job(job_id)
    assert job.notes[0][2] == "Started from template: Quick Test\n\nMy hypothesis"
    assert job.configuration["hyperparameters"]["num_train_epochs"] == 2  # edited in the form: kept
    assert app.template(quick.id).jobs == [str(job_id)]
    with pytest.raises(HyperparameterError, match="Epochs must be between 1 and 10 \\(got 11\\)"):
        app.create_job_from_template(quick.id, file_id, created_by="carol", at=t(3), preset="conservative",
                                     overrides={"num_train_epochs": "11"})
    assert app.template(quick.id).jobs == [str(job_id)]  # a refused job is not counted


def test_private_templates_are_their_creators_and_team_ones_are_managed_by_managers(app: Pipeline) -> None:
    job_id = completed_job(app)
    mine = app.save_job_as_template(job_id, completed=1, failed=0, name="Mine", description=None,
                                    visibility="private", tags=[], actor="alice", at=t(40))
    assert app.template(mine).visible_to("alice") and not app.template(mine).visible_to("bob")
    with pytest.raises(TemplateNotFoundError):
        app.edit_template(mine, description="x", tags=[], visibility="team", actor="bob", role="manager", at=t(41))
    app.edit_template(mine, description="Shared now", tags=["production"], visibility="team", actor="alice",
                      role="member", at=t(42))
    with pytest.raises(PermissionDeniedError, match="creator, a manager or an admin"):
        app.delete_template(mine, actor="carol", role="member", at=t(43))
    with pytest.raises(PermissionDeniedError, match="Only its creator may make a template private"):
        app.edit_template(mine, description="", tags=[], visibility="private", actor="bob", role="manager", at=t(43))
    version = app.template(mine).version
    app.edit_template(mine, description="Shared now", tags=["production"], visibility="team", actor="alice",
                      role="member", at=t(44))
    assert app.template(mine).version == version  # nothing changed: no event
    app.delete_template(mine, actor="bob", role="manager", at=t(45))
    assert not app.template(mine).visible_to("alice")
    assert app.get_job(job_id).status is JobStatus.COMPLETED


# --- sharing -------------------------------------------------------------------------------------------

def test_a_job_is_private_to_its_creator_managers_and_admins_until_shared() -> None:
    assert can_view(None, "alice", "member", owner="alice") and can_view(None, "bob", "manager", owner="alice")
    assert not can_view(None, "carol", "member", owner="alice") and not can_view(None, None, "member", owner="alice")
    sharing = JobSharing.open(uuid.uuid4(), "alice", "alice", T0)
    sharing.change_visibility("team", "alice", "member", t(1))
    assert can_view(sharing, "carol", "member") and not can_view(sharing, None, "member")
    sharing.change_visibility("public", "bob", "manager", t(2))
    assert can_view(sharing, None, "member")
    with pytest.raises(PermissionDeniedError, match="Only the job's creator, a manager or an admin"):
        sharing.change_visibility("private", "carol", "member", t(3))
    with pytest.raises(InvalidSharingError, match="private, team or public"):
        sharing.change_visibility("world", "alice", "member", t(3))
    assert [type(e).__name__ for e in sharing.collect_events()] == ["Created", "VisibilityChanged",
                                                                    "VisibilityChanged"]


def test_a_revoked_link_and_every_link_before_revoke_all_stop_working() -> None:
    sharing = JobSharing.open(uuid.uuid4(), "alice", "alice", T0)
    first, second = uuid.uuid4(), uuid.uuid4()
    sharing.issue_link(first, "training-report", t(60 * 24 * 30), "carol", t(1))
    sharing.issue_link(second, "deployment-package", t(60 * 48), "alice", t(2))
    assert [link["link_id"] for link in sharing.active_links(t(3))] == [str(first), str(second)]
    with pytest.raises(PermissionDeniedError):
        sharing.revoke_link(second, "carol", "member", t(4))
    sharing.revoke_link(first, "carol", "member", t(4))  # its own sharer
    assert sharing.link_revoked(first, t(1)) and not sharing.link_revoked(second, t(2))
    with pytest.raises(SharingNotFoundError):
        sharing.revoke_link(uuid.uuid4(), "alice", "member", t(5))
    sharing.revoke_all_links("alice", "member", t(6))
    assert sharing.link_revoked(second, t(2)) and sharing.link_revoked(None, t(5))  # older, id-less links too
    assert not sharing.link_revoked(None, t(7)) and sharing.active_links(t(7)) == []


def test_sharing_by_email_needs_a_shared_job_and_real_recipients() -> None:
    sharing = JobSharing.open(uuid.uuid4(), "alice", "alice", T0)
    with pytest.raises(InvalidSharingError, match="This job is private: make it Team or Public"):
        sharing.share("email", ["sarah@example.com"], "", "alice", "member", t(1))
    sharing.change_visibility("team", "alice", "member", t(1))
    for recipients, match in (([], "at least one recipient"), (["not an address!"], "neither an email"),
                              ([f"u{i}@example.com" for i in range(21)], "At most 20")):
        with pytest.raises(InvalidSharingError, match=match):
            sharing.share("email", recipients, "", "alice", "member", t(2))
    sharing.share("email", ["sarah@example.com", "bob", "bob"], "Look", "carol", "member", t(3))
    sharing.share("slack", [], "Great results", "carol", "member", t(4))
    shared = [e for e in sharing.collect_events() if isinstance(e, JobSharing.Shared)]
    assert [(e.channel, e.recipients, e.visibility) for e in shared] == [
        ("email", ["sarah@example.com", "bob"], "team"), ("slack", [], "team")]


# --- stored form -----------------------------------------------------------------------------------

def template_and_sharing_events() -> list:
    template = ConfigurationTemplate.define(uuid.uuid4(), name="Quick", description="d", preset="conservative",
                                            overrides={"num_train_epochs": 1, "learning_rate": "0.0002"},
                                            gpu_tier="on_demand", visibility="private", tags=["quick-test"],
                                            created_by="alice", at=T0, source_job_id=uuid.uuid4())
    template.edit(description="e", tags=[], visibility="team", actor="alice", role="member", at=t(1))
    template.record_use(uuid.uuid4(), "carol", t(2))
    template.delete("bob", "manager", t(3))
    sharing = JobSharing.open(uuid.uuid4(), "alice", "bob", T0)
    sharing.change_visibility("public", "alice", "member", t(1))
    link = uuid.uuid4()
    sharing.issue_link(link, "training-report", t(100), "alice", t(2))
    sharing.revoke_link(link, "alice", "member", t(3))
    sharing.revoke_all_links("bob", "manager", t(4))
    sharing.share("email", ["sarah@example.com"], "hi", "alice", "member", t(5))
    return template.collect_events() + sharing.collect_events()


@pytest.mark.parametrize("event", template_and_sharing_events(), ids=lambda e: type(e).__qualname__)
def test_a_template_or_sharing_event_round_trips_through_the_stored_form_and_the_envelope(app, event) -> None:
    stored = app.mapper.to_stored_event(event)
    assert app.mapper.to_domain_event(stored) == event
    notification = type("N", (), {"id": 9, **vars(stored)})()
    assert app.mapper.to_domain_event(envelope.decode(envelope.encode(app.name, notification)).stored_event) == event


def test_every_template_and_sharing_event_class_has_a_round_trip_case() -> None:
    covered = {type(e).TOPIC for e in template_and_sharing_events()}
    assert covered == set(event_topics(ConfigurationTemplate)) | set(event_topics(JobSharing))


def test_a_jobs_checkpoint_frequency_reaches_its_pod_else_the_deployments(app: Pipeline) -> None:
    from handlers.provisioning import AgentSettings, Provisioner, QueuePolicy
    from infra.pod_env import decode_json

    job_id = completed_job(app)  # conservative, 1 epoch, a checkpoint every 50 steps
    provisioner = Provisioner(app, object(), AgentSettings("nats://x", checkpoint_every=100), QueuePolicy())
    spec = decode_json(provisioner.pod_env(app.get_job(job_id), 1)["PIPELINE_JOB_CONFIG"], "config")
    assert spec["checkpoint_every"] == 50 and spec["hyperparameters"]["num_train_epochs"] == 1
    file_id = app.register_training_file("Advisor sample", FILE, ValidationReport(()), summarize(SAMPLE.read_bytes()),
                                         "alice", T0)
    plain = app.create_job_from_file(file_id, created_by="alice", at=t(60), preset="balanced")
    default = decode_json(provisioner.pod_env(app.get_job(plain), 1)["PIPELINE_JOB_CONFIG"], "c")
    assert default["checkpoint_every"] == 100
