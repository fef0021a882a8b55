"""The provisioning reactor against the in-memory application and a scripted pod provider:
redelivery, races between telemetry and pod exits, restarts."""

import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest

from domain.applications import BudgetPolicy, Pipeline
from domain.job_status import CancelReason, JobStatus
from domain.values import ArtifactRef
from handlers.pods.provider import NoCapacityError, Pod, PodExit
from handlers.provisioning import AgentSettings, Provisioner, QueuePolicy
from infra.objectstore import StoredCheckpoint
from infra.pod_env import decode_json
from tests.factories import queue_sample_job

ADAPTER = ArtifactRef("adapters", "j/adapter.tar", "e" * 64, 10)


class ScriptedProvider:
    def __init__(self) -> None:
        self.created: list[str] = []
        self.terminated: list[str] = []
        self.exits: list[PodExit] = []
        self.no_capacity_left = 0
        self.on_create = lambda: None

    def create_pod(self, job_id: str, attempt: int, gpu_tier: str, env: dict[str, str]) -> Pod:
        if self.no_capacity_left:
            self.no_capacity_left -= 1
            raise NoCapacityError("no H100 left")
        self.on_create()
        pod_id = f"pod-{len(self.created) + 1}"
        self.created.append(pod_id)
        return Pod(pod_id, Decimal("3.60"), datetime.now(timezone.utc))

    def terminate(self, pod_id: str) -> None:
        self.terminated.append(pod_id)

    def exited(self) -> list[PodExit]:
        gone, self.exits = self.exits, []
        return gone

    def exit(self, pod_id: str, code: int) -> None:
        self.exits.append(PodExit(pod_id, code, datetime.now(timezone.utc)))


@pytest.fixture
def app() -> Pipeline:
    return Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=BudgetPolicy(default_limit=Decimal(5000)))


def provisioner(app: Pipeline, provider: ScriptedProvider, **queue: float) -> Provisioner:
    return Provisioner(app, provider, AgentSettings("nats://127.0.0.1:4222"), QueuePolicy(**queue))


def test_a_redelivered_interruption_does_not_touch_the_replacement_pod(app: Pipeline) -> None:
    provider = ScriptedProvider()
    p = provisioner(app, provider)
    job_id = queue_sample_job(app)
    p.on_event("TrainingJob.Queued", job_id)
    app.update_job(job_id, lambda job: job.interrupt("preempted", 0, job.attempt, datetime.now(timezone.utc)))
    p.on_event("TrainingJob.Interrupted", job_id)
    p.on_event("TrainingJob.Interrupted", job_id)  # redelivered
    assert provider.created == ["pod-1", "pod-2"]
    assert provider.terminated == ["pod-1"]
    assert app.get_job(job_id).status == JobStatus.PROVISIONING


def test_a_pod_exit_seen_before_the_completed_report_still_releases_budget_and_file(app: Pipeline) -> None:
    provider = ScriptedProvider()
    p = provisioner(app, provider)
    job_id = queue_sample_job(app)
    p.on_event("TrainingJob.Queued", job_id)
    app.update_job(job_id, lambda j: j.change_stage(JobStatus.TRAINING, j.attempt, datetime.now(timezone.utc)))
    provider.exit("pod-1", 0)
    p.record_exits()
    app.update_job(job_id, lambda j: j.complete(ADAPTER, {}, j.attempt, datetime.now(timezone.utc)))
    p.on_event("TrainingJob.Completed", job_id)
    budget = app.budget("2026-11")
    assert str(job_id) not in budget.reservations and budget.charged > 0


def test_a_job_cancelled_while_its_pod_was_being_created_gets_that_pod_terminated(app: Pipeline) -> None:
    provider = ScriptedProvider()
    p = provisioner(app, provider)
    job_id = queue_sample_job(app)
    provider.on_create = lambda: app.cancel_job(job_id, CancelReason.TESTING, "", "bob", datetime.now(timezone.utc))
    p.on_event("TrainingJob.Queued", job_id)
    assert provider.terminated == ["pod-1"]


def test_a_pod_killed_without_a_report_interrupts_its_job_and_a_silent_reported_exit_does_too_later(
    app: Pipeline
) -> None:
    provider = ScriptedProvider()
    p = provisioner(app, provider)
    killed, silent = queue_sample_job(app, name="Killed pod"), queue_sample_job(app, name="Silent pod")
    p.on_event("TrainingJob.Queued", killed)
    p.on_event("TrainingJob.Queued", silent)
    provider.exit("pod-1", -9)
    provider.exit("pod-2", 143)
    p.record_exits()
    assert app.get_job(killed).status == JobStatus.INTERRUPTED
    assert app.get_job(silent).status == JobStatus.PROVISIONING
    p.check_reports(now_monotonic=10**9)
    assert app.get_job(silent).status == JobStatus.INTERRUPTED


def test_no_capacity_waits_and_is_retried_and_jobs_beyond_the_limit_wait_their_turn(app: Pipeline) -> None:
    provider = ScriptedProvider()
    provider.no_capacity_left = 1
    queued: list[UUID] = []
    p = Provisioner(app, provider, AgentSettings("nats://127.0.0.1:4222"), QueuePolicy(max_running=1, retry_every_s=5),
                    queued_jobs=lambda: queued)
    first, second = queue_sample_job(app, name="First"), queue_sample_job(app, name="Second")
    p.on_event("TrainingJob.Queued", first)
    p.on_event("TrainingJob.Queued", second)
    queued.append(second)
    assert app.get_job(first).status == JobStatus.QUEUED_WAITING_FOR_GPU
    assert app.get_job(second).status == JobStatus.QUEUED
    p.retry_waiting(now_monotonic=time.monotonic() + 10)
    assert provider.created == ["pod-1"] and app.get_job(first).status == JobStatus.PROVISIONING
    app.update_job(first, lambda j: j.change_stage(JobStatus.TRAINING, j.attempt, datetime.now(timezone.utc)))
    app.update_job(first, lambda j: j.complete(ADAPTER, {}, j.attempt, datetime.now(timezone.utc)))
    p.on_event("TrainingJob.Completed", first)
    assert provider.created == ["pod-1", "pod-2"] and app.get_job(second).status == JobStatus.PROVISIONING


def test_the_control_planes_own_nats_hiccup_is_retried_in_seconds_and_no_capacity_in_minutes(app: Pipeline) -> None:
    """A NATS node lost while a pod's inputs were staged is not a lack of GPUs (issue #21's chaos run:
    such a job waited five minutes)."""
    import nats.errors

    from handlers.provisioning import HICCUP_RETRY_S

    provider = ScriptedProvider()
    failures = [nats.errors.TimeoutError(), NoCapacityError("no H100 left")]

    def create() -> None:
        if failures:
            raise failures.pop(0)

    provider.on_create = create
    p = provisioner(app, provider, retry_every_s=300)
    job = queue_sample_job(app)
    p.on_event("TrainingJob.Queued", job)
    assert app.get_job(job).status == JobStatus.QUEUED_WAITING_FOR_GPU
    p.retry_waiting(now_monotonic=time.monotonic() + HICCUP_RETRY_S + 1)  # the hiccup: tried again in seconds
    assert provider.created == [] and app.get_job(job).status == JobStatus.QUEUED_WAITING_FOR_GPU
    p.retry_waiting(now_monotonic=time.monotonic() + 2 * HICCUP_RETRY_S + 2)  # no capacity: not yet
    assert provider.created == []
    p.retry_waiting(now_monotonic=time.monotonic() + 301)
    assert provider.created == ["pod-1"] and app.get_job(job).status == JobStatus.PROVISIONING


def test_after_a_restart_pods_the_provider_does_not_know_are_recorded_lost_and_their_jobs_interrupted(
    app: Pipeline
) -> None:
    before = provisioner(app, ScriptedProvider())
    job_id = queue_sample_job(app)
    before.on_event("TrainingJob.Queued", job_id)
    after = provisioner(app, ScriptedProvider())
    after.adopt([job_id], [])
    job = app.get_job(job_id)
    assert job.status == JobStatus.INTERRUPTED and job.running_pods() == []


class RememberingProvider(ScriptedProvider):
    """Knows the pods a previous process started (as the local provider's state dir and RunPod do)."""

    def __init__(self, known: list[str]) -> None:
        super().__init__()
        self.known = known

    def adopt(self, pod_ids: list[str]) -> list[str]:
        return [p for p in pod_ids if p in self.known]


def test_after_a_restart_pods_the_provider_still_knows_are_adopted_without_interruption_or_new_pod(
    app: Pipeline
) -> None:
    before = provisioner(app, ScriptedProvider())
    job_id = queue_sample_job(app)
    before.on_event("TrainingJob.Queued", job_id)
    app.update_job(job_id, lambda j: j.change_stage(JobStatus.TRAINING, j.attempt, datetime.now(timezone.utc)))
    version = app.get_job(job_id).version
    provider = RememberingProvider(["pod-1"])
    after = provisioner(app, provider)
    after.adopt([job_id], [])
    job = app.get_job(job_id)
    assert (job.status, job.running_pods(), job.version) == (JobStatus.TRAINING, ["pod-1"], version)
    assert provider.created == [] and after.pods == {"pod-1": job_id}
    after.watchdog({}, timeout_s=60, now_monotonic=time.monotonic())  # heard of from its adoption on
    assert app.get_job(job_id).status == JobStatus.TRAINING
    provider.exit("pod-1", -9)  # then it dies: interrupted and recovered as any watched pod
    after.record_exits()
    assert app.get_job(job_id).status == JobStatus.INTERRUPTED and app.get_job(job_id).running_pods() == []


def test_the_pod_trains_with_the_seed_the_job_asked_for_and_42_otherwise(app: Pipeline) -> None:
    from infra.pod_env import decode_json
    from tests.factories import configuration, job_fields

    envs: list[dict[str, str]] = []
    provider = ScriptedProvider()
    original = provider.create_pod
    provider.create_pod = lambda job_id, attempt, tier, env: envs.append(env) or original(job_id, attempt, tier, env)
    p = provisioner(app, provider)
    seeded = app.create_job(**job_fields(name="Seeded run"))
    app.configure_job(seeded, **configuration(hyperparameters={"r": 8, "seed": 7}))
    app.start_job(seeded, "alice", "member", datetime.now(timezone.utc))
    for job_id in (seeded, queue_sample_job(app, name="Unseeded run")):
        p.on_event("TrainingJob.Queued", job_id)
    assert [decode_json(env["PIPELINE_JOB_CONFIG"], "config")["seed"] for env in envs] == [7, 42]


class EnvProvider(ScriptedProvider):
    """Keeps each pod's environment (where the agent is told to resume from)."""

    def __init__(self) -> None:
        super().__init__()
        self.envs: list[dict[str, str]] = []

    def create_pod(self, job_id: str, attempt: int, gpu_tier: str, env: dict[str, str]) -> Pod:
        self.envs.append(env)
        return super().create_pod(job_id, attempt, gpu_tier, env)


CHECKPOINT_5 = ArtifactRef("job-x", "x/attempt-1/checkpoint-step-5.tar", "5" * 64, 50)
CHECKPOINT_10 = ArtifactRef("job-x", "x/attempt-1/checkpoint-step-10.tar", "a" * 64, 100)


def killed_after_its_step_10_upload(app: Pipeline, stored: StoredCheckpoint | Exception | None,
                                    ) -> tuple[UUID, EnvProvider, list[tuple[UUID, int]]]:
    """A training job whose checkpoint of step 5 was read from its telemetry; its pod then dies (SIGKILL) and
    the object store holds what `stored` says; the provisioner recovers it."""
    provider, asked = EnvProvider(), []

    def find(job_id: UUID, attempt: int) -> StoredCheckpoint | None:
        asked.append((job_id, attempt))
        if isinstance(stored, Exception):
            raise stored
        return stored

    p = Provisioner(app, provider, AgentSettings("nats://127.0.0.1:4222"), QueuePolicy(), find_checkpoint=find)
    job_id = queue_sample_job(app)
    p.on_event("TrainingJob.Queued", job_id)
    t0 = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
    app.update_job(job_id, lambda j: j.change_stage(JobStatus.TRAINING, j.attempt, t0))
    app.update_job(job_id, lambda j: j.record_checkpoint(5, CHECKPOINT_5, j.attempt, t0 + timedelta(seconds=5)))
    app.update_job(job_id, lambda j: j.interrupt("pod exited with -9", 12, j.attempt, t0 + timedelta(seconds=12)))
    p.on_event("TrainingJob.Interrupted", job_id)
    return job_id, provider, asked


def recovered_from(app: Pipeline, job_id: UUID) -> ArtifactRef | None:
    (started,) = [e for e in app.repository.event_store.get(job_id) if type(e).__name__ == "RecoveryStarted"]
    return started.from_checkpoint


def resumed_from(provider: EnvProvider) -> dict:
    return decode_json(provider.envs[-1]["PIPELINE_RESUME_FROM"], "PIPELINE_RESUME_FROM")


def test_a_checkpoint_stored_before_the_pod_died_but_not_yet_heard_of_is_where_the_recovery_resumes(
        app: Pipeline) -> None:
    stored = StoredCheckpoint(10, CHECKPOINT_10, datetime(2026, 12, 7, 12, 0, 11, tzinfo=timezone.utc))
    job_id, provider, asked = killed_after_its_step_10_upload(app, stored)
    assert asked == [(job_id, 1)]  # the attempt that died
    assert recovered_from(app, job_id) == CHECKPOINT_10
    assert resumed_from(provider)["name"] == CHECKPOINT_10.name and provider.created == ["pod-1", "pod-2"]
    job = app.get_job(job_id)
    assert job.last_checkpoint_step == 10
    # its telemetry, read late, is old news: recorded once, not twice
    app.update_job(job_id, lambda j: j.record_checkpoint(10, CHECKPOINT_10, 1, stored.stored_at))
    saved = [e for e in app.repository.event_store.get(job_id) if type(e).__name__ == "CheckpointSaved"]
    assert [e.step for e in saved] == [5, 10]


@pytest.mark.parametrize("stored", [
    StoredCheckpoint(10, CHECKPOINT_10, datetime(2026, 12, 7, 12, 0, 30, tzinfo=timezone.utc)),  # after the death
    StoredCheckpoint(5, CHECKPOINT_5, datetime(2026, 12, 7, 12, 0, 5, tzinfo=timezone.utc)),  # the one it knew
    None,  # nothing stored
    OSError("object store unreachable"),  # cannot tell: the recorded checkpoint is still right
], ids=["stored-after-the-interruption", "already-recorded", "none", "unreachable"])
def test_otherwise_the_recovery_resumes_from_the_checkpoint_its_telemetry_recorded(
        app: Pipeline, stored: StoredCheckpoint | Exception | None) -> None:
    job_id, provider, _ = killed_after_its_step_10_upload(app, stored)
    assert recovered_from(app, job_id) == CHECKPOINT_5
    assert resumed_from(provider)["name"] == CHECKPOINT_5.name


def test_a_job_with_a_validation_file_stages_it_with_the_training_file_and_a_resumed_pod_still_gets_its_checkpoint(
        app: Pipeline) -> None:
    from tests.factories import REF, configuration, job_fields

    validation = ArtifactRef("files", "held-out/val.jsonl", "f" * 64, 321)
    staged: list[list[ArtifactRef]] = []

    def stage(job_id: UUID, refs: list[ArtifactRef]) -> list[ArtifactRef]:
        staged.append(refs)
        return [ArtifactRef(f"job-{job_id}", f"staged/{ref.name}", ref.sha256, ref.size) for ref in refs]

    provider = EnvProvider()
    p = Provisioner(app, provider, AgentSettings("nats://127.0.0.1:4222"), QueuePolicy(), stage=stage)
    job_id = app.create_job(**job_fields(validation_file=validation))
    app.configure_job(job_id, **configuration())
    app.start_job(job_id, "alice", "member", datetime.now(timezone.utc))
    p.on_event("TrainingJob.Queued", job_id)
    app.update_job(job_id, lambda j: j.change_stage(JobStatus.TRAINING, j.attempt, datetime.now(timezone.utc)))
    app.update_job(job_id, lambda j: j.record_checkpoint(5, CHECKPOINT_5, j.attempt, datetime.now(timezone.utc)))
    app.update_job(job_id, lambda j: j.interrupt("preempted", 6, j.attempt, datetime.now(timezone.utc)))
    p.on_event("TrainingJob.Interrupted", job_id)

    assert staged[0] == [REF, validation]  # the first pod: the training file, then the validation file
    assert staged[1] == [REF, validation, CHECKPOINT_5]  # its replacement resumes from the checkpoint too
    for env in provider.envs:
        spec = decode_json(env["PIPELINE_JOB_CONFIG"], "config")
        assert spec["validation_file"] == {"bucket": f"job-{job_id}", "name": f"staged/{validation.name}",
                                           "sha256": validation.sha256, "size": validation.size}
    assert resumed_from(provider)["name"] == f"staged/{CHECKPOINT_5.name}"
