"""What the jobs list and the job detail keep of a training job, folded from its events (pure: no
SQL): the row of `jobs`, its stage timeline and its interruptions. Which pod an event concerns
follows the aggregate's rules; cost arithmetic is the domain's `ledger`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import singledispatch
from typing import Any
from uuid import UUID

from domain.aggregates.training_job import TrainingJob
from domain.cost_ledger import PodLifetime, ledger, seconds_between
from domain.job_status import JobStatus
from domain.queue import PROVISIONING_TIME
from projections import job_quality as quality

J = TrainingJob
S = JobStatus
# Events that move the job to a fixed status; StageChanged carries its own.
STATUS_OF = {
    J.ProvisioningFailed: S.QUEUED_WAITING_FOR_GPU,
    J.Interrupted: S.INTERRUPTED, J.RecoveryStarted: S.RECOVERING,
    J.Completed: S.COMPLETED, J.Failed: S.FAILED, J.Cancelled: S.CANCELLED,
    J.PauseRequested: S.PAUSING, J.Paused: S.PAUSED, J.ResumeRequested: S.QUEUED,  # FR2.2.2
}
# FR2.1.2: each stage's share of the job's estimated duration (preprocessing 2 %, model loading
# 8 %, training 85 %, finalization 5 %), less the evaluation's 5 % taken from training (FR6.1,
# FR6.3; docs/domain.md); provisioning is the queue's provisioning time. Model loading's 8 % covers
# the spec's "download from the Hub (or load from cache)" too: the download, a stage of its own, has 5 %
# of it. A re-evaluation job only loads the base model and evaluates.
STAGE_SHARES = {S.PREPROCESSING: Decimal("0.02"), S.DOWNLOADING_MODEL: Decimal("0.05"),
                S.MODEL_LOADING: Decimal("0.03"), S.TRAINING: Decimal("0.80"), S.FINALIZATION: Decimal("0.05"),
                S.EVALUATING: Decimal("0.05")}
EVALUATION_ONLY_SHARES = STAGE_SHARES | {S.EVALUATING: Decimal("0.90")}
PROVISIONING_SECONDS = Decimal(int(PROVISIONING_TIME.total_seconds()))


@dataclass
class Stage:
    attempt: int
    stage: str
    started_at: datetime
    ended_at: datetime | None = None
    outcome: str | None = None
    estimated_seconds: Decimal | None = None


@dataclass
class Interruption:
    number: int
    attempt: int
    step: int
    reason: str
    at: datetime
    recovery_started_at: datetime | None = None
    recovery_attempt: int | None = None
    checkpoint_step: int | None = None
    resumed_at: datetime | None = None
    downtime_seconds: Decimal | None = None


@dataclass
class JobState:
    """One `jobs` row (its columns by name) with its stages and interruptions. `changed` names the
    stages and interruptions to write; `text_changed` says the search vector must be redone."""

    id: UUID
    name: str
    status: str
    training_file: dict[str, Any]
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int = 0
    preset: str | None = None
    gpu_tier: str | None = None
    estimated_cost_min: Decimal | None = None
    estimated_cost_max: Decimal | None = None
    queued_at: datetime | None = None
    promoted_at: datetime | None = None
    awaiting_gpu_decision: bool = False
    file_name: str = ""
    description: str = ""
    tags: list[str] = field(default_factory=list)
    client: str | None = None
    project: str | None = None
    notes: list[dict[str, str]] = field(default_factory=list)
    retry_of: UUID | None = None
    retry_number: int = 0
    resumed_from: UUID | None = None
    gpu_type: str | None = None
    hourly_rate: Decimal | None = None
    estimated_duration_hours: Decimal | None = None
    attempt: int = 0
    current_pod: str | None = None
    pods: dict[str, PodLifetime] = field(default_factory=dict)
    cost: Decimal = Decimal(0)
    cost_as_of: datetime | None = None
    running_rate: Decimal = Decimal(0)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    step: int = 0
    total_steps: int = 0
    epoch: float | None = None
    loss: float | None = None
    validation_loss: float | None = None
    final_loss: float | None = None
    checkpoint_step: int = 0
    interruptions: int = 0
    downtime_seconds: Decimal = Decimal(0)
    failure_type: str | None = None
    failure_message: str | None = None
    cancellation: dict[str, str] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    suffix: str | None = None
    base_model: str | None = None
    validation_file: dict[str, Any] | None = None  # migration 0027
    # quality validation (FR6.1, FR6.3): projections/job_quality.py
    quality_outcome: str | None = None
    quality_overridden: bool = False
    perplexity_baseline: float | None = None
    perplexity_trained: float | None = None
    perplexity_improvement: Decimal | None = None
    retention_percent: Decimal | None = None
    evaluation: dict[str, Any] | None = None
    evaluation_failure: str | None = None
    evaluation_progress: dict[str, Any] | None = None
    delivery_override: dict[str, Any] | None = None
    suites: dict[str, Any] = field(default_factory=lambda: {"knowledge": None, "probes": []})
    evaluates: UUID | None = None
    # judged replies (FR6.2.1, FR6.2.2, FR6.4.1): projections/job_quality.py, migration 0024
    ei_improvement: Decimal | None = None
    ei_regressions: int | None = None
    brand_alignment: Decimal | None = None
    judging_status: str | None = None
    judging_cost: Decimal = Decimal(0)
    stages: dict[tuple[int, str], Stage] = field(default_factory=dict)
    interrupted: dict[int, Interruption] = field(default_factory=dict)
    changed: set[tuple[str, Any]] = field(default_factory=set)
    text_changed: bool = False

    @classmethod
    def created(cls, event: J.Created) -> JobState:
        return cls(event.originator_id, event.name, S.PENDING_CONFIGURATION.value, event.training_file.as_dict(),
                   event.created_by, event.at, event.at, file_name=event.file_name, description=event.description,
                   tags=list(event.tags), client=event.client, project=event.project, retry_of=event.retry_of,
                   retry_number=event.retry_number, resumed_from=event.resumed_from, labels=dict(event.labels or {}),
                   suffix=event.suffix, base_model=event.base_model, text_changed=True,
                   validation_file=event.validation_file.as_dict() if event.validation_file else None)

    def recost(self, at: datetime) -> None:
        """The ledger's total at `at` (the aggregate's `cost(at)`, to the last digit); pods still
        running go on costing `running_rate` per hour."""
        self.cost, self.cost_as_of = ledger(tuple(self.pods.values()), at).total_cost, at
        self.running_rate = sum((p.hourly_rate for p in self.pods.values() if p.stopped_at is None), Decimal(0))

    def mark_current_pod(self, name: str, at: datetime, first_only: bool = True) -> None:
        """Training, checkpoint and interruption times go to the current attempt's pod, as in the aggregate."""
        pod = self.pods.get(self.current_pod or "")
        if pod is not None and (getattr(pod, name) is None or not first_only):
            self.pods[pod.pod_id] = pod.with_(**{name: at})
            self.recost(at)

    def open_stage(self, attempt: int, stage: str, at: datetime) -> None:
        shares = EVALUATION_ONLY_SHARES if self.evaluates else STAGE_SHARES
        share = shares.get(stage)  # type: ignore[call-overload] - a StrEnum key matches its str
        if stage == S.PROVISIONING:
            seconds: Decimal | None = PROVISIONING_SECONDS
        elif share is not None and self.estimated_duration_hours is not None:
            seconds = self.estimated_duration_hours * 3600 * share
        else:
            seconds = None
        self.stages[(attempt, stage)] = Stage(attempt, stage, at, estimated_seconds=seconds)
        self.changed.add(("stage", (attempt, stage)))

    def close_stages(self, at: datetime, outcome: str) -> None:
        for key, stage in self.stages.items():
            if stage.ended_at is None:
                stage.ended_at, stage.outcome = at, outcome
                self.changed.add(("stage", key))

    def open_interruptions(self) -> list[Interruption]:
        return [i for i in self.interrupted.values() if i.resumed_at is None]

    def touch(self, kind: str, key: Any) -> None:
        self.changed.add((kind, key))


def apply(event: Any, job: JobState) -> None:
    """Folds one event into `job`: its own changes, then the version and time every event sets.
    `fold` is looked up by the event's exact class in a plain dict: singledispatch's own lookup
    costs about a microsecond, and a rebuild folds every event of the store."""
    kind = type(event)
    (_FOLDS.get(kind) or _FOLDS.setdefault(kind, fold.dispatch(kind)))(event, job)
    job.version = event.originator_version
    job.updated_at = max(job.updated_at, event.at)


_FOLDS: dict[type, Callable[[Any, JobState], None]] = {}


@singledispatch
def fold(event: Any, job: JobState) -> None:
    """Events that move the job to a fixed status set it; others only advance the version."""
    if (status := STATUS_OF.get(type(event))) is not None:
        job.status = status.value


@fold.register
def _created(event: J.Created, job: JobState) -> None:
    """Nothing to add: the state was made from it (JobState.created)."""


@fold.register
def _configured(event: J.Configured, job: JobState) -> None:
    job.status, job.preset, job.gpu_tier = S.CONFIGURED.value, event.preset, event.gpu_tier
    job.gpu_type = event.gpu_type
    job.hourly_rate, job.estimated_duration_hours = event.hourly_rate, event.estimated_duration_hours
    job.estimated_cost_min, job.estimated_cost_max = event.estimated_cost_min, event.estimated_cost_max


@fold.register
def _renamed(event: J.Renamed, job: JobState) -> None:
    job.name, job.text_changed = event.name, True


@fold.register
def _metadata(event: J.MetadataUpdated, job: JobState) -> None:
    job.description, job.tags = event.description, list(event.tags)
    job.client, job.project = event.client, event.project
    job.text_changed = True


@fold.register
def _note(event: J.NoteAdded, job: JobState) -> None:
    job.notes.append({"at": event.at.isoformat(), "author": event.author, "text": event.text})
    job.text_changed = True


@fold.register
def _queued(event: J.Queued, job: JobState) -> None:
    job.status, job.queued_at = S.QUEUED.value, event.at


@fold.register
def _promoted(event: J.Promoted, job: JobState) -> None:
    job.promoted_at = event.at


@fold.register
def _gpu_tier_changed(event: J.GpuTierChanged, job: JobState) -> None:
    job.gpu_tier, job.hourly_rate, job.awaiting_gpu_decision = event.gpu_tier, event.hourly_rate, False
    job.estimated_cost_min, job.estimated_cost_max = event.estimated_cost_min, event.estimated_cost_max


@fold.register
def _timed_out(event: J.ProvisioningTimedOut, job: JobState) -> None:
    job.awaiting_gpu_decision = True


@fold.register
def _provisioning(event: J.ProvisioningStarted, job: JobState) -> None:
    job.status, job.attempt, job.gpu_tier = S.PROVISIONING.value, event.attempt, event.gpu_tier
    job.close_stages(event.at, "failed")  # nothing open unless an end was never reported
    job.open_stage(event.attempt, S.PROVISIONING.value, event.at)


@fold.register
def _provisioning_failed(event: J.ProvisioningFailed, job: JobState) -> None:
    job.status = S.QUEUED_WAITING_FOR_GPU.value
    job.close_stages(event.at, "failed")


@fold.register
def _pod_started(event: J.PodStarted, job: JobState) -> None:
    job.pods[event.pod_id] = PodLifetime(event.pod_id, event.hourly_rate, event.at)
    job.started_at = job.started_at or event.at
    if event.attempt == job.attempt:
        job.current_pod = event.pod_id
    job.recost(event.at)


@fold.register
def _pod_stopped(event: J.PodStopped, job: JobState) -> None:
    job.pods[event.pod_id] = job.pods[event.pod_id].with_(stopped_at=event.at)
    job.recost(event.at)


@fold.register
def _stage_changed(event: J.StageChanged, job: JobState) -> None:
    job.status = event.stage
    job.close_stages(event.at, "completed")
    job.open_stage(event.attempt, event.stage, event.at)
    if event.stage == S.TRAINING:
        job.mark_current_pod("training_started_at", event.at)


@fold.register
def _progress(event: J.ProgressRecorded, job: JobState) -> None:
    job.step, job.total_steps, job.epoch, job.loss = event.step, event.total_steps, event.epoch, event.loss


@fold.register
def _checkpoint(event: J.CheckpointSaved, job: JobState) -> None:
    job.checkpoint_step = event.step
    job.mark_current_pod("last_checkpoint_at", event.at, first_only=False)


@fold.register
def _epoch(event: J.EpochCompleted, job: JobState) -> None:
    if event.validation_loss is not None:
        job.validation_loss = event.validation_loss


@fold.register
def _interrupted(event: J.Interrupted, job: JobState) -> None:
    job.status, job.interruptions = S.INTERRUPTED.value, job.interruptions + 1
    job.mark_current_pod("interrupted_at", event.at)
    job.close_stages(event.at, "interrupted")
    number = job.interruptions
    job.interrupted[number] = Interruption(number, job.attempt, event.step, event.reason, event.at)
    job.touch("interruption", number)


@fold.register
def _paused(event: J.Paused, job: JobState) -> None:
    """As in the aggregate: the pod's work since its last checkpoint is lost, its stop time setup."""
    job.status, job.step = S.PAUSED.value, max(job.step, event.step)
    job.mark_current_pod("interrupted_at", event.at)
    job.close_stages(event.at, "paused")


@fold.register
def _recovery(event: J.RecoveryStarted, job: JobState) -> None:
    job.status = S.RECOVERING.value
    for interruption in job.open_interruptions():
        if interruption.recovery_started_at is None:
            interruption.recovery_started_at = event.at
            interruption.checkpoint_step = job.checkpoint_step if event.from_checkpoint else None
        interruption.recovery_attempt = event.recovery_attempt
        job.touch("interruption", interruption.number)


@fold.register
def _resumed(event: J.Resumed, job: JobState) -> None:
    """The domain counts the downtime from the first of the open interruptions; each row keeps its own."""
    job.downtime_seconds += event.downtime_seconds
    for interruption in job.open_interruptions():
        interruption.resumed_at = event.at
        interruption.downtime_seconds = seconds_between(interruption.at, event.at)
        job.touch("interruption", interruption.number)


@fold.register
def _completed(event: J.Completed, job: JobState) -> None:
    loss = event.metrics.get("final_loss")
    job.status, job.ended_at = S.COMPLETED.value, event.at
    job.final_loss = float(loss) if isinstance(loss, int | float) else job.loss
    job.close_stages(event.at, "completed")


@fold.register
def _failed(event: J.Failed, job: JobState) -> None:
    job.status, job.ended_at = S.FAILED.value, event.at
    job.failure_type, job.failure_message = event.failure_type, event.message
    job.close_stages(event.at, "failed")


@fold.register
def _cancelled(event: J.Cancelled, job: JobState) -> None:
    job.status, job.ended_at = S.CANCELLED.value, event.at
    job.cancellation = {"reason": event.reason, "notes": event.notes, "actor": event.actor}
    job.close_stages(event.at, "cancelled")


@fold.register
def _suites(event: J.SuitesAttached, job: JobState) -> None:
    job.suites = quality.suites(event)


@fold.register
def _evaluation_requested(event: J.EvaluationRequested, job: JobState) -> None:
    job.evaluates = event.evaluates


@fold.register
def _evaluation_progressed(event: J.EvaluationProgressed, job: JobState) -> None:
    job.evaluation_progress = {"part": event.part, "done": event.done, "total": event.total}


@fold.register
def _evaluated(event: J.Evaluated, job: JobState) -> None:
    quality.evaluated(event, job)


@fold.register
def _evaluation_failed(event: J.EvaluationFailed, job: JobState) -> None:
    job.evaluation_failure, job.evaluation_progress = event.reason, None


@fold.register
def _judged(event: J.Judged, job: JobState) -> None:
    quality.judged(event, job)


@fold.register
def _judging_charged(event: J.JudgingCharged, job: JobState) -> None:
    quality.judging_charged(event, job)


@fold.register
def _delivery_overridden(event: J.DeliveryOverridden, job: JobState) -> None:
    job.quality_overridden = True
    job.delivery_override = {"actor": event.actor, "justification": event.justification, "outcome": event.outcome,
                             "at": event.at.isoformat()}
