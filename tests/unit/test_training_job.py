"""TrainingJob rules: states, metadata, idempotent telemetry, interruptions, cost ledger."""

from datetime import timedelta
from decimal import Decimal

import pytest
from eventsourcing.domain import Aggregate

from domain.aggregates.budget import Budget
from domain.aggregates.training_job import IllegalTransitionError, TrainingJob
from domain.job_metadata import InvalidMetadataError, default_name, retry_name
from domain.job_status import ACTIVE, CancelReason, FailureType, JobStatus, can_move
from domain.values import ArtifactRef
from tests.factories import T0, configuration, configured_job, new_job

S = JobStatus
CKPT = ArtifactRef("checkpoints", "j/step-100", "c" * 64, 10)


def t(minutes: float):
    return T0 + timedelta(minutes=minutes)


def running_job(rate: str = "2.49") -> tuple[TrainingJob, int]:
    job = configured_job()
    job.queue(t(0))
    attempt = job.start_provisioning("spot", t(0))
    job.pod_started("pod-1", attempt, Decimal(rate), t(0))
    job.change_stage(S.PREPROCESSING, attempt, t(2))
    job.change_stage(S.MODEL_LOADING, attempt, t(5))
    job.change_stage(S.TRAINING, attempt, t(15))
    return job, attempt


def test_a_job_moves_from_configuration_through_its_stages_to_completed() -> None:
    job, attempt = running_job()
    job.change_stage(S.FINALIZATION, attempt, t(600))
    job.complete(CKPT, {"final_loss": 0.3}, attempt, t(605))
    assert job.status == S.COMPLETED and job.adapter == CKPT


def test_the_base_models_download_is_a_stage_between_preprocessing_and_model_loading_and_may_be_skipped() -> None:
    assert can_move(S.PREPROCESSING, S.DOWNLOADING_MODEL) and can_move(S.DOWNLOADING_MODEL, S.MODEL_LOADING)
    assert can_move(S.PREPROCESSING, S.MODEL_LOADING) and can_move(S.PROVISIONING, S.DOWNLOADING_MODEL)
    assert not can_move(S.MODEL_LOADING, S.DOWNLOADING_MODEL) and S.DOWNLOADING_MODEL in ACTIVE
    downloaded, cached = configured_job(), configured_job()
    for job in (downloaded, cached):
        job.queue(t(0))
        attempt = job.start_provisioning("spot", t(0))
        job.pod_started("pod-1", attempt, Decimal("2.49"), t(0))
        job.change_stage(S.PREPROCESSING, attempt, t(2))
    downloaded.change_stage(S.DOWNLOADING_MODEL, attempt, t(3))
    assert downloaded.status == S.DOWNLOADING_MODEL
    downloaded.change_stage(S.PREPROCESSING, attempt, t(4))  # a late report of the earlier stage moves nothing
    for job in (downloaded, cached):  # a pod whose volume holds the weights goes straight to model loading
        job.change_stage(S.MODEL_LOADING, attempt, t(13))
        assert job.status == S.MODEL_LOADING
    downloaded.change_stage(S.DOWNLOADING_MODEL, attempt, t(14))
    assert downloaded.status == S.MODEL_LOADING
    stages = [e.stage for e in downloaded.collect_events() if isinstance(e, TrainingJob.StageChanged)]
    assert stages == ["preprocessing", "downloading_model", "model_loading"]


def test_queueing_an_unconfigured_job_raises_and_changes_nothing() -> None:
    job = new_job()
    with pytest.raises(IllegalTransitionError, match="pending_configuration job cannot become queued"):
        job.queue(T0)
    assert job.version == 1 and job.status == S.PENDING_CONFIGURATION


@pytest.mark.parametrize("name", ["ab", "x" * 101, "   "])
def test_a_name_outside_3_to_100_characters_is_refused_with_the_spec_message(name: str) -> None:
    with pytest.raises(InvalidMetadataError, match="Job name must be between 3 and 100 characters"):
        new_job(name=name)


def test_the_name_cannot_change_once_the_job_has_started() -> None:
    job = configured_job()
    job.rename("Better name", t(1))
    job.queue(t(2))
    with pytest.raises(IllegalTransitionError, match="cannot be changed once the job has started"):
        job.rename("Too late", t(3))
    assert job.name == "Better name"


def test_the_default_name_follows_the_spec_pattern_and_fits() -> None:
    assert default_name("Elena Morales Financial", "Balanced", T0.date()) == \
        "Elena Morales Financial - Balanced - 2026-11-24"
    assert len(default_name("x" * 200, "Conservative", T0.date())) == 100


@pytest.mark.parametrize(
    ("tags", "message"),
    [(["t" + str(i) * 3 for i in range(11)], "Maximum 10 tags allowed"),
     (["Has Space"], "lowercase letters, digits and hyphens"), (["ab"], "3-30 characters")],
)
def test_tags_follow_the_spec_rules(tags: list[str], message: str) -> None:
    with pytest.raises(InvalidMetadataError, match=message):
        new_job(tags=tags)


def test_description_and_notes_have_their_limits_and_notes_keep_timestamps() -> None:
    with pytest.raises(InvalidMetadataError, match="at most 500"):
        new_job(description="d" * 501)
    job = new_job()
    job.add_note("Initial notes: testing aggressive LR", "alice", t(1))
    job.add_note("Update: loss plateaued at epoch 2.5", "alice", t(90))
    assert [(at, text[:7]) for at, _, text in job.notes] == [(t(1), "Initial"), (t(90), "Update:")]
    with pytest.raises(InvalidMetadataError, match="at most 2000"):
        job.add_note("n" * 2001, "alice", t(2))


def test_repeated_or_stale_telemetry_records_nothing() -> None:
    job, attempt = running_job()
    job.record_progress(10, 100, 0.1, 2.0, attempt, t(20))
    job.record_checkpoint(100, CKPT, attempt, t(30))
    job.complete_epoch(1, 1.5, attempt, t(40))
    version = job.version
    job.record_progress(10, 100, 0.1, 2.0, attempt, t(21))     # repeated step
    job.record_progress(5, 100, 0.05, 2.5, attempt, t(22))     # stale step
    job.record_checkpoint(100, CKPT, attempt, t(31))            # repeated checkpoint
    job.complete_epoch(1, 1.5, attempt, t(41))                  # repeated epoch
    job.change_stage(S.MODEL_LOADING, attempt, t(42))           # backwards stage
    job.record_progress(11, 100, 0.1, 2.0, attempt - 1, t(43))  # an older pod's report
    assert job.version == version


def test_interruptions_are_counted_with_their_downtime_and_recovery_resumes_training() -> None:
    job, attempt = running_job()
    job.record_checkpoint(100, CKPT, attempt, t(60))
    assert job.interrupt("preempted", 130, attempt, t(70))
    assert not job.interrupt("preempted", 130, attempt, t(70))  # the same report twice
    job.pod_stopped("pod-1", t(70))
    assert job.begin_recovery(t(71))
    attempt = job.start_provisioning("spot", t(71))
    job.pod_started("pod-2", attempt, Decimal("2.49"), t(72))
    job.change_stage(S.TRAINING, attempt, t(79))
    assert (job.status, job.interruptions, job.downtime_seconds) == (S.TRAINING, 1, Decimal(540))
    assert job.latest_checkpoint == CKPT


def test_three_failed_recoveries_in_a_row_exhaust_recovery() -> None:
    job, attempt = running_job()
    for i in range(3):
        job.interrupt("preempted", 0, attempt, t(20 + i * 10))
        assert job.begin_recovery(t(21 + i * 10))
        attempt = job.start_provisioning("spot", t(21 + i * 10))
    job.interrupt("preempted", 0, attempt, t(60))
    assert not job.begin_recovery(t(61))
    assert job.status == S.FAILED and job.failure["type"] == FailureType.RECOVERY_EXHAUSTED


def test_a_cancelled_job_cannot_be_resumed_and_keeps_its_reason() -> None:
    job, attempt = running_job()
    job.cancel(CancelReason.TOO_EXPENSIVE, "Over budget", "bob", t(30))
    assert job.cancellation == {"reason": "too_expensive", "notes": "Over budget", "actor": "bob"}
    with pytest.raises(IllegalTransitionError):
        job.begin_recovery(t(31))
    job.record_progress(500, 1000, 1.0, 0.5, attempt, t(32))  # late telemetry is ignored
    assert job.last_step == 0


def test_the_cost_ledger_splits_setup_useful_and_lost_time_and_reconciles() -> None:
    job, attempt = running_job(rate="3.60")                  # $0.001 per second
    job.record_checkpoint(100, CKPT, attempt, t(45))
    job.interrupt("preempted", 150, attempt, t(55))         # 10 min since the checkpoint is redone
    job.pod_stopped("pod-1", t(56))
    cost = job.cost(t(100))
    assert cost.setup_seconds == Decimal(15 * 60 + 60)  # loading, and the minute the dead pod idled
    assert cost.lost_seconds == Decimal(10 * 60)
    assert cost.useful_seconds == Decimal(56 * 60 - 16 * 60 - 10 * 60)
    assert cost.total_cost == Decimal("3.360")
    cents = cost.in_cents()
    assert cents["useful"] + cents["lost"] + cents["setup"] == cents["total"] == Decimal("3.36")


def test_late_reports_after_the_end_are_ignored_and_a_completion_beats_an_interruption() -> None:
    job, attempt = running_job()
    job.interrupt("heartbeat lost", 10, attempt, t(30))          # a false alarm…
    job.complete(CKPT, {"final_loss": 0.3}, attempt, t(31))      # …then the adapter arrives
    assert job.status == S.COMPLETED
    job.fail(FailureType.UNKNOWN, "late", {}, t(32))
    job.complete(CKPT, {}, attempt, t(33))
    assert job.status == S.COMPLETED and job.failure is None


def test_an_interrupted_attempts_later_telemetry_does_not_contradict_its_interruption() -> None:
    job, attempt = running_job()
    job.record_progress(1923, 3000, 1.0, 0.9, attempt, t(20))
    assert job.interrupt("heartbeat lost", job.last_step, attempt, t(30))  # the pod was not heard…
    job.record_checkpoint(1900, CKPT, attempt, t(29))   # …late news of what it did before: kept
    version = job.version
    later = ArtifactRef("job-x", "checkpoint-2400.tar", "b" * 64, 10)
    job.record_checkpoint(2400, later, attempt, t(31))  # …but what it did after is not recorded
    job.record_progress(2699, 3000, 1.3, 0.8, attempt, t(35))
    job.complete_epoch(2, 0.7, attempt, t(36))
    assert job.version == version
    assert (job.last_step, job.last_checkpoint_step, job.latest_checkpoint) == (1923, 1900, CKPT)
    assert job.begin_recovery(t(40))
    job.record_progress(2700, 3000, 1.3, 0.8, attempt, t(41))
    assert job.version == version + 1 and job.last_step == 1923


def test_a_recovering_job_ignores_stage_reports_of_its_old_pod() -> None:
    job, attempt = running_job()
    job.interrupt("preempted", 10, attempt, t(30))
    job.begin_recovery(t(31))
    job.change_stage(S.TRAINING, attempt, t(32))
    assert job.status == S.RECOVERING


def test_a_running_pod_is_costed_up_to_now() -> None:
    job, _ = running_job(rate="3.60")
    assert job.cost(t(60)).total_cost == Decimal("3.6")


def test_configuring_with_an_inconsistent_estimate_is_refused() -> None:
    job = new_job()
    with pytest.raises(ValueError, match="0 ≤ min ≤ max"):
        job.configure(**configuration(estimated_cost_min=Decimal(50), estimated_cost_max=Decimal(40)))
    assert job.status == S.PENDING_CONFIGURATION


def test_a_retry_is_named_with_its_number_once() -> None:
    assert retry_name("Advisor tone v1", 2) == "Advisor tone v1 (Retry #2)"
    assert retry_name("Advisor tone v1 (Retry #2)", 3) == "Advisor tone v1 (Retry #3)"
    assert len(retry_name("n" * 100, 12)) == 100


def test_retries_and_resumes_link_to_the_original_job() -> None:
    original = new_job()
    retry = new_job(name="Advisor tone v1 (Retry #2)", retry_of=original.id, retry_number=2)
    resumed = new_job(resumed_from=original.id, resume_checkpoint=CKPT)
    assert (retry.retry_of, retry.retry_number) == (original.id, 2)
    assert (resumed.resumed_from, resumed.latest_checkpoint) == (original.id, CKPT)


@pytest.mark.parametrize("aggregate", [TrainingJob, Budget])
def test_every_event_class_has_its_own_explicit_topic(aggregate: type[Aggregate]) -> None:
    classes = [v for k, v in vars(aggregate).items() if isinstance(v, type) and k != "Event"
               and issubclass(v, Aggregate.Event)]
    topics = [getattr(cls, "TOPIC", None) for cls in classes]
    assert all(topics) and len(set(topics)) == len(topics)
    assert all(topic.startswith(aggregate.TOPIC + ".") for topic in topics)


@pytest.mark.parametrize("kwargs", [{"sha256": "xyz"}, {"size": -1}, {"bucket": ""}])
def test_an_artifact_reference_must_be_well_formed(kwargs: dict) -> None:
    fields = {"bucket": "files", "name": "a", "sha256": "0" * 64, "size": 1} | kwargs
    with pytest.raises(ValueError):
        ArtifactRef(**fields)
