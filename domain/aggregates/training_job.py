"""TrainingJob: one fine-tuning run, from creation to its end state, with its cost ledger."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.aggregates.budget import PermissionDeniedError
from domain.cost_ledger import LedgerTotals, PodLifetime, ledger, seconds_between
from domain.job_metadata import (
    InvalidJobError,
    clean_description,
    clean_label,
    clean_name,
    clean_note,
    clean_tags,
)
from domain.job_status import (
    NOT_STARTED,
    STAGES,
    TERMINAL,
    CancelReason,
    FailureType,
    JobStatus,
    can_move,
)
from domain.values import ArtifactRef

NO_GPU_TIMEOUT_MESSAGE = "Still no spot GPU available. Switch to on-demand or cancel?"  # FR3.1.3
ADAPTER_DELETE_REASON_MIN = 10  # FR4.1.2: deleting an adapter "requires confirmation, creates audit log entry"

S = JobStatus


class TrainingJob(Aggregate):
    """A training job. Explicit TOPICs keep stored events loadable across renames. Commands from
    users raise on an illegal move; telemetry commands ignore stale or repeated reports."""

    TOPIC = "TrainingJob"

    class Created(Aggregate.Created):
        TOPIC = "TrainingJob.Created"
        name: str
        training_file: ArtifactRef
        file_name: str
        conversation_count: int
        pair_count: int
        created_by: str
        description: str
        tags: list[str]
        client: str | None
        project: str | None
        retry_of: UUID | None
        retry_number: int
        resumed_from: UUID | None
        resume_checkpoint: ArtifactRef | None
        at: datetime

    class Configured(Aggregate.Event):
        TOPIC = "TrainingJob.Configured"
        preset: str
        hyperparameters: dict[str, Any]
        gpu_tier: str
        gpu_type: str
        hourly_rate: Decimal
        estimated_duration_hours: Decimal
        estimated_cost_min: Decimal
        estimated_cost_max: Decimal
        estimation_algorithm: str
        estimation_confidence: Decimal | None
        at: datetime

    class Renamed(Aggregate.Event):
        TOPIC = "TrainingJob.Renamed"
        name: str
        at: datetime

    class MetadataUpdated(Aggregate.Event):
        TOPIC = "TrainingJob.MetadataUpdated"
        description: str
        tags: list[str]
        client: str | None
        project: str | None
        at: datetime

    class NoteAdded(Aggregate.Event):
        TOPIC = "TrainingJob.NoteAdded"
        text: str
        author: str
        at: datetime

    class Queued(Aggregate.Event):
        TOPIC = "TrainingJob.Queued"
        at: datetime

    class ProvisioningStarted(Aggregate.Event):
        TOPIC = "TrainingJob.ProvisioningStarted"
        attempt: int
        gpu_tier: str
        at: datetime

    class ProvisioningFailed(Aggregate.Event):
        TOPIC = "TrainingJob.ProvisioningFailed"
        attempt: int
        reason: str
        at: datetime

    class PodStarted(Aggregate.Event):
        TOPIC = "TrainingJob.PodStarted"
        pod_id: str
        attempt: int
        hourly_rate: Decimal
        at: datetime

    class PodStopped(Aggregate.Event):
        TOPIC = "TrainingJob.PodStopped"
        pod_id: str
        at: datetime

    class StageChanged(Aggregate.Event):
        TOPIC = "TrainingJob.StageChanged"
        stage: str
        attempt: int
        at: datetime

    class ProgressRecorded(Aggregate.Event):
        TOPIC = "TrainingJob.ProgressRecorded"
        step: int
        total_steps: int
        epoch: float
        loss: float | None
        at: datetime

    class CheckpointSaved(Aggregate.Event):
        TOPIC = "TrainingJob.CheckpointSaved"
        step: int
        checkpoint: ArtifactRef
        at: datetime

    class EpochCompleted(Aggregate.Event):
        TOPIC = "TrainingJob.EpochCompleted"
        epoch: int
        validation_loss: float | None
        at: datetime

    class Interrupted(Aggregate.Event):
        TOPIC = "TrainingJob.Interrupted"
        reason: str
        step: int
        at: datetime

    class RecoveryStarted(Aggregate.Event):
        TOPIC = "TrainingJob.RecoveryStarted"
        recovery_attempt: int
        from_checkpoint: ArtifactRef | None
        at: datetime

    class Resumed(Aggregate.Event):
        TOPIC = "TrainingJob.Resumed"
        downtime_seconds: Decimal
        at: datetime

    class Completed(Aggregate.Event):
        TOPIC = "TrainingJob.Completed"
        adapter: ArtifactRef
        metrics: dict[str, Any]
        at: datetime

    class Failed(Aggregate.Event):
        TOPIC = "TrainingJob.Failed"
        failure_type: str
        message: str
        details: dict[str, Any]
        at: datetime

    class Cancelled(Aggregate.Event):
        TOPIC = "TrainingJob.Cancelled"
        reason: str
        notes: str
        actor: str
        at: datetime

    class ProvisioningTimedOut(Aggregate.Event):
        """No GPU within the retry window (FR3.1.3): the job waits for its owner to switch or cancel."""
        TOPIC = "TrainingJob.ProvisioningTimedOut"
        waited_seconds: Decimal
        message: str
        at: datetime

    class GpuTierChanged(Aggregate.Event):
        """Switched (to on-demand) while waiting for a GPU; the estimate follows the new rate."""
        TOPIC = "TrainingJob.GpuTierChanged"
        gpu_tier: str
        hourly_rate: Decimal
        estimated_cost_min: Decimal
        estimated_cost_max: Decimal
        actor: str
        at: datetime

    class MetricsExported(Aggregate.Event):
        """An export of the job's data (FR4.2.1's "track export count for audit trail")."""
        TOPIC = "TrainingJob.MetricsExported"
        kind: str
        actor: str
        at: datetime

    class AdapterDeleted(Aggregate.Event):
        """FR4.1.2 "Option to delete adapters (free up storage)": the adapter's file is to be removed
        from the object store; the record of what it was stays."""
        TOPIC = "TrainingJob.AdapterDeleted"
        adapter: ArtifactRef
        actor: str
        reason: str
        at: datetime

    class Promoted(Aggregate.Event):
        """Moved to the front of the queue by a manager (FR2.3.2)."""
        TOPIC = "TrainingJob.Promoted"
        actor: str
        at: datetime

    # --- creation and configuration (user commands) ---------------------------------------

    @classmethod
    def create(cls, job_id: UUID, *, name: str, training_file: ArtifactRef, file_name: str,
               conversation_count: int, pair_count: int, created_by: str, at: datetime,
               description: str | None = None, tags: list[str] | None = None, client: str | None = None,
               project: str | None = None, retry_of: UUID | None = None, retry_number: int = 0,
               resumed_from: UUID | None = None, resume_checkpoint: ArtifactRef | None = None) -> TrainingJob:
        return cls._create(
            cls.Created, id=job_id, name=clean_name(name), training_file=training_file, file_name=file_name,
            conversation_count=conversation_count, pair_count=pair_count, created_by=created_by,
            description=clean_description(description), tags=list(clean_tags(tags)),
            client=clean_label(client, "Client"), project=clean_label(project, "Project"),
            retry_of=retry_of, retry_number=retry_number, resumed_from=resumed_from,
            resume_checkpoint=resume_checkpoint, at=at,
        )

    @event(Created)
    def __init__(self, name: str, training_file: ArtifactRef, file_name: str, conversation_count: int,
                 pair_count: int, created_by: str, description: str, tags: list[str], client: str | None,
                 project: str | None, retry_of: UUID | None, retry_number: int, resumed_from: UUID | None,
                 resume_checkpoint: ArtifactRef | None, at: datetime) -> None:
        self.name, self.training_file, self.file_name = name, training_file, file_name
        self.conversation_count, self.pair_count = conversation_count, pair_count
        self.created_by, self.created_at, self.updated_at = created_by, at, at
        self.description, self.tags, self.client, self.project = description, list(tags), client, project
        self.retry_of, self.retry_number = retry_of, retry_number
        self.resumed_from, self.resume_checkpoint = resumed_from, resume_checkpoint
        self.status = S.PENDING_CONFIGURATION
        self.notes: list[tuple[datetime, str, str]] = []
        self.configuration: dict[str, Any] | None = None
        self.attempt = 0
        self.pods: dict[str, PodLifetime] = {}
        self.attempt_pods: dict[int, str] = {}
        self.current_pod: str | None = None
        self.last_step = self.total_steps = 0
        self.last_epoch = 0
        self.last_loss: float | None = None
        self.latest_checkpoint: ArtifactRef | None = resume_checkpoint
        self.last_checkpoint_step = 0
        self.interruptions = 0
        self.downtime_seconds = Decimal(0)
        self.interrupted_at: datetime | None = None
        self.attempt_interrupted_at: datetime | None = None
        self.recovery_attempts = 0
        self.failure: dict[str, Any] | None = None
        self.cancellation: dict[str, str] | None = None
        self.adapter: ArtifactRef | None = None
        self.final_metrics: dict[str, Any] = {}
        self.queued_at: datetime | None = None
        self.promoted_at: datetime | None = None
        self.awaiting_gpu_decision = False
        self.exports = 0
        self.adapter_deleted: dict[str, Any] | None = None

    def configure(self, *, preset: str, hyperparameters: dict[str, Any], gpu_tier: str, gpu_type: str,
                  hourly_rate: Decimal, estimated_duration_hours: Decimal, estimated_cost_min: Decimal,
                  estimated_cost_max: Decimal, estimation_algorithm: str, estimation_confidence: Decimal | None,
                  at: datetime) -> None:
        self._check_move(S.CONFIGURED)
        if estimated_cost_min < 0 or estimated_cost_max < estimated_cost_min or hourly_rate <= 0:
            raise InvalidJobError("cost estimate must satisfy 0 ≤ min ≤ max and the hourly rate must be positive")
        self._configured(preset=preset, hyperparameters=dict(hyperparameters), gpu_tier=gpu_tier,
                         gpu_type=gpu_type, hourly_rate=hourly_rate,
                         estimated_duration_hours=estimated_duration_hours,
                         estimated_cost_min=estimated_cost_min, estimated_cost_max=estimated_cost_max,
                         estimation_algorithm=estimation_algorithm,
                         estimation_confidence=estimation_confidence, at=at)

    @event(Configured)
    def _configured(self, preset: str, hyperparameters: dict[str, Any], gpu_tier: str, gpu_type: str,
                    hourly_rate: Decimal, estimated_duration_hours: Decimal, estimated_cost_min: Decimal,
                    estimated_cost_max: Decimal, estimation_algorithm: str, estimation_confidence: Decimal | None,
                    at: datetime) -> None:
        self.configuration = dict(
            preset=preset, hyperparameters=hyperparameters, gpu_tier=gpu_tier, gpu_type=gpu_type,
            hourly_rate=hourly_rate, estimated_duration_hours=estimated_duration_hours,
            estimated_cost_min=estimated_cost_min, estimated_cost_max=estimated_cost_max,
            estimation_algorithm=estimation_algorithm, estimation_confidence=estimation_confidence)
        self.status, self.updated_at = S.CONFIGURED, at

    def rename(self, name: str, at: datetime) -> None:
        if self.status not in NOT_STARTED:
            raise IllegalTransitionError("The job name cannot be changed once the job has started")
        name = clean_name(name)
        if name != self.name:
            self._renamed(name=name, at=at)

    @event(Renamed)
    def _renamed(self, name: str, at: datetime) -> None:
        self.name, self.updated_at = name, at

    def update_metadata(self, *, description: str | None, tags: list[str] | None, client: str | None,
                        project: str | None, at: datetime) -> None:
        description, cleaned_tags = clean_description(description), list(clean_tags(tags))
        client, project = clean_label(client, "Client"), clean_label(project, "Project")
        if (description, cleaned_tags, client, project) != (self.description, self.tags, self.client, self.project):
            self._metadata_updated(description=description, tags=cleaned_tags, client=client, project=project, at=at)

    @event(MetadataUpdated)
    def _metadata_updated(self, description: str, tags: list[str], client: str | None,
                          project: str | None, at: datetime) -> None:
        self.description, self.tags, self.client, self.project = description, list(tags), client, project
        self.updated_at = at

    def add_note(self, text: str, author: str, at: datetime) -> None:
        self._note_added(text=clean_note(text), author=author, at=at)

    @event(NoteAdded)
    def _note_added(self, text: str, author: str, at: datetime) -> None:
        self.notes.append((at, author, text))
        self.updated_at = at

    def queue(self, at: datetime) -> None:
        self._check_move(S.QUEUED)
        self._queued(at=at)

    @event(Queued)
    def _queued(self, at: datetime) -> None:
        self.status, self.queued_at, self.updated_at = S.QUEUED, at, at

    # --- provisioning and pods (reactor commands) ------------------------------------------

    def start_provisioning(self, gpu_tier: str, at: datetime) -> int:
        """Begins a new pod attempt; returns its number (telemetry of older attempts is ignored)."""
        self._check_move(S.PROVISIONING)
        self._provisioning_started(attempt=self.attempt + 1, gpu_tier=gpu_tier, at=at)
        return self.attempt

    @event(ProvisioningStarted)
    def _provisioning_started(self, attempt: int, gpu_tier: str, at: datetime) -> None:
        self.attempt, self.status, self.updated_at = attempt, S.PROVISIONING, at
        if self.configuration is not None:
            self.configuration = {**self.configuration, "gpu_tier": gpu_tier}

    def provisioning_failed(self, attempt: int, reason: str, at: datetime) -> None:
        """No capacity (or another provisioning error): the job waits for the next retry."""
        if attempt != self.attempt or self.status != S.PROVISIONING:
            return
        self._provisioning_failed(attempt=attempt, reason=reason, at=at)

    @event(ProvisioningFailed)
    def _provisioning_failed(self, attempt: int, reason: str, at: datetime) -> None:
        self.status, self.updated_at = S.QUEUED_WAITING_FOR_GPU, at

    def provisioning_timed_out(self, waited_seconds: Decimal, at: datetime) -> None:
        if self.status != S.QUEUED_WAITING_FOR_GPU or self.awaiting_gpu_decision:
            return
        self._provisioning_timed_out(waited_seconds=waited_seconds, message=NO_GPU_TIMEOUT_MESSAGE, at=at)

    @event(ProvisioningTimedOut)
    def _provisioning_timed_out(self, waited_seconds: Decimal, message: str, at: datetime) -> None:
        self.awaiting_gpu_decision, self.updated_at = True, at

    def change_gpu_tier(self, gpu_tier: str, hourly_rate: Decimal, estimated_cost_min: Decimal,
                        estimated_cost_max: Decimal, actor: str, at: datetime) -> None:
        """Only before a pod runs: a job waiting in the queue or for a GPU."""
        if self.status not in (S.QUEUED, S.QUEUED_WAITING_FOR_GPU):
            raise InvalidJobError(f"The GPU can be changed only while the job waits (it is {self.status.value})")
        if self.configuration is None or self.configuration["gpu_tier"] == gpu_tier:
            return
        self._gpu_tier_changed(gpu_tier=gpu_tier, hourly_rate=hourly_rate, estimated_cost_min=estimated_cost_min,
                               estimated_cost_max=estimated_cost_max, actor=actor, at=at)

    @event(GpuTierChanged)
    def _gpu_tier_changed(self, gpu_tier: str, hourly_rate: Decimal, estimated_cost_min: Decimal,
                          estimated_cost_max: Decimal, actor: str, at: datetime) -> None:
        assert self.configuration is not None  # change_gpu_tier records this only for a configured job
        self.configuration = {**self.configuration, "gpu_tier": gpu_tier, "hourly_rate": hourly_rate,
                              "estimated_cost_min": estimated_cost_min, "estimated_cost_max": estimated_cost_max}
        self.awaiting_gpu_decision, self.updated_at = False, at

    def promote(self, actor: str, role: str, at: datetime) -> None:
        if role not in ("manager", "admin"):
            raise PermissionDeniedError("Only a manager or admin may move a job to the front of the queue")
        if self.status != S.QUEUED:
            raise InvalidJobError(f"Only a queued job can be promoted (this one is {self.status.value})")
        self._promoted(actor=actor, at=at)

    @event(Promoted)
    def _promoted(self, actor: str, at: datetime) -> None:
        self.promoted_at, self.updated_at = at, at

    def delete_adapter(self, actor: str, role: str, reason: str, at: datetime) -> None:
        """Its creator, a manager or an admin deletes the adapter with a reason (10+ characters);
        deleting it again changes nothing."""
        if self.adapter is None:
            raise InvalidJobError("This job has no adapter to delete")
        if self.adapter_deleted is not None:
            return
        if actor != self.created_by and role not in ("manager", "admin"):
            raise PermissionDeniedError("Only the job's creator, a manager or an admin may delete its adapter")
        if len(reason.strip()) < ADAPTER_DELETE_REASON_MIN:
            raise InvalidJobError(f"Give a reason of at least {ADAPTER_DELETE_REASON_MIN} characters")
        self._adapter_deleted(adapter=self.adapter, actor=actor, reason=reason.strip(), at=at)

    @event(AdapterDeleted)
    def _adapter_deleted(self, adapter: ArtifactRef, actor: str, reason: str, at: datetime) -> None:
        self.adapter_deleted = {"actor": actor, "reason": reason, "at": at}

    def record_export(self, kind: str, actor: str, at: datetime) -> None:
        """Any time, in any state: an audit record, it changes nothing else."""
        self._metrics_exported(kind=kind, actor=actor, at=at)

    @event(MetricsExported)
    def _metrics_exported(self, kind: str, actor: str, at: datetime) -> None:
        self.exports += 1

    def pod_started(self, pod_id: str, attempt: int, hourly_rate: Decimal, at: datetime) -> None:
        if pod_id in self.pods:
            return
        self._pod_started(pod_id=pod_id, attempt=attempt, hourly_rate=hourly_rate, at=at)

    @event(PodStarted)
    def _pod_started(self, pod_id: str, attempt: int, hourly_rate: Decimal, at: datetime) -> None:
        self.pods[pod_id] = PodLifetime(pod_id, hourly_rate, at)
        self.attempt_pods[attempt] = pod_id
        if attempt == self.attempt:
            self.current_pod = pod_id

    def pod_stopped(self, pod_id: str, at: datetime) -> None:
        pod = self.pods.get(pod_id)
        if pod is None or pod.stopped_at is not None:
            return
        self._pod_stopped(pod_id=pod_id, at=max(at, pod.started_at))

    @event(PodStopped)
    def _pod_stopped(self, pod_id: str, at: datetime) -> None:
        self.pods[pod_id] = self.pods[pod_id].with_(stopped_at=at)

    # --- telemetry milestones (idempotent) -------------------------------------------------

    def change_stage(self, stage: JobStatus, attempt: int, at: datetime) -> None:
        if stage not in STAGES or attempt != self.attempt or not can_move(self.status, stage):
            return
        if self.status in STAGES and STAGES.index(stage) <= STAGES.index(self.status):
            return
        if stage == S.TRAINING and self.interrupted_at is not None:
            self._resumed(downtime_seconds=seconds_between(self.interrupted_at, at), at=at)
        self._stage_changed(stage=stage.value, attempt=attempt, at=at)

    @event(StageChanged)
    def _stage_changed(self, stage: str, attempt: int, at: datetime) -> None:
        self.status, self.updated_at = S(stage), at
        pod = self.pods.get(self.current_pod or "")
        if stage == S.TRAINING and pod is not None and pod.training_started_at is None:
            self.pods[pod.pod_id] = pod.with_(training_started_at=at)

    @event(Resumed)
    def _resumed(self, downtime_seconds: Decimal, at: datetime) -> None:
        self.downtime_seconds += downtime_seconds
        self.interrupted_at = None
        self.recovery_attempts = 0

    def record_progress(self, step: int, total_steps: int, epoch: float, loss: float | None,
                        attempt: int, at: datetime) -> None:
        if attempt != self.attempt or step <= self.last_step or self.status in TERMINAL or self._after_interruption(at):
            return
        self._progress_recorded(step=step, total_steps=total_steps, epoch=epoch, loss=loss, at=at)

    @event(ProgressRecorded)
    def _progress_recorded(self, step: int, total_steps: int, epoch: float, loss: float | None,
                           at: datetime) -> None:
        self.last_step, self.total_steps, self.last_loss, self.updated_at = step, total_steps, loss, at

    def record_checkpoint(self, step: int, checkpoint: ArtifactRef, attempt: int, at: datetime) -> None:
        if (attempt != self.attempt or step <= self.last_checkpoint_step or self.status in TERMINAL
                or self._after_interruption(at)):
            return
        self._checkpoint_saved(step=step, checkpoint=checkpoint, at=at)

    @event(CheckpointSaved)
    def _checkpoint_saved(self, step: int, checkpoint: ArtifactRef, at: datetime) -> None:
        self.last_checkpoint_step, self.latest_checkpoint, self.updated_at = step, checkpoint, at
        pod = self.pods.get(self.current_pod or "")
        if pod is not None:
            self.pods[pod.pod_id] = pod.with_(last_checkpoint_at=at)

    def complete_epoch(self, epoch: int, validation_loss: float | None, attempt: int, at: datetime) -> None:
        if (attempt != self.attempt or epoch <= self.last_epoch or self.status in TERMINAL
                or self._after_interruption(at)):
            return
        self._epoch_completed(epoch=epoch, validation_loss=validation_loss, at=at)

    @event(EpochCompleted)
    def _epoch_completed(self, epoch: int, validation_loss: float | None, at: datetime) -> None:
        self.last_epoch, self.updated_at = epoch, at

    def interrupt(self, reason: str, step: int, attempt: int, at: datetime) -> bool:
        """The pod went away (preempted, killed, lost). Returns whether this changed anything."""
        if attempt != self.attempt or not can_move(self.status, S.INTERRUPTED) or self.status == S.INTERRUPTED:
            return False
        self._interrupted(reason=reason, step=step, at=at)
        return True

    def _after_interruption(self, at: datetime) -> bool:
        """Telemetry the interrupted attempt sent after its interruption was recorded (a pod that
        kept training while the control plane could not hear it): recording it would contradict
        the interruption, so it is ignored; what it did before then is late news, kept."""
        interrupted = self.attempt_interrupted_at
        return self.status in (S.INTERRUPTED, S.RECOVERING) and interrupted is not None and at > interrupted

    @event(Interrupted)
    def _interrupted(self, reason: str, step: int, at: datetime) -> None:
        self.status, self.updated_at, self.attempt_interrupted_at = S.INTERRUPTED, at, at
        self.interruptions += 1
        if self.interrupted_at is None:
            self.interrupted_at = at
        pod = self.pods.get(self.current_pod or "")
        if pod is not None and pod.interrupted_at is None:
            self.pods[pod.pod_id] = pod.with_(interrupted_at=at)

    def begin_recovery(self, at: datetime, max_attempts: int = 3) -> bool:
        """Starts a recovery, or fails the job as recovery_exhausted after `max_attempts` failed
        recoveries in a row. Returns whether a recovery started."""
        self._check_move(S.RECOVERING)
        if self.recovery_attempts >= max_attempts:
            self.fail(FailureType.RECOVERY_EXHAUSTED,
                      f"Recovery failed {self.recovery_attempts} times in a row", {}, at)
            return False
        self._recovery_started(recovery_attempt=self.recovery_attempts + 1,
                               from_checkpoint=self.latest_checkpoint, at=at)
        return True

    @event(RecoveryStarted)
    def _recovery_started(self, recovery_attempt: int, from_checkpoint: ArtifactRef | None, at: datetime) -> None:
        self.status, self.recovery_attempts, self.updated_at = S.RECOVERING, recovery_attempt, at

    # --- endings ----------------------------------------------------------------------------

    def complete(self, adapter: ArtifactRef, metrics: dict[str, Any], attempt: int, at: datetime) -> None:
        """The current attempt's adapter is done. Wins over an interruption reported meanwhile (a
        false alarm, or a pod lost right after its last upload); ignored once the job has ended."""
        if self.status in TERMINAL or attempt != self.attempt:
            return
        if self.status not in (S.INTERRUPTED, S.RECOVERING):
            self._check_move(S.COMPLETED)
        self._completed(adapter=adapter, metrics=dict(metrics), at=at)

    @event(Completed)
    def _completed(self, adapter: ArtifactRef, metrics: dict[str, Any], at: datetime) -> None:
        self.status, self.adapter, self.final_metrics, self.updated_at = S.COMPLETED, adapter, metrics, at

    def fail(self, failure_type: FailureType, message: str, details: dict[str, Any], at: datetime) -> None:
        if self.status in TERMINAL:
            return
        self._check_move(S.FAILED)
        self._failed(failure_type=FailureType(failure_type).value, message=message, details=dict(details), at=at)

    @event(Failed)
    def _failed(self, failure_type: str, message: str, details: dict[str, Any], at: datetime) -> None:
        self.status, self.updated_at = S.FAILED, at
        self.failure = {"type": failure_type, "message": message, "details": details}

    def cancel(self, reason: CancelReason, notes: str, actor: str, at: datetime) -> None:
        if self.status == S.CANCELLED:
            return
        self._check_move(S.CANCELLED)
        self._cancelled(reason=CancelReason(reason).value, notes=notes.strip()[:2000], actor=actor, at=at)

    @event(Cancelled)
    def _cancelled(self, reason: str, notes: str, actor: str, at: datetime) -> None:
        self.status, self.updated_at = S.CANCELLED, at
        self.cancellation = {"reason": reason, "notes": notes, "actor": actor}

    # --- queries ----------------------------------------------------------------------------

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def estimated_cost_max(self) -> Decimal:
        return self.configuration["estimated_cost_max"] if self.configuration else Decimal(0)

    def cost(self, now: datetime) -> LedgerTotals:
        """Spend so far: finished pods in full, running ones up to `now`."""
        return ledger(tuple(self.pods.values()), now)

    def running_pods(self) -> list[str]:
        return [p.pod_id for p in self.pods.values() if p.stopped_at is None]

    def _check_move(self, target: JobStatus) -> None:
        if not can_move(self.status, target):
            raise IllegalTransitionError(f"A {self.status.value} job cannot become {target.value}")


class IllegalTransitionError(Exception):
    """The command is not allowed in the job's current state; nothing was changed."""
