"""Retries, suggested fixes, resumes, switching to on-demand, promotion and queue estimates: the
domain rules and the provisioning reactor's part in them."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from domain.aggregates.budget import BudgetExceededError, PermissionDeniedError
from domain.applications import BudgetPolicy, Pipeline
from domain.job_status import CancelReason, FailureType, JobStatus
from domain.presets import BALANCED, CONSERVATIVE
from domain.queue import estimate_starts
from domain.retries import RetryNotAllowedError, adjusted, same_configuration, suggested_fix
from domain.values import ArtifactRef
from tests.factories import CHECKPOINT, T0, configuration, job_fields, queue_sample_job
from tests.unit.test_provisioner import ScriptedProvider, provisioner

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def app() -> Pipeline:
    return Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=BudgetPolicy(default_limit=Decimal(5000)))


def queued(app: Pipeline, batch: int | None = None, **fields):
    job_id = app.create_job(**job_fields(**fields))
    hyper = BALANCED.as_config() | ({"per_device_train_batch_size": batch} if batch else {})
    app.configure_job(job_id, **configuration(hyperparameters=hyper))
    app.start_job(job_id, "alice", "member", T0)
    return job_id


def failed(app: Pipeline, failure: FailureType, *, checkpoint: bool = False, batch: int | None = None,
           **fields) -> object:
    job_id = queued(app, batch, **fields)

    def run(job) -> None:
        attempt = job.start_provisioning("spot", NOW)
        job.pod_started("pod-a", attempt, Decimal("2.49"), NOW)
        job.change_stage(JobStatus.TRAINING, attempt, NOW)
        job.record_progress(100, 400, 1.0, 1.2, attempt, NOW)
        if checkpoint:
            job.record_checkpoint(100, CHECKPOINT, attempt, NOW)
        job.fail(failure, "boom", {}, NOW + timedelta(hours=1))
        job.pod_stopped("pod-a", NOW + timedelta(hours=1))

    app.update_job(job_id, run)
    app.record_job_spend(job_id, NOW + timedelta(hours=1))
    return app.get_job(job_id)


def test_an_oom_is_fixed_by_halving_the_batch_then_by_the_conservative_preset(app: Pipeline) -> None:
    job = failed(app, FailureType.OOM)
    batch = job.configuration["hyperparameters"]["per_device_train_batch_size"]
    fix = suggested_fix(job)
    assert fix.hyperparameters["per_device_train_batch_size"] == batch // 2
    assert [c.describe() for c in fix.changes] == [f"per_device_train_batch_size: {batch} → {batch // 2}"]
    assert f"batch_size={batch // 2}" in fix.message
    at_one = failed(app, FailureType.OOM, batch=1)
    fix = suggested_fix(at_one)
    assert fix.preset == CONSERVATIVE.name and fix.hyperparameters == CONSERVATIVE.as_config()


def test_a_timeout_drops_an_epoch_and_an_interruption_loop_moves_to_on_demand(app: Pipeline) -> None:
    timeout = failed(app, FailureType.TIMEOUT)
    epochs = timeout.configuration["hyperparameters"]["num_train_epochs"]
    assert suggested_fix(timeout).hyperparameters["num_train_epochs"] == epochs - 1
    looped = failed(app, FailureType.RECOVERY_EXHAUSTED)
    assert suggested_fix(looped).gpu_tier == "on_demand"
    assert suggested_fix(failed(app, FailureType.DATASET_FORMAT)) is None


def test_a_retry_is_a_new_linked_job_queued_with_a_fresh_reservation(app: Pipeline) -> None:
    original = failed(app, FailureType.OOM)
    new_id, warnings = app.retry_job(original.id, suggested_fix(original), actor="bob", role="member", at=NOW)
    retry = app.get_job(new_id)
    assert retry.status == JobStatus.QUEUED and warnings == []
    assert (retry.retry_of, retry.retry_number, retry.name) == (original.id, 1, f"{original.name} (Retry #1)")
    assert retry.configuration["hyperparameters"]["per_device_train_batch_size"] == \
        original.configuration["hyperparameters"]["per_device_train_batch_size"] // 2
    assert app.budget("2026-11").reservations[str(new_id)] == retry.estimated_cost_max > 0
    assert "per_device_train_batch_size" in retry.notes[-1][2]
    # A retry of the retry stays linked to the first job and counts on.
    app.update_job(new_id, lambda j: j.cancel(CancelReason.TESTING, "", "bob", NOW))
    again, _ = app.retry_job(new_id, same_configuration(retry), actor="bob", role="member", at=NOW)
    assert (app.get_job(again).retry_of, app.get_job(again).retry_number) == (original.id, 2)


def test_a_resume_starts_from_the_checkpoint_with_an_estimate_for_the_work_left(app: Pipeline) -> None:
    original = failed(app, FailureType.OOM, checkpoint=True)
    plan = adjusted(same_configuration(original), {"per_device_train_batch_size": 2, "gpu_tier": "on_demand"})
    from dataclasses import replace
    new_id, _ = app.retry_job(original.id, replace(plan, resume=True), actor="bob", role="member", at=NOW)
    resumed = app.get_job(new_id)
    assert resumed.resumed_from == original.id and resumed.latest_checkpoint == CHECKPOINT
    assert resumed.configuration["gpu_tier"] == "on_demand"
    fresh, _ = app.retry_job(original.id, plan, actor="bob", role="member", at=NOW)
    assert resumed.estimated_cost_max < app.get_job(fresh).estimated_cost_max  # 3/4 of the steps left


def test_a_retry_and_a_resume_validate_on_the_validation_file_the_original_did(app: Pipeline) -> None:
    from dataclasses import replace

    held_out = ArtifactRef("files", "held-out/val.jsonl", "f" * 64, 321)
    original = failed(app, FailureType.OOM, checkpoint=True, validation_file=held_out)
    plan = same_configuration(original)
    for resume in (False, True):
        new_id, _ = app.retry_job(original.id, replace(plan, resume=resume), actor="bob", role="member", at=NOW)
        assert app.get_job(new_id).validation_file == held_out
    assert app.get_job(app.retry_job(failed(app, FailureType.OOM).id, plan, actor="bob", role="member",
                                     at=NOW)[0]).validation_file is None


def test_what_cannot_be_retried_is_refused_and_leaves_nothing(app: Pipeline) -> None:
    running = queued(app)
    with pytest.raises(RetryNotAllowedError, match="Only failed or cancelled"):
        app.retry_job(running, same_configuration(app.get_job(running)), actor="bob", role="member", at=NOW)
    no_checkpoint = failed(app, FailureType.OOM)
    from dataclasses import replace
    with pytest.raises(RetryNotAllowedError, match="no checkpoint"):
        app.retry_job(no_checkpoint.id, replace(same_configuration(no_checkpoint), resume=True), actor="bob",
                      role="member", at=NOW)
    with pytest.raises(RetryNotAllowedError, match="between"):
        adjusted(same_configuration(no_checkpoint), {"num_train_epochs": 50})
    tight = Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=BudgetPolicy(default_limit=Decimal(60)))
    original = failed(tight, FailureType.OOM)  # its reservation is released: the budget is free again
    jobs_before = len(tight.budget("2026-11").reservations)
    with pytest.raises(BudgetExceededError):
        tight.retry_job(original.id, adjusted(same_configuration(original), {"gpu_tier": "on_demand"}),
                        actor="bob", role="member", at=NOW)
    assert len(tight.budget("2026-11").reservations) == jobs_before


def test_switching_a_waiting_job_to_on_demand_grows_its_estimate_and_reservation(app: Pipeline) -> None:
    job_id = queue_sample_job(app)
    before = app.get_job(job_id).estimated_cost_max
    warnings = app.switch_gpu_tier(job_id, "on_demand", actor="alice", role="member", at=NOW)
    job = app.get_job(job_id)
    assert warnings == [] and job.configuration["gpu_tier"] == "on_demand"
    assert job.estimated_cost_max > before
    assert app.budget("2026-11").reservations[str(job_id)] == job.estimated_cost_max
    app.update_job(job_id, lambda j: j.start_provisioning("on_demand", NOW))
    with pytest.raises(Exception, match="only while the job waits"):
        app.switch_gpu_tier(job_id, "spot", actor="alice", role="member", at=NOW)


def test_only_a_manager_promotes_and_only_a_queued_job(app: Pipeline) -> None:
    job_id = queue_sample_job(app)
    with pytest.raises(PermissionDeniedError):
        app.promote_job(job_id, actor="bob", role="member", at=NOW)
    app.promote_job(job_id, actor="carol", role="manager", at=NOW)
    assert app.get_job(job_id).promoted_at == NOW


def test_queue_estimates_take_the_slot_that_frees_first() -> None:
    hours = [timedelta(hours=h) for h in (2, 1, 3)]
    one_slot = estimate_starts(NOW, [timedelta(hours=2)], hours, slots=1, provisioning=timedelta(minutes=5))
    # One slot: the spec's sum of remaining times plus provisioning, job after job.
    assert one_slot[0] == NOW + timedelta(hours=2, minutes=5)
    assert one_slot[1] == one_slot[0] + timedelta(hours=2, minutes=5)
    three = estimate_starts(NOW, [timedelta(hours=2), timedelta(hours=1)], hours, slots=3,
                            provisioning=timedelta(minutes=5))
    assert three[0] == NOW + timedelta(minutes=5)                  # a free slot
    assert three[1] == NOW + timedelta(hours=1, minutes=5)         # the 1 h job's slot
    assert three[2] == NOW + timedelta(hours=2, minutes=5)         # the 2 h job's slot


def test_the_provisioning_window_ends_with_a_timeout_event_and_a_switch_retries_at_once(app: Pipeline) -> None:
    provider = ScriptedProvider()
    p = provisioner(app, provider, retry_every_s=10, retry_window_s=30)
    job_id = queue_sample_job(app)
    provider.no_capacity_left = 100
    p.on_event("TrainingJob.Queued", job_id)
    first = p.waiting[job_id][0]
    p.retry_waiting(first + 15)
    p.retry_waiting(first + 40)
    job = app.get_job(job_id)
    assert job.status == JobStatus.QUEUED_WAITING_FOR_GPU and job.awaiting_gpu_decision
    assert job_id not in p.waiting
    version = app.get_job(job_id).version
    p.retry_waiting(first + 100)  # nothing more until the owner decides
    assert app.get_job(job_id).version == version and provider.created == []
    provider.no_capacity_left = 0
    app.switch_gpu_tier(job_id, "on_demand", actor="alice", role="member", at=NOW)
    p.on_event("TrainingJob.GpuTierChanged", job_id)
    assert provider.created == ["pod-1"] and app.get_job(job_id).status == JobStatus.PROVISIONING


def test_a_job_waiting_for_a_gpu_is_retried_after_a_restart_unless_its_window_ended(app: Pipeline) -> None:
    waiting, decided = queue_sample_job(app, name="Waiting job"), queue_sample_job(app, name="Timed out job")
    for job_id in (waiting, decided):
        app.update_job(job_id, lambda j: j.provisioning_failed(j.start_provisioning("spot", NOW), "none", NOW))
    app.update_job(decided, lambda j: j.provisioning_timed_out(Decimal(3600), NOW))
    p = provisioner(app, ScriptedProvider())
    p.adopt([waiting, decided], [])
    assert set(p.waiting) == {waiting}


def test_pod_credentials_are_granted_per_attempt_and_revoked_with_the_pod(app: Pipeline) -> None:
    class Authority:
        def __init__(self) -> None:
            self.log: list[tuple] = []

        def grant(self, job_id: str, attempt: int):
            self.log.append(("grant", job_id, attempt))
            from infra.natsauth import PodCredentials
            return PodCredentials(f"pod-{attempt}", "pw", "_INBOX_x")

        def revoke(self, job_id: str, attempt: int | None = None) -> None:
            self.log.append(("revoke", job_id, attempt))

    provider, authority = ScriptedProvider(), Authority()
    staged: list[list[ArtifactRef]] = []
    p = provisioner(app, provider)
    p.authority = authority
    p.stage = lambda job_id, refs: staged.append(refs) or [ArtifactRef(f"job-{job_id}", "in", r.sha256, r.size)
                                                           for r in refs]
    job_id = queue_sample_job(app)
    p.on_event("TrainingJob.Queued", job_id)
    provider.exit("pod-1", -9)
    p.record_exits()
    p.on_event("TrainingJob.Interrupted", job_id)
    j = str(job_id)
    assert authority.log == [("grant", j, 1), ("revoke", j, 1), ("grant", j, 2)]
    assert staged and staged[0][0] == app.get_job(job_id).training_file
