"""TrainingJob: one fine-tuning run, from creation to its end state, with its cost ledger."""

from __future__ import annotations

from collections.abc import Mapping
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
    clean_labels,
    clean_name,
    clean_note,
    clean_suffix,
    clean_tags,
)
from domain.job_status import (
    NOT_STARTED,
    PAUSABLE,
    STAGES,
    TERMINAL,
    CancelReason,
    FailureType,
    JobStatus,
    can_move,
)
from domain.quality.delivery import SuiteRef, block_reason, check_override
from domain.values import ArtifactRef

NO_GPU_TIMEOUT_MESSAGE = "Still no spot GPU available. Switch to on-demand or cancel?"  # FR3.1.3
ADAPTER_DELETE_REASON_MIN = 10  # FR4.1.2: deleting an adapter "requires confirmation, creates audit log entry"

S = JobStatus


def may_steer(actor: str, role: str, created_by: str) -> bool:
    """Who may pause or resume a job (FR2.2.2): its creator, a manager or an admin."""
    return actor == created_by or role in ("manager", "admin")


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
        # Added later, so events stored before read them from these defaults (class attributes).
        labels: dict[str, str] | None = None   # free key-value pairs (OpenAI's `metadata`)
        suffix: str | None = None               # the adapter's model-name suffix (OpenAI's `suffix`)
        base_model: str | None = None           # the base model asked for (OpenAI's `model`); None: not said
        validation_file: ArtifactRef | None = None  # validated on instead of a hold-out (OpenAI's `validation_file`)

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

    class PauseRequested(Aggregate.Event):
        """FR2.2.2: its pod is asked to stop (SIGTERM); the agent saves a checkpoint at the next step
        boundary and exits, and the job is then Paused."""
        TOPIC = "TrainingJob.PauseRequested"
        actor: str
        at: datetime

    class Paused(Aggregate.Event):
        """The pausing job's pod has gone: no pod, no queue slot, no spend; the budget reservation is
        kept. `checkpoint_step` is where a resume continues from (0: from the start)."""
        TOPIC = "TrainingJob.Paused"
        step: int
        checkpoint_step: int
        reason: str
        at: datetime

    class ResumeRequested(Aggregate.Event):
        """A paused job is queued again; its next pod continues from the latest checkpoint."""
        TOPIC = "TrainingJob.ResumeRequested"
        actor: str
        at: datetime

    class DataMeasured(Aggregate.Event):
        """The pod measured the examples with the job's tokenizer and chat template and chose the sequence length;
        `truncated_*` say what the cut removed (never a silent cut), `masked_share` the share of the kept tokens
        the loss skips (system, user and context: it is computed on the assistant's target only)."""
        TOPIC = "TrainingJob.DataMeasured"
        attempt: int
        examples: int
        longest: int
        seq_len: int
        decided_by: str
        truncated_examples: int
        truncated_tokens: int
        most_cut: int
        masked_share: float
        at: datetime

    class MemoryGuarded(Aggregate.Event):
        """The pod's memory guard planned the step for its GPU with the shared memory model (domain/gpu_memory);
        `changes` are what it adjusted (the effective batch is kept), empty when the preset fitted as it was."""
        TOPIC = "TrainingJob.MemoryGuarded"
        attempt: int
        gpu_memory_gb: float
        estimate_gb: float
        micro_batch: int
        gradient_accumulation_steps: int
        gradient_checkpointing: bool
        seq_len: int
        changes: list[str]
        at: datetime

    # --- quality validation (FR6.1, FR6.3; docs/quality-validation.md) ------------------------

    class SuitesAttached(Aggregate.Event):
        """The suites its pod scores the adapter on: the shipped knowledge suite, client probes."""
        TOPIC = "TrainingJob.SuitesAttached"
        knowledge: SuiteRef | None
        probes: list[SuiteRef]
        at: datetime
        # Added later (FR6.2.1, FR6.4.1): the EI scenarios and the brand-voice rubric its pod generates replies for.
        ei: SuiteRef | None = None
        rubric: SuiteRef | None = None

    class EvaluationRequested(Aggregate.Event):
        """This job trains nothing: its pod evaluates another job's stored adapter."""
        TOPIC = "TrainingJob.EvaluationRequested"
        evaluates: UUID
        adapter: ArtifactRef
        actor: str
        at: datetime

    class EvaluationProgressed(Aggregate.Event):
        TOPIC = "TrainingJob.EvaluationProgressed"
        part: str
        done: int
        total: int
        at: datetime

    class Evaluated(Aggregate.Event):
        """Item-level results stored in the job's bucket (`results`, by digest) and the figures
        computed from them (domain.quality.results.summary); `evaluated_by`: the re-evaluation job
        whose pod scored this job's adapter (None: this job's own pod)."""
        TOPIC = "TrainingJob.Evaluated"
        results: ArtifactRef
        summary: dict[str, Any]
        attempt: int
        evaluated_by: UUID | None
        at: datetime

    class EvaluationFailed(Aggregate.Event):
        """The pod's results could not be read (missing, damaged, malformed): no figures recorded."""
        TOPIC = "TrainingJob.EvaluationFailed"
        results: ArtifactRef | None
        reason: str
        attempt: int
        at: datetime

    class DeliveryOverridden(Aggregate.Event):
        """A manager released an adapter the quality gate blocked, with a justification."""
        TOPIC = "TrainingJob.DeliveryOverridden"
        actor: str
        justification: str
        outcome: str
        results_sha256: str
        at: datetime

    class JudgingCharged(Aggregate.Event):
        """A model judge scored more of this job's generated replies (QualityReview `review_id`): the
        review's cost and tokens so far, charged to the job's budget line in the same save."""
        TOPIC = "TrainingJob.JudgingCharged"
        review_id: UUID
        cost: Decimal
        prompt_tokens: int
        completion_tokens: int
        items: int
        at: datetime

    class Judged(Aggregate.Event):
        """The generated replies of the current evaluation were scored (by the model judge, or by every
        item's reviewers): the evaluation's summary recomputed with those scores (FR6.2.1, FR6.2.2, FR6.4.1)."""
        TOPIC = "TrainingJob.Judged"
        review_id: UUID
        results_sha256: str
        summary: dict[str, Any]
        keeps_release: bool  # a manager's release of a block stands (the scores added no reason to block)
        completes: list[str]  # the sources (model, people) whose scores are complete for the first time
        at: datetime

    class ModelDownloaded(Aggregate.Event):
        """The agent fetched the base model's weights (or found them cached on the network volume):
        its own line of the setup cost (domain/cost_ledger.py)."""
        TOPIC = "TrainingJob.ModelDownloaded"
        pod_id: str
        attempt: int
        model: str
        seconds: Decimal
        size_bytes: int
        cached: bool
        at: datetime

    class BillingReconciled(Aggregate.Event):
        """The provider's own charges for one of the job's pods, read back after the pod ended
        (RunPod: GET /v2/billing/pods, hourly buckets of {start, end, amount})."""
        TOPIC = "TrainingJob.BillingReconciled"
        pod_id: str
        billed: Decimal
        buckets: list[dict[str, Any]]
        at: datetime

    # --- creation and configuration (user commands) ---------------------------------------

    @classmethod
    def create(cls, job_id: UUID, *, name: str, training_file: ArtifactRef, file_name: str,
               conversation_count: int, pair_count: int, created_by: str, at: datetime,
               description: str | None = None, tags: list[str] | None = None, client: str | None = None,
               project: str | None = None, retry_of: UUID | None = None, retry_number: int = 0,
               resumed_from: UUID | None = None, resume_checkpoint: ArtifactRef | None = None,
               labels: Mapping[str, str] | None = None, suffix: str | None = None,
               base_model: str | None = None, validation_file: ArtifactRef | None = None) -> TrainingJob:
        return cls._create(
            cls.Created, id=job_id, name=clean_name(name), training_file=training_file, file_name=file_name,
            conversation_count=conversation_count, pair_count=pair_count, created_by=created_by,
            description=clean_description(description), tags=list(clean_tags(tags)),
            client=clean_label(client, "Client"), project=clean_label(project, "Project"),
            retry_of=retry_of, retry_number=retry_number, resumed_from=resumed_from,
            resume_checkpoint=resume_checkpoint, at=at, labels=clean_labels(labels), suffix=clean_suffix(suffix),
            base_model=base_model, validation_file=validation_file,
        )

    @event(Created)
    def __init__(self, name: str, training_file: ArtifactRef, file_name: str, conversation_count: int,
                 pair_count: int, created_by: str, description: str, tags: list[str], client: str | None,
                 project: str | None, retry_of: UUID | None, retry_number: int, resumed_from: UUID | None,
                 resume_checkpoint: ArtifactRef | None, at: datetime, labels: dict[str, str] | None = None,
                 suffix: str | None = None, base_model: str | None = None,
                 validation_file: ArtifactRef | None = None) -> None:
        self.labels, self.suffix, self.base_model = dict(labels or {}), suffix, base_model
        self.validation_file = validation_file
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
        self.billed: dict[str, Decimal] = {}  # pod id → what the provider billed for it
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
        self.data_measured: dict[str, Any] | None = None  # the latest DataMeasured's figures
        self.memory_guard: dict[str, Any] | None = None  # the latest MemoryGuarded's figures
        self.knowledge_suite: SuiteRef | None = None
        self.probe_suites: list[SuiteRef] = []
        self.ei_suite: SuiteRef | None = None
        self.rubric: SuiteRef | None = None
        self.judging: dict[str, dict[str, Any]] = {}  # review id -> its judging cost and tokens so far
        self.evaluates: UUID | None = None
        self.evaluates_adapter: ArtifactRef | None = None
        self.evaluation: dict[str, Any] | None = None
        self.evaluation_digests: set[str] = set()
        self.evaluation_failure: dict[str, Any] | None = None
        self.evaluation_progress: dict[str, Any] | None = None
        self.delivery_override: dict[str, Any] | None = None
        self.pause: dict[str, Any] | None = None  # the latest pause: who asked, when, and where it stopped

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
        self.check_startable()
        self._check_move(S.QUEUED)
        self._queued(at=at)

    def check_startable(self) -> None:
        """A job starts once (FR1.3.2): started (queued at some time) or discarded, it says so."""
        if self.queued_at is not None:
            raise JobAlreadyStartedError(f"This job has already started (status: {self.status.value})")
        if self.status is S.CANCELLED:
            raise JobAlreadyStartedError("This job was cancelled before it started (status: cancelled):"
                                         " create a new job to train on its file")

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

    # --- pause and resume (FR2.2.2) ----------------------------------------------------------

    def request_pause(self, actor: str, role: str, at: datetime) -> None:
        """Its creator, a manager or an admin pauses a training job; asking again while it pauses
        changes nothing."""
        self._check_may_steer(actor, role, "pause")
        if self.status is S.PAUSING:
            return
        if self.status not in PAUSABLE:
            raise IllegalTransitionError(f"Only a training job can be paused (this one is {self.status.value})")
        self._pause_requested(actor=actor, at=at)

    @event(PauseRequested)
    def _pause_requested(self, actor: str, at: datetime) -> None:
        self.status, self.updated_at = S.PAUSING, at
        self.pause = {"actor": actor, "requested_at": at, "paused_at": None, "step": None, "checkpoint_step": None}

    def request_resume(self, actor: str, role: str, at: datetime) -> None:
        """Its creator, a manager or an admin queues a paused job again."""
        self._check_may_steer(actor, role, "resume")
        if self.status is not S.PAUSED:
            raise IllegalTransitionError(f"Only a paused job can be resumed (this one is {self.status.value})")
        self._resume_requested(actor=actor, at=at)

    @event(ResumeRequested)
    def _resume_requested(self, actor: str, at: datetime) -> None:
        self.status, self.updated_at = S.QUEUED, at

    def _check_may_steer(self, actor: str, role: str, verb: str) -> None:
        if not may_steer(actor, role, self.created_by):
            raise PermissionDeniedError(f"Only the job's creator, a manager or an admin may {verb} it")

    @event(Paused)
    def _paused(self, step: int, checkpoint_step: int, reason: str, at: datetime) -> None:
        self.status, self.updated_at, self.last_step = S.PAUSED, at, max(self.last_step, step)
        self.pause = {**(self.pause or {}), "paused_at": at, "step": step, "checkpoint_step": checkpoint_step}
        pod = self.pods.get(self.current_pod or "")
        if pod is not None and pod.interrupted_at is None:
            self.pods[pod.pod_id] = pod.with_(interrupted_at=at)

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

    def record_model_download(self, pod_id: str, attempt: int, model: str, seconds: Decimal, size_bytes: int,
                              cached: bool, at: datetime) -> None:
        """Once per pod (a redelivered report changes nothing)."""
        pod = self.pods.get(pod_id)
        if pod is None or pod.download_seconds or seconds < 0:
            return
        self._model_downloaded(pod_id=pod_id, attempt=attempt, model=model, seconds=seconds, size_bytes=size_bytes,
                               cached=cached, at=at)

    @event(ModelDownloaded)
    def _model_downloaded(self, pod_id: str, attempt: int, model: str, seconds: Decimal, size_bytes: int,
                          cached: bool, at: datetime) -> None:
        self.pods[pod_id] = self.pods[pod_id].with_(download_seconds=seconds)

    def reconcile_billing(self, pod_id: str, billed: Decimal, buckets: list[dict[str, Any]], at: datetime) -> None:
        """A stopped pod's bill as the provider reports it; recorded again only when it changed (a late
        charge), so a repeated read adds nothing."""
        pod = self.pods.get(pod_id)
        if pod is None or pod.stopped_at is None or self.billed.get(pod_id) == billed:
            return
        self._billing_reconciled(pod_id=pod_id, billed=billed, buckets=buckets, at=at)

    @event(BillingReconciled)
    def _billing_reconciled(self, pod_id: str, billed: Decimal, buckets: list[dict[str, Any]], at: datetime) -> None:
        self.billed[pod_id] = billed

    def billing_pending(self) -> list[str]:
        """Stopped pods whose bill has not been read back yet."""
        return [p.pod_id for p in self.pods.values() if p.stopped_at is not None and p.pod_id not in self.billed]

    # --- telemetry milestones (idempotent) -------------------------------------------------

    def change_stage(self, stage: JobStatus, attempt: int, at: datetime) -> None:
        if stage not in STAGES or attempt != self.attempt or not can_move(self.status, stage):
            return
        if self.status in STAGES and STAGES.index(stage) <= STAGES.index(self.status):
            return
        if self.interrupted_at is not None and (stage == S.TRAINING or (stage == S.EVALUATING and self.evaluates)):
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

    def record_data_measurement(self, attempt: int, at: datetime, **figures: Any) -> None:
        """The current attempt's measurement, when it differs from the last one recorded (a resumed attempt
        measures the same file the same way: nothing new to say)."""
        if attempt != self.attempt or self.status in TERMINAL or self._after_interruption(at):
            return
        if self.data_measured != figures:
            self._data_measured(attempt=attempt, at=at, **figures)

    @event(DataMeasured)
    def _data_measured(self, attempt: int, examples: int, longest: int, seq_len: int, decided_by: str,
                       truncated_examples: int, truncated_tokens: int, most_cut: int, masked_share: float,
                       at: datetime) -> None:
        self.data_measured = dict(examples=examples, longest=longest, seq_len=seq_len, decided_by=decided_by,
                                  truncated_examples=truncated_examples, truncated_tokens=truncated_tokens,
                                  most_cut=most_cut, masked_share=masked_share)

    def record_memory_guard(self, attempt: int, at: datetime, **figures: Any) -> None:
        """The current attempt's memory plan, when it differs from the last one recorded (another GPU may
        plan otherwise)."""
        if attempt != self.attempt or self.status in TERMINAL or self._after_interruption(at):
            return
        if self.memory_guard != figures:
            self._memory_guarded(attempt=attempt, at=at, **figures)

    @event(MemoryGuarded)
    def _memory_guarded(self, attempt: int, gpu_memory_gb: float, estimate_gb: float, micro_batch: int,
                        gradient_accumulation_steps: int, gradient_checkpointing: bool, seq_len: int,
                        changes: list[str], at: datetime) -> None:
        self.memory_guard = dict(gpu_memory_gb=gpu_memory_gb, estimate_gb=estimate_gb, micro_batch=micro_batch,
                                 gradient_accumulation_steps=gradient_accumulation_steps,
                                 gradient_checkpointing=gradient_checkpointing, seq_len=seq_len,
                                 changes=list(changes))

    def interrupt(self, reason: str, step: int, attempt: int, at: datetime) -> bool:
        """The pod went away (preempted, killed, lost). Returns whether this changed anything. A
        pausing job's pod going away, however it went, pauses the job (FR2.2.2)."""
        if attempt == self.attempt and self.status is S.PAUSING:
            checkpoint_step = self.last_checkpoint_step if self.latest_checkpoint is not None else 0
            self._paused(step=step, checkpoint_step=checkpoint_step, reason=reason, at=at)
            return True
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

    # --- quality validation (FR6.1, FR6.3) -------------------------------------------------------

    def attach_suites(self, knowledge: SuiteRef | None, probes: list[SuiteRef], at: datetime,
                      ei: SuiteRef | None = None, rubric: SuiteRef | None = None) -> None:
        """Before it starts: the suites its evaluation scores (a probe suite named twice counts once), and
        the EI scenarios and brand-voice rubric its pod generates replies for (FR6.2.1, FR6.4.1)."""
        if self.status not in NOT_STARTED:
            raise IllegalTransitionError("Evaluation suites can be attached only before the job starts")
        unique = list({p.suite_id: p for p in probes}.values())
        if (knowledge, unique, ei, rubric) != (self.knowledge_suite, self.probe_suites, self.ei_suite, self.rubric):
            self._suites_attached(knowledge=knowledge, probes=unique, at=at, ei=ei, rubric=rubric)

    @event(SuitesAttached)
    def _suites_attached(self, knowledge: SuiteRef | None, probes: list[SuiteRef], at: datetime,
                         ei: SuiteRef | None = None, rubric: SuiteRef | None = None) -> None:
        self.knowledge_suite, self.probe_suites = knowledge, list(probes)
        self.ei_suite, self.rubric = ei, rubric

    def request_evaluation(self, evaluates: UUID, adapter: ArtifactRef, actor: str, at: datetime) -> None:
        """Makes a new (not started) job a re-evaluation of `evaluates`'s adapter."""
        if self.status not in NOT_STARTED or self.evaluates is not None:
            raise IllegalTransitionError("Only a new job can become a re-evaluation")
        self._evaluation_requested(evaluates=evaluates, adapter=adapter, actor=actor, at=at)

    @event(EvaluationRequested)
    def _evaluation_requested(self, evaluates: UUID, adapter: ArtifactRef, actor: str, at: datetime) -> None:
        self.evaluates, self.evaluates_adapter = evaluates, adapter

    def record_evaluation_progress(self, part: str, done: int, total: int, attempt: int, at: datetime) -> None:
        if attempt != self.attempt or self.status is not S.EVALUATING:
            return
        if self.evaluation_progress == {"part": part, "done": done, "total": total}:
            return
        self._evaluation_progressed(part=part, done=done, total=total, at=at)

    @event(EvaluationProgressed)
    def _evaluation_progressed(self, part: str, done: int, total: int, at: datetime) -> None:
        self.evaluation_progress = {"part": part, "done": done, "total": total}

    def record_evaluation(self, results: ArtifactRef, summary: dict[str, Any], attempt: int, at: datetime,
                          evaluated_by: UUID | None = None) -> None:
        """Idempotent: results already recorded (same digest) are not recorded again; its own pod's
        results count only from the current attempt of a job still running; a re-evaluation's
        results count for a completed job. A new evaluation supersedes an earlier override."""
        if results.sha256 in self.evaluation_digests:
            return
        if evaluated_by is None and (attempt != self.attempt or self.status in TERMINAL):
            return
        if evaluated_by is not None and self.status is not S.COMPLETED:
            return
        self._evaluated(results=results, summary=dict(summary), attempt=attempt, evaluated_by=evaluated_by, at=at)

    @event(Evaluated)
    def _evaluated(self, results: ArtifactRef, summary: dict[str, Any], attempt: int, evaluated_by: UUID | None,
                   at: datetime) -> None:
        self.evaluation = {"results": results, "summary": summary, "attempt": attempt,
                           "evaluated_by": evaluated_by, "at": at}
        self.evaluation_digests.add(results.sha256)
        self.evaluation_failure = None
        self.delivery_override = None

    def evaluation_failed(self, reason: str, results: ArtifactRef | None, attempt: int, at: datetime) -> None:
        """Results that cannot be read: noted (never a made-up score); the job completes all the same."""
        if attempt != self.attempt or self.status in TERMINAL or self.evaluation_failure is not None:
            return
        if results is not None and results.sha256 in self.evaluation_digests:
            return
        self._evaluation_failed(results=results, reason=reason[:500], attempt=attempt, at=at)

    @event(EvaluationFailed)
    def _evaluation_failed(self, results: ArtifactRef | None, reason: str, attempt: int, at: datetime) -> None:
        self.evaluation_failure = {"reason": reason, "attempt": attempt, "at": at}

    def override_delivery(self, actor: str, role: str, justification: str, at: datetime) -> None:
        """A manager or admin releases a blocked adapter with a justification (20+ characters)."""
        outcome = self.gate_outcome
        text = check_override(role, justification, outcome)
        if self.delivery_override is not None:
            raise InvalidJobError(f"This adapter was already released by {self.delivery_override['actor']}")
        assert self.evaluation is not None  # a block comes from an evaluation
        self._delivery_overridden(actor=actor, justification=text, outcome=str(outcome),
                                  results_sha256=self.evaluation["results"].sha256, at=at)

    @event(DeliveryOverridden)
    def _delivery_overridden(self, actor: str, justification: str, outcome: str, results_sha256: str,
                             at: datetime) -> None:
        self.delivery_override = {"actor": actor, "justification": justification, "outcome": outcome, "at": at}

    @property
    def gate_outcome(self) -> str | None:
        """pass, review or block from the latest evaluation; None when not evaluated."""
        return str(self.evaluation["summary"].get("outcome")) if self.evaluation else None

    @property
    def delivery_blocked(self) -> bool:
        return self.gate_outcome == "block" and self.delivery_override is None

    @property
    def delivery_block_reason(self) -> str | None:
        return block_reason(self.evaluation["summary"]) if self.delivery_blocked and self.evaluation else None

    def charge_judging(self, review_id: UUID, cost: Decimal, prompt_tokens: int, completion_tokens: int,
                       items: int, at: datetime) -> None:
        """The review's judging cost so far (cumulative: a repeat or an older figure changes nothing)."""
        before = self.judging.get(str(review_id))
        if before is not None and before["cost"] >= cost and before["items"] >= items:
            return
        self._judging_charged(review_id=review_id, cost=cost, prompt_tokens=prompt_tokens,
                              completion_tokens=completion_tokens, items=items, at=at)

    @event(JudgingCharged)
    def _judging_charged(self, review_id: UUID, cost: Decimal, prompt_tokens: int, completion_tokens: int,
                         items: int, at: datetime) -> None:
        self.judging[str(review_id)] = {"cost": cost, "prompt_tokens": prompt_tokens,
                                        "completion_tokens": completion_tokens, "items": items}

    @property
    def judging_cost(self) -> Decimal:
        return sum((j["cost"] for j in self.judging.values()), Decimal(0))

    def spend(self, now: datetime) -> Decimal:
        """What the job has cost its budget: its pods up to `now` and any judging of its replies."""
        return self.cost(now).total_cost + self.judging_cost

    def record_judged(self, review_id: UUID, results_sha256: str, summary: dict[str, Any], at: datetime) -> None:
        """The current evaluation's summary with its replies' scores. Ignored for another evaluation's
        results or when nothing changed. A release by a manager stands unless the scores add a reason to block."""
        if self.evaluation is None or self.evaluation["results"].sha256 != results_sha256:
            return
        before = self.evaluation["summary"]
        if summary == before:
            return
        new_blocks = summary.get("outcome") == "block" and bool(set(summary.get("reasons") or [])
                                                                - set(before.get("reasons") or []))
        keeps = self.delivery_override is not None and not new_blocks

        def complete(figures: dict[str, Any]) -> set[str]:
            return {str(s.get("source")) for s in figures.get("judged") or [] if s.get("complete")}

        completes = sorted(complete(summary) - complete(before))
        self._judged(review_id=review_id, results_sha256=results_sha256, summary=dict(summary), keeps_release=keeps,
                     completes=completes, at=at)

    @event(Judged)
    def _judged(self, review_id: UUID, results_sha256: str, summary: dict[str, Any], keeps_release: bool,
                completes: list[str], at: datetime) -> None:
        assert self.evaluation is not None
        self.evaluation = self.evaluation | {"summary": summary, "judged_at": at}
        if not keeps_release:
            self.delivery_override = None

    # --- endings ----------------------------------------------------------------------------

    def complete(self, adapter: ArtifactRef, metrics: dict[str, Any], attempt: int, at: datetime) -> None:
        """The current attempt's adapter is done. Wins over an interruption reported meanwhile (a
        false alarm, or a pod lost right after its last upload); ignored once the job has ended."""
        if self.status in TERMINAL or attempt != self.attempt:
            return
        if self.status not in (S.INTERRUPTED, S.RECOVERING, S.PAUSED):
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


class JobAlreadyStartedError(IllegalTransitionError):
    """Start of a job that has started already (or was discarded before starting)."""
