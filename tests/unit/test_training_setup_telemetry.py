"""The training stage's telemetry (issue #17) becomes the job's record: the sequence length and what it cut, the
memory guard's changes; once per attempt, a warning in the event log when something was cut or changed."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from domain.aggregates.training_job import TrainingJob
from domain.applications import BudgetPolicy, Pipeline
from domain.job_status import JobStatus
from handlers.telemetry import TelemetryHandler, training_setup
from infra.telemetry import Telemetry
from projections.event_messages import category, message
from tests.factories import queue_sample_job

DATA = {"examples": 1419, "longest": 153, "seq_len": 96, "decided_by": "max_seq_length", "covered_share": 0.8076,
        "truncated_examples": 273, "truncated_tokens": 4810, "most_cut": 57, "masked_share": 0.4829}
MEMORY = {"micro_batch": 2, "gradient_accumulation_steps": 2, "gradient_checkpointing": True, "seq_len": 96,
          "guarded": True, "gpu_memory_gb": 79.2, "usable_gb": 71.3, "requested_gb": 98.2, "estimate_gb": 47.9,
          "fits": True, "changes": ["Gradient checkpointing turned on: 98.2 GB → 52.1 GB estimated",
                                    "Micro-batch 4 → 2, gradient accumulation 1 → 2 (effective batch 4 kept)"],
          "fixes": []}


@pytest.fixture
def app() -> Pipeline:
    return Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=BudgetPolicy(default_limit=5000))


def send(handler: TelemetryHandler, job_id: uuid.UUID, attempt: int, seq: int, data: dict, at: datetime) -> None:
    body = Telemetry(job_id=str(job_id), attempt=attempt, seq=seq, kind="stage", at=at.isoformat(), data=data)
    handler.handle(body.subject, body.model_dump_json().encode())


def started(app: Pipeline) -> tuple[uuid.UUID, int]:
    job_id = queue_sample_job(app)
    attempt = app.update_job(job_id, lambda job: job.start_provisioning("spot", datetime.now(timezone.utc)))
    return job_id, attempt


def test_the_training_stage_records_the_cut_and_the_memory_guard_once_and_warns_in_the_event_log(app) -> None:
    job_id, attempt = started(app)
    handler, now = TelemetryHandler(app), datetime.now(timezone.utc)
    send(handler, job_id, attempt, 1, {"stage": "preprocessing", "status": "..."}, now)
    training = {"stage": "training", "status": "Training...", "data": DATA, "memory": MEMORY}
    for seq in (2, 3):  # a redelivery records nothing twice
        send(handler, job_id, attempt, seq, training, now + timedelta(seconds=1))
    job = app.get_job(job_id)
    assert job.status is JobStatus.TRAINING
    assert job.data_measured["truncated_examples"] == 273 and job.memory_guard["micro_batch"] == 2
    recorded = [e for e in stored_events(app, job_id)
                if isinstance(e, TrainingJob.DataMeasured | TrainingJob.MemoryGuarded)]
    assert [type(e).__name__ for e in recorded] == ["DataMeasured", "MemoryGuarded"]
    data_event, memory_event = recorded
    assert category(data_event) == "warning" and category(memory_event) == "warning"
    assert message(data_event) == (
        "Sequence length 96 tokens (capped by the job's max_seq_length; longest example 153): 273 of 1,419 examples"
        " cut, by up to 57 tokens (4,810 in all); loss on the assistant's answers only (48% of tokens masked)")
    assert message(memory_event).startswith("Memory guard on the 79.2 GB GPU: Gradient checkpointing turned on")
    assert "micro-batch 2 × accumulation 2, gradient checkpointing" in message(memory_event)


def stored_events(app: Pipeline, job_id: uuid.UUID) -> list:
    return list(app.repository.event_store.get(job_id))


def test_nothing_cut_and_nothing_changed_is_no_warning_and_a_cpu_pod_records_no_memory_guard(app) -> None:
    job_id, attempt = started(app)
    handler, now = TelemetryHandler(app), datetime.now(timezone.utc)
    whole = DATA | {"seq_len": 153, "decided_by": "data", "truncated_examples": 0, "truncated_tokens": 0,
                    "most_cut": 0}
    send(handler, job_id, attempt, 1, {"stage": "training", "status": "...", "data": whole,
                                       "memory": {"guarded": False, "changes": []}}, now)
    recorded = [e for e in stored_events(app, job_id) if isinstance(e, TrainingJob.DataMeasured)]
    assert [category(e) for e in recorded] == ["status"]
    assert "none of 1,419 examples cut" in message(recorded[0])
    assert app.get_job(job_id).memory_guard is None


def test_malformed_setup_figures_are_ignored_and_the_stage_still_changes() -> None:
    assert training_setup({"stage": "training", "data": {"examples": "many"}, "memory": "?"}) == (None, None)
    figures, memory = training_setup({"data": DATA, "memory": MEMORY})
    assert figures is not None and "covered_share" not in figures and memory["changes"] == MEMORY["changes"]
    assert json.loads(json.dumps(memory)) == memory
    assert Decimal(str(figures["masked_share"])) == Decimal("0.4829")
