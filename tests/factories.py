"""Builders for domain objects in tests: realistic values, one place to change them."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from domain.aggregates.training_job import TrainingJob
from domain.values import ArtifactRef

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
REF = ArtifactRef("files", "abc/financial-advisory.json", "a" * 64, 123_456)


def job_fields(**overrides: Any) -> dict[str, Any]:
    return {"name": "Advisor tone v1", "training_file": REF, "file_name": "financial-advisory.json",
            "conversation_count": 242, "pair_count": 1567, "created_by": "alice", "at": T0} | overrides


def configuration(**overrides: Any) -> dict[str, Any]:
    return {"preset": "balanced", "hyperparameters": {"r": 16, "lora_alpha": 32, "target_modules": ["q_proj"]},
            "gpu_tier": "spot", "gpu_type": "H100_PCIE_80GB", "hourly_rate": Decimal("2.49"),
            "estimated_duration_hours": Decimal("13.5"), "estimated_cost_min": Decimal("28.57"),
            "estimated_cost_max": Decimal("38.66"), "estimation_algorithm": "test-1",
            "estimation_confidence": Decimal("88"), "at": T0} | overrides


def new_job(**overrides: Any) -> TrainingJob:
    return TrainingJob.create(uuid.uuid4(), **job_fields(**overrides))


def configured_job(**overrides: Any) -> TrainingJob:
    job = new_job(**overrides)
    job.configure(**configuration())
    return job


def queue_sample_job(app, *, cost_max: Decimal = Decimal("38.66"), name: str = "Advisor tone v1",
                     at: datetime = T0, role: str = "member") -> uuid.UUID:
    """Creates, configures and starts a job through the application; returns its id."""
    job_id = app.create_job(**job_fields(name=name, at=at))
    app.configure_job(job_id, **configuration(estimated_cost_min=cost_max * Decimal("0.74"),
                                              estimated_cost_max=cost_max, at=at))
    app.start_job(job_id, "alice", role, at)
    return job_id


CHECKPOINT = ArtifactRef("checkpoints", "job/attempt-2/checkpoint-300.tar", "c" * 64, 9_876)


def eventful_job(app, name: str = "Advisor tone v1") -> uuid.UUID:
    """A job with a realistic history: a note, no capacity at first, training, a NaN loss, a
    checkpoint, a preemption, a recovery, an OOM failure, its spend charged and its reservation
    released. Times are minutes after T0."""
    from datetime import timedelta

    from domain.job_status import FailureType, JobStatus

    def at(minutes: int) -> datetime:
        return T0 + timedelta(minutes=minutes)

    job_id = queue_sample_job(app, name=name)
    steps = [
        lambda j: j.add_note("Use the smaller learning rate", "bob", at(0)),
        lambda j: j.start_provisioning("spot", at(1)),
        lambda j: j.provisioning_failed(1, "no spot capacity", at(2)),
        lambda j: j.start_provisioning("spot", at(5)),
        lambda j: j.pod_started("pod-1", 2, Decimal("2.49"), at(6)),
        lambda j: j.change_stage(JobStatus.PREPROCESSING, 2, at(7)),
        lambda j: j.change_stage(JobStatus.TRAINING, 2, at(10)),
        lambda j: j.record_progress(100, 2000, 0.05, 0.521, 2, at(20)),
        lambda j: j.record_progress(200, 2000, 0.1, float("nan"), 2, at(25)),
        lambda j: j.record_checkpoint(300, CHECKPOINT, 2, at(30)),
        lambda j: j.interrupt("pod exited with 143", 850, 2, at(40)),
        lambda j: j.pod_stopped("pod-1", at(40)),
        lambda j: j.begin_recovery(at(41)),
    ]
    for step in steps:
        app.update_job(job_id, step)
    app.record_job_spend(job_id, at(41))
    app.update_job(job_id, lambda j: j.fail(FailureType.OOM, "CUDA out of memory", {"step": 900}, at(50)))
    app.record_job_spend(job_id, at(51))
    return job_id
