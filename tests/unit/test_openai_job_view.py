"""A job as OpenAI's `fine_tuning.job` object (web/openai_api/job_views.py): statuses in OpenAI's
vocabulary, failures as its error, the model name, and every field the client's model has."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from openai.types.fine_tuning import FineTuningJob

from domain.job_status import JobStatus
from domain.presets import BALANCED
from tests.factories import T0
from web.openai_api.job_views import JobFacts, job_object, openai_status

S = JobStatus


def facts(**overrides) -> JobFacts:
    base = dict(id=uuid.UUID(int=7), name="Advisor tone v1", created_by="alice", status="training", created_at=T0,
                ended_at=None, training_file_sha256="a" * 64, preset="balanced", hyperparameters=BALANCED.as_config(),
                gpu_tier="spot", estimated_cost_min=Decimal("28.571"), estimated_cost_max=Decimal("38.66"),
                estimated_duration_hours=Decimal(10), cost=Decimal("12.449"), queued_at=T0, interruptions=1,
                progress=0.25)
    return JobFacts(**base | overrides)


def shown(**overrides) -> dict:
    return job_object(facts(**overrides), default_model="tiny", organization="ml", time_zone="UTC",
                      now=T0 + timedelta(hours=3))


@pytest.mark.parametrize(("ours", "theirs"), [
    (S.PENDING_CONFIGURATION, "validating_files"), (S.CONFIGURED, "validating_files"), (S.QUEUED, "queued"),
    (S.PROVISIONING, "queued"), (S.QUEUED_WAITING_FOR_GPU, "queued"), (S.PREPROCESSING, "running"),
    (S.DOWNLOADING_MODEL, "running"), (S.MODEL_LOADING, "running"), (S.TRAINING, "running"),
    (S.FINALIZATION, "running"), (S.INTERRUPTED, "running"),
    (S.RECOVERING, "running"), (S.COMPLETED, "succeeded"), (S.FAILED, "failed"), (S.CANCELLED, "cancelled"),
    (S.PAUSING, "pausing"), (S.PAUSED, "paused"),
])
def test_each_status_reads_as_the_clients_status(ours: JobStatus, theirs: str) -> None:
    assert openai_status(ours.value) == theirs


def test_every_status_of_ours_has_a_reading_and_an_unknown_one_reads_as_running() -> None:
    # "pausing", "paused": OpenAI's own words for a pausing and a paused job, though its client's status type
    # leaves them out (docs/web.md)
    assert {openai_status(s.value) for s in JobStatus} <= {"validating_files", "queued", "running", "succeeded",
                                                           "failed", "cancelled", "pausing", "paused"}
    assert openai_status("a_status_added_later") == "running"


def test_a_running_job_has_every_client_field_an_estimated_finish_and_our_figures_as_extras() -> None:
    job = shown()

    assert set(job) >= set(FineTuningJob.model_fields) and job["object"] == "fine_tuning.job"
    assert FineTuningJob.model_validate(job).status == "running"  # the client's model, validated
    assert (job["status"], job["fine_tuned_model"], job["finished_at"], job["error"]) == ("running", None, None, None)
    assert job["estimated_finish"] == int((T0 + timedelta(hours=3 + 7.5)).timestamp())  # 10 h × 75 % left
    assert job["hyperparameters"] == {"n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": 1.0}
    assert (job["seed"], job["model"], job["organization_id"], job["metadata"]) == (42, "tiny", "ml", None)
    assert job["estimated_cost"] == {"min": "28.57", "max": "38.66", "currency": "usd"}
    assert (job["cost"], job["budget_month"], job["interruptions"], job["pipeline_status"]) == (
        "12.45", "2026-11", 1, "training")


def test_a_succeeded_job_names_its_model_and_a_failed_one_says_why_in_the_clients_terms() -> None:
    done = shown(status="completed", ended_at=T0 + timedelta(hours=2), suffix="advisor", base_model="tiny",
                 trained_tokens=9000, labels={"team": "risk"})
    failed = shown(status="failed", ended_at=T0 + timedelta(hours=1), failure_type="dataset_format",
                   failure_message="Dataset format error: Line 4, message #2 is missing 'role'")
    oom = shown(status="failed", ended_at=T0, failure_type="oom", failure_message="CUDA out of memory")

    assert (done["fine_tuned_model"], done["trained_tokens"], done["metadata"]) == (
        f"ft:tiny:advisor:{uuid.UUID(int=7)}", 9000, {"team": "risk"})
    assert done["finished_at"] == int((T0 + timedelta(hours=2)).timestamp()) and done["estimated_finish"] is None
    assert failed["error"] == {"code": "invalid_training_file", "param": "training_file",
                               "message": "Dataset format error: Line 4, message #2 is missing 'role'"}
    assert oom["error"] == {"code": "out_of_memory", "param": None, "message": "CUDA out of memory"}
    assert shown(status="cancelled", ended_at=T0)["error"] is None
    for job in (done, failed, oom):
        FineTuningJob.model_validate(job)


def test_a_job_names_its_validation_file_by_its_catalog_id_and_none_when_it_validates_on_a_hold_out() -> None:
    from domain.aggregates.catalog_file import CatalogFile

    assert shown()["validation_file"] is None
    job = shown(validation_file_sha256="b" * 64)
    assert job["validation_file"] == str(CatalogFile.id_for("b" * 64)) != job["training_file"]
    assert FineTuningJob.model_validate(job).validation_file == job["validation_file"]


def test_a_pausing_and_a_paused_job_have_no_finish_no_model_and_no_error() -> None:
    for status in ("pausing", "paused"):
        job = shown(status=status)
        assert (job["status"], job["finished_at"], job["fine_tuned_model"], job["error"], job["estimated_finish"]) == (
            status, None, None, None, None)
