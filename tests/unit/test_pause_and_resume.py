"""Pause and resume (FR2.2.2, #20): the job's rules, and the provisioner stopping its pod, freeing its
slot, keeping its reservation and continuing it from the checkpoint on its next pod."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from domain.aggregates.budget import PermissionDeniedError
from domain.aggregates.training_job import IllegalTransitionError, TrainingJob
from domain.applications import BudgetPolicy, Pipeline
from domain.job_status import ACTIVE, CancelReason, JobStatus
from domain.values import ArtifactRef
from handlers.provisioning import AgentSettings, Provisioner, QueuePolicy
from infra.pod_env import decode_json
from tests.factories import T0, configured_job, queue_sample_job
from tests.unit.test_provisioner import ScriptedProvider

S = JobStatus
CKPT = ArtifactRef("job-x", "x/attempt-1/checkpoint-step-40.tar", "c" * 64, 10)
ADAPTER = ArtifactRef("job-x", "x/adapter.tar", "e" * 64, 10)


def t(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def training_job() -> tuple[TrainingJob, int]:
    job = configured_job()
    job.queue(t(0))
    attempt = job.start_provisioning("spot", t(0))
    job.pod_started("pod-1", attempt, Decimal("3.60"), t(1))
    job.change_stage(S.TRAINING, attempt, t(2))
    job.record_checkpoint(40, CKPT, attempt, t(20))
    return job, attempt


def test_a_paused_job_has_no_pod_no_spend_and_resumes_on_its_next_attempt_from_the_checkpoint() -> None:
    job, attempt = training_job()
    job.request_pause("alice", "member", t(30))
    assert job.status == S.PAUSING and S.PAUSING in ACTIVE  # its pod still runs: it keeps its slot until it stops
    job.record_checkpoint(47, CKPT, attempt, t(30.05))  # the emergency checkpoint at the step boundary
    job.interrupt("sigterm", 47, attempt, t(30.1))
    job.pod_stopped("pod-1", t(30.2))
    assert job.status == S.PAUSED and S.PAUSED not in ACTIVE and not job.running_pods()
    assert job.pause["step"] == 47 and job.pause["checkpoint_step"] == 47 and job.interruptions == 0
    spent = job.cost(t(30.2)).total_cost
    assert job.cost(t(600)).total_cost == spent  # the clock stopped with the pod

    job.request_resume("alice", "member", t(600))
    assert job.status == S.QUEUED and job.start_provisioning("spot", t(601)) == attempt + 1
    assert job.latest_checkpoint == CKPT  # what the provisioner hands the next pod (PIPELINE_RESUME_FROM)
    job.change_stage(S.TRAINING, attempt + 1, t(602))
    assert job.downtime_seconds == 0  # a pause is not downtime


def test_only_its_creator_a_manager_or_an_admin_may_pause_or_resume_it() -> None:
    job, _ = training_job()
    with pytest.raises(PermissionDeniedError, match="Only the job's creator, a manager or an admin may pause it"):
        job.request_pause("carol", "member", t(30))
    job.request_pause("bob", "manager", t(30))
    job.interrupt("sigterm", 40, job.attempt, t(31))
    with pytest.raises(PermissionDeniedError, match="may resume it"):
        job.request_resume("carol", "member", t(40))
    job.request_resume("root", "admin", t(40))
    assert [type(e).__name__ for e in job.collect_events()][-3:] == ["PauseRequested", "Paused", "ResumeRequested"]


@pytest.mark.parametrize("status", [S.QUEUED, S.PREPROCESSING, S.FINALIZATION, S.INTERRUPTED, S.COMPLETED])
def test_only_a_training_job_can_be_paused(status: JobStatus) -> None:
    job, attempt = training_job()
    if status == S.QUEUED:
        job = configured_job()
        job.queue(t(0))
    elif status == S.PREPROCESSING:
        job = configured_job()
        job.queue(t(0))
        job.change_stage(S.PREPROCESSING, job.start_provisioning("spot", t(0)), t(1))
    elif status == S.FINALIZATION:
        job.change_stage(S.FINALIZATION, attempt, t(50))
    elif status == S.INTERRUPTED:
        job.interrupt("preempted", 40, attempt, t(50))
    else:
        job.complete(ADAPTER, {}, attempt, t(50))
    version = job.version
    with pytest.raises(IllegalTransitionError, match=f"Only a training job can be paused \\(this one is {status}\\)"):
        job.request_pause("alice", "member", t(60))
    assert job.version == version


def test_pausing_twice_changes_nothing_and_only_a_paused_job_resumes() -> None:
    job, attempt = training_job()
    with pytest.raises(IllegalTransitionError, match=r"Only a paused job can be resumed \(this one is training\)"):
        job.request_resume("alice", "member", t(30))
    job.request_pause("alice", "member", t(30))
    version = job.version
    job.request_pause("alice", "member", t(31))
    assert job.version == version
    with pytest.raises(IllegalTransitionError, match=r"this one is pausing"):
        job.request_resume("alice", "member", t(32))


def test_a_pausing_job_whose_pod_finishes_the_run_first_completes_and_stage_reports_do_not_unpause_it() -> None:
    job, attempt = training_job()
    job.request_pause("alice", "member", t(30))
    job.change_stage(S.FINALIZATION, attempt, t(30.1))  # the stopping pod's last report: ignored
    assert job.status == S.PAUSING
    job.complete(ADAPTER, {"final_loss": 0.3}, attempt, t(30.2))
    assert job.status == S.COMPLETED and job.adapter == ADAPTER


def test_a_paused_job_can_be_cancelled_and_ends_there() -> None:
    job, attempt = training_job()
    job.request_pause("alice", "member", t(30))
    job.interrupt("pod exited with -9", 40, attempt, t(31))  # however the pod went, the job is paused
    job.cancel(CancelReason.TOO_EXPENSIVE, "", "alice", t(40))
    assert job.status == S.CANCELLED and job.is_terminal


# --- the provisioner ---------------------------------------------------------------------------------

@pytest.fixture
def app() -> Pipeline:
    return Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=BudgetPolicy(default_limit=Decimal(5000)))


class RecordingProvider(ScriptedProvider):
    def __init__(self) -> None:
        super().__init__()
        self.envs: list[dict[str, str]] = []

    def create_pod(self, job_id: str, attempt: int, gpu_tier: str, env: dict[str, str]):
        self.envs.append(env)
        return super().create_pod(job_id, attempt, gpu_tier, env)


def now() -> datetime:
    return datetime.now(timezone.utc)


def test_a_pause_stops_the_pod_frees_the_slot_keeps_the_reservation_and_resume_continues_from_the_checkpoint(
        app: Pipeline) -> None:
    provider = RecordingProvider()
    queued: list = []
    p = Provisioner(app, provider, AgentSettings("nats://127.0.0.1:4222"), QueuePolicy(max_running=1),
                    queued_jobs=lambda: [j for j in queued if app.get_job(j).status == S.QUEUED])
    paused_id = queue_sample_job(app, name="Paused midway")
    p.on_event("TrainingJob.Queued", paused_id)
    other = queue_sample_job(app, name="Waiting its turn")
    queued.append(other)
    p.on_event("TrainingJob.Queued", other)
    assert provider.created == ["pod-1"]  # one slot: the other job waits
    app.update_job(paused_id, lambda j: j.change_stage(S.TRAINING, j.attempt, now()))
    app.update_job(paused_id, lambda j: j.record_checkpoint(40, CKPT, j.attempt, now()))

    app.pause_job(paused_id, actor="alice", role="member", at=now())
    p.on_event("TrainingJob.PauseRequested", paused_id)
    assert provider.terminated == ["pod-1"]  # SIGTERM: the agent checkpoints at the step boundary and exits
    app.update_job(paused_id, lambda j: j.interrupt("sigterm", 41, j.attempt, now()))  # its report
    p.on_event("TrainingJob.Paused", paused_id)
    provider.exit("pod-1", 143)
    p.record_exits()
    assert provider.created == ["pod-1", "pod-2"] and app.get_job(other).status == S.PROVISIONING  # the slot passed on
    month = app.get_job(paused_id).queued_at.strftime("%Y-%m")
    budget = app.budget(month)
    assert str(paused_id) in budget.reservations  # kept for the resume
    spent = app.record_job_spend(paused_id, now())
    assert spent == app.record_job_spend(paused_id, now() + timedelta(hours=5))  # no pod: nothing more is spent

    p.on_event("TrainingJob.PauseRequested", paused_id)  # redelivered: nothing to stop any more
    app.resume_job(paused_id, actor="alice", role="member", at=now())
    queued.append(paused_id)
    p.on_event("TrainingJob.ResumeRequested", paused_id)
    assert provider.created == ["pod-1", "pod-2"]  # the slot is taken: it waits in the queue
    app.update_job(other, lambda j: j.change_stage(S.TRAINING, j.attempt, now()))
    app.update_job(other, lambda j: j.complete(ADAPTER, {}, j.attempt, now()))
    p.on_event("TrainingJob.Completed", other)
    assert provider.created == ["pod-1", "pod-2", "pod-3"]
    resumed = app.get_job(paused_id)
    assert resumed.status == S.PROVISIONING and resumed.attempt == 2
    assert decode_json(provider.envs[-1]["PIPELINE_RESUME_FROM"], "resume")["name"] == CKPT.name
    p.on_event("TrainingJob.Paused", paused_id)  # redelivered after the resume: its new pod keeps its slot
    assert "pod-3" not in provider.terminated and paused_id in p.active
