"""Training job states and the transitions between them (spec FR2.1.2, FR2.2.1, FR3.x)."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    PENDING_CONFIGURATION = "pending_configuration"
    CONFIGURED = "configured"
    QUEUED = "queued"
    PROVISIONING = "provisioning"
    QUEUED_WAITING_FOR_GPU = "queued_waiting_for_gpu"
    PREPROCESSING = "preprocessing"
    DOWNLOADING_MODEL = "downloading_model"  # the base model's weights fetched onto the pod's volume (issue #16)
    MODEL_LOADING = "model_loading"
    TRAINING = "training"
    FINALIZATION = "finalization"
    EVALUATING = "evaluating"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    RECOVERING = "recovering"
    PAUSING = "pausing"  # FR2.2.2: its pod checkpoints at the next step and stops
    PAUSED = "paused"    # no pod, no queue slot, no spend; its reservation kept until it resumes or ends
    FAILED = "failed"
    CANCELLED = "cancelled"


S = JobStatus
# Evaluation (FR6.1, FR6.3) is a stage of its own after finalization: the adapter is saved first, then
# scored against the base model (docs/quality-validation.md). A re-evaluation job skips to it. The base
# model's download is a stage of its own before model loading, skipped where there is nothing to fetch (the
# tiny model, a local directory).
STAGES = (S.PREPROCESSING, S.DOWNLOADING_MODEL, S.MODEL_LOADING, S.TRAINING, S.FINALIZATION, S.EVALUATING)
TERMINAL = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})
# Statuses in which a pod may be running (or being requested) and the job holds a queue slot.
ACTIVE = frozenset({S.PROVISIONING, S.QUEUED_WAITING_FOR_GPU, *STAGES, S.INTERRUPTED, S.RECOVERING, S.PAUSING})
# FR2.2.2: a job can be paused while it trains (its pod then saves a checkpoint at the step boundary).
PAUSABLE = frozenset({S.TRAINING})
NOT_STARTED = frozenset({S.PENDING_CONFIGURATION, S.CONFIGURED})

_ALWAYS = {S.CANCELLED}


def _later(stage: JobStatus) -> set[JobStatus]:
    """Stages only move forward; one may be skipped when its report was not needed (a resumed
    run announces training straight after provisioning)."""
    return set(STAGES[STAGES.index(stage) + 1:])


TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    S.PENDING_CONFIGURATION: frozenset({S.CONFIGURED}),
    S.CONFIGURED: frozenset({S.CONFIGURED, S.QUEUED}),
    S.QUEUED: frozenset({S.PROVISIONING}),
    S.PROVISIONING: frozenset({S.QUEUED_WAITING_FOR_GPU, *STAGES, S.INTERRUPTED, S.FAILED}),
    S.QUEUED_WAITING_FOR_GPU: frozenset({S.PROVISIONING, S.FAILED}),
    S.PREPROCESSING: frozenset({*_later(S.PREPROCESSING), S.INTERRUPTED, S.FAILED}),
    S.DOWNLOADING_MODEL: frozenset({*_later(S.DOWNLOADING_MODEL), S.INTERRUPTED, S.FAILED}),
    S.MODEL_LOADING: frozenset({*_later(S.MODEL_LOADING), S.INTERRUPTED, S.FAILED}),
    S.TRAINING: frozenset({S.FINALIZATION, S.EVALUATING, S.COMPLETED, S.INTERRUPTED, S.FAILED, S.PAUSING}),
    S.FINALIZATION: frozenset({S.EVALUATING, S.COMPLETED, S.INTERRUPTED, S.FAILED}),
    S.EVALUATING: frozenset({S.COMPLETED, S.INTERRUPTED, S.FAILED}),
    S.INTERRUPTED: frozenset({S.RECOVERING, S.FAILED}),
    # A new attempt always goes through provisioning: a late stage report of the old pod cannot
    # move a recovering job.
    S.RECOVERING: frozenset({S.PROVISIONING, S.INTERRUPTED, S.FAILED}),
    # Pausing, the pod may still end the run (its last step came before the stop); stage reports of
    # the stopping pod do not move the job. However its pod ends, the job is then paused.
    S.PAUSING: frozenset({S.PAUSED, S.COMPLETED, S.FAILED}),
    # Resuming queues it again (the same job: its next attempt continues from the checkpoint); a
    # late failure report of the paused attempt still counts.
    S.PAUSED: frozenset({S.QUEUED, S.FAILED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}


def can_move(current: JobStatus, target: JobStatus) -> bool:
    if current in TERMINAL:
        return False
    return target in TRANSITIONS[current] or target in _ALWAYS


class FailureType(StrEnum):
    OOM = "oom"
    DATASET_FORMAT = "dataset_format"
    PROVISIONING = "provisioning"
    TIMEOUT = "timeout"
    RECOVERY_EXHAUSTED = "recovery_exhausted"
    UNKNOWN = "unknown"


class CancelReason(StrEnum):
    """The spec's dropdown (FR2.2.1), plus the system's own reasons."""

    LOSS_NOT_DECREASING = "loss_not_decreasing"
    TOO_EXPENSIVE = "too_expensive"
    WRONG_CONFIGURATION = "wrong_configuration"
    TESTING = "testing"
    OTHER = "other"
    PROVISIONING_TIMEOUT = "provisioning_timeout"
    BUDGET = "budget"
