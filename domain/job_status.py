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
    MODEL_LOADING = "model_loading"
    TRAINING = "training"
    FINALIZATION = "finalization"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    RECOVERING = "recovering"
    FAILED = "failed"
    CANCELLED = "cancelled"


S = JobStatus
STAGES = (S.PREPROCESSING, S.MODEL_LOADING, S.TRAINING, S.FINALIZATION)
TERMINAL = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})
# Statuses in which a pod may be running (or being requested) and the job holds a queue slot.
ACTIVE = frozenset({S.PROVISIONING, S.QUEUED_WAITING_FOR_GPU, *STAGES, S.INTERRUPTED, S.RECOVERING})
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
    S.MODEL_LOADING: frozenset({*_later(S.MODEL_LOADING), S.INTERRUPTED, S.FAILED}),
    S.TRAINING: frozenset({S.FINALIZATION, S.COMPLETED, S.INTERRUPTED, S.FAILED}),
    S.FINALIZATION: frozenset({S.COMPLETED, S.INTERRUPTED, S.FAILED}),
    S.INTERRUPTED: frozenset({S.RECOVERING, S.FAILED}),
    # A new attempt always goes through provisioning: a late stage report of the old pod cannot
    # move a recovering job.
    S.RECOVERING: frozenset({S.PROVISIONING, S.INTERRUPTED, S.FAILED}),
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
