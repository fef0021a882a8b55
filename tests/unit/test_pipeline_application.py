"""The application service in memory: catalog, job creation from a file, start, spend, cancel."""

import hashlib
import json
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from domain.aggregates.budget import BudgetExceededError
from domain.aggregates.catalog_file import CatalogFile, InvalidCatalogNameError
from domain.aggregates.training_job import IllegalTransitionError, JobAlreadyStartedError
from domain.applications import BudgetPolicy, Pipeline, TrainingFileNotFoundError
from domain.cost_model import estimate_cost
from domain.gpu import PricingTier, gpu_option
from domain.job_status import CancelReason, JobStatus
from domain.presets import CONSERVATIVE, PresetLockedError
from domain.training_file import IneligibleTrainingFileError, summarize, validate
from domain.values import ArtifactRef
from tests.factories import T0

SAMPLES = Path(__file__).parents[2] / "samples"


@pytest.fixture
def app() -> Pipeline:
    return Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=BudgetPolicy(team="ml"))


def register(app: Pipeline, name: str = "financial-advisory.json", conversations: int | None = None):
    data = (SAMPLES / name).read_bytes()
    if conversations is not None:  # a smaller valid file: the first N conversations of the sample
        doc = json.loads(data)
        doc["conversations"] = doc["conversations"][:conversations]
        data = json.dumps(doc).encode()
    report = validate(data)
    stats = summarize(data) if report.ok else None
    ref = ArtifactRef("files", name, hashlib.sha256(data).hexdigest(), len(data))
    return app.register_training_file(name, ref, report, stats, "alice", T0)


def test_registering_the_same_bytes_twice_returns_the_same_catalog_entry(app: Pipeline) -> None:
    assert register(app) == register(app)
    entry = app.catalog_file(register(app))
    assert (entry.status, entry.conversation_count, entry.pair_count) == ("active", 300, 1419)


def test_the_same_bytes_under_a_new_name_keep_their_entry_and_record_the_name_as_an_alias(app: Pipeline) -> None:
    data = (SAMPLES / "financial-advisory.json").read_bytes()
    report, stats = validate(data), summarize(data)
    ref = ArtifactRef("files", "abc/sample.json", hashlib.sha256(data).hexdigest(), len(data))
    first = app.add_to_catalog("Advisor sample", ref, report, stats, "alice", T0)
    again = app.add_to_catalog("Advisor copy", ref, report, stats, "bob", T0 + timedelta(days=1))
    same = app.add_to_catalog("Advisor copy", ref, report, stats, "carol", T0 + timedelta(days=2))
    assert first.new and first.already_catalogued() is None
    assert again.file_id == same.file_id == first.file_id and not again.new
    assert again.already_catalogued() == (f"This file is already in the catalog as 'Advisor sample' (added"
                                          f" {T0:%Y-%m-%d} by alice); 'Advisor copy' is recorded as another name"
                                          " for it.")
    assert same.already_catalogued() == \
        f"This file is already in the catalog as 'Advisor sample' (added {T0:%Y-%m-%d} by alice)."
    entry = app.catalog_file(first.file_id)
    assert (entry.name, entry.aliases) == ("Advisor sample", ["Advisor copy"])
    topics = [type(e).TOPIC for e in app.repository.event_store.get(first.file_id)]
    assert topics == ["CatalogFile.Created", "CatalogFile.AliasAdded"]


def test_a_catalog_name_past_255_characters_or_with_a_nul_character_is_refused_with_its_length(app: Pipeline) -> None:
    data = (SAMPLES / "financial-advisory.json").read_bytes()
    ref = ArtifactRef("files", "abc/sample.json", hashlib.sha256(data).hexdigest(), len(data))
    too_long = r"^A training file name can be at most 255 characters \(got 5,000\)$"
    with pytest.raises(InvalidCatalogNameError, match=too_long):
        app.add_to_catalog("n" * 5000, ref, validate(data), summarize(data), "alice", T0)
    with pytest.raises(InvalidCatalogNameError, match=r"^The file name contains a NUL character \(U\+0000\) at"):
        app.add_to_catalog("a\x00b", ref, validate(data), summarize(data), "alice", T0)
    assert app.catalog_file(CatalogFile.id_for(ref.sha256)) is None
    assert app.add_to_catalog("n" * 255, ref, validate(data), summarize(data), "alice", T0).new


def test_an_invalid_file_is_catalogued_with_its_problems_and_refused_for_jobs(app: Pipeline) -> None:
    file_id = register(app, "broken-missing-target.json")
    entry = app.catalog_file(file_id)
    assert entry.status == "invalid"
    assert entry.problems[0].endswith("Training pair #4 (conversation conv_abc123) is missing 'target_response'")
    with pytest.raises(IneligibleTrainingFileError, match="failed validation"):
        app.create_job_from_file(file_id, created_by="alice", at=T0)


def test_a_job_from_a_file_gets_the_default_preset_name_and_estimate(app: Pipeline) -> None:
    job = app.get_job(app.create_job_from_file(register(app, conversations=200), created_by="alice", at=T0))
    config = job.configuration
    assert job.name == "financial-advisory.json - Balanced - 2026-11-24"
    assert config["preset"] == "balanced" and config["hyperparameters"]["r"] == 16
    assert config["gpu_tier"] == "spot" and config["hourly_rate"] == Decimal("2.49")
    assert Decimal(0) < config["estimated_cost_min"] < config["estimated_cost_max"]
    assert job.status == JobStatus.CONFIGURED


def test_fewer_than_50_conversations_are_refused_with_the_spec_message(app: Pipeline) -> None:
    with pytest.raises(IneligibleTrainingFileError, match="Insufficient conversations"):
        app.create_job_from_file(register(app, conversations=49), created_by="alice", at=T0)


def test_aggressive_is_locked_for_a_small_file_and_a_new_user(app: Pipeline) -> None:
    file_id = register(app, conversations=120)
    with pytest.raises(PresetLockedError, match="Unlock after 3 successful training runs"):
        app.create_job_from_file(file_id, created_by="alice", at=T0, preset="aggressive")
    job_id = app.create_job_from_file(file_id, created_by="alice", at=T0, preset="aggressive", successful_jobs=3)
    assert app.get_job(job_id).configuration["preset"] == "aggressive"


def test_an_unknown_file_is_not_found(app: Pipeline) -> None:
    with pytest.raises(TrainingFileNotFoundError, match="Training file not found"):
        app.create_job_from_file(uuid.uuid4(), created_by="alice", at=T0)


EDIT = {"preset": "conservative", "gpu_tier": "on_demand", "successful_jobs": 0,
        "interruption_probability": Decimal("0.18"), "name": "Advisor tone v3", "description": "Smaller rank",
        "tags": ["test"], "client": "Acme", "project": "Q4", "notes": "Try r=8 first", "actor": "alice",
        "at": T0 + timedelta(minutes=5)}


def test_reconfiguring_a_configured_job_changes_its_details_note_and_estimate(app: Pipeline) -> None:
    job_id = app.create_job_from_file(register(app, conversations=200), created_by="alice", at=T0)
    app.reconfigure_job(job_id, **EDIT)
    job = app.get_job(job_id)
    expected = estimate_cost(CONSERVATIVE, job.pair_count, gpu_option(PricingTier.ON_DEMAND),
                             interruption_probability=Decimal("0.18"))
    assert (job.name, job.description, job.tags, job.client, job.project) == (
        "Advisor tone v3", "Smaller rank", ["test"], "Acme", "Q4")
    assert (job.configuration["preset"], job.configuration["gpu_tier"]) == ("conservative", "on_demand")
    assert job.configuration["estimated_cost_max"] == expected.cost_max
    assert [text for _, _, text in job.notes] == ["Try r=8 first"] and job.status == JobStatus.CONFIGURED
    version = job.version
    app.reconfigure_job(job_id, **EDIT | {"interruption_probability": Decimal("0.5"), "notes": None})
    assert app.get_job(job_id).version == version  # same preset and tier: estimate kept, nothing to save


def test_a_refused_reconfiguration_saves_nothing_and_a_started_job_cannot_be_reconfigured(app: Pipeline) -> None:
    job_id = app.create_job_from_file(register(app, conversations=120), created_by="alice", at=T0)
    version = app.get_job(job_id).version
    with pytest.raises(PresetLockedError, match="Unlock after 3 successful training runs"):
        app.reconfigure_job(job_id, **EDIT | {"preset": "aggressive"})  # renamed first, but not saved
    assert app.get_job(job_id).version == version and app.get_job(job_id).name != "Advisor tone v3"
    app.start_job(job_id, "alice", "member", T0)
    with pytest.raises(IllegalTransitionError, match="already started"):
        app.reconfigure_job(job_id, **EDIT)


def test_starting_reserves_budget_and_claims_the_file_so_a_second_job_is_refused(app: Pipeline) -> None:
    file_id = register(app)
    job_id = app.create_job_from_file(file_id, created_by="alice", at=T0)
    app.start_job(job_id, "alice", "member", T0)
    job, budget = app.get_job(job_id), app.budget("2026-11")
    assert job.status == JobStatus.QUEUED
    assert budget.reservations == {str(job_id): job.estimated_cost_max}
    with pytest.raises(IneligibleTrainingFileError, match="in use by an active job"):
        app.create_job_from_file(file_id, created_by="bob", at=T0)


def test_starting_a_started_or_discarded_job_says_so_before_the_budget_is_asked(app: Pipeline) -> None:
    job_id = app.create_job_from_file(register(app), created_by="alice", at=T0)
    app.start_job(job_id, "alice", "member", T0)
    app.policy = BudgetPolicy(team="ml", default_limit=Decimal(5))  # a second reservation would not fit
    with pytest.raises(JobAlreadyStartedError, match=r"^This job has already started \(status: queued\)$"):
        app.start_job(job_id, "alice", "member", T0)
    discarded = app.create_job_from_file(register(app, conversations=100), created_by="alice", at=T0)
    app.cancel_job(discarded, CancelReason.OTHER, "Discarded at review", "alice", T0)
    with pytest.raises(JobAlreadyStartedError, match=r"^This job was cancelled before it started"):
        app.start_job(discarded, "alice", "member", T0)


def test_a_refused_start_saves_nothing(app: Pipeline) -> None:
    app.policy = BudgetPolicy(team="ml", default_limit=Decimal(5))
    job_id = app.create_job_from_file(register(app), created_by="alice", at=T0)
    version = app.get_job(job_id).version
    with pytest.raises(BudgetExceededError, match="exceeds remaining monthly budget"):
        app.start_job(job_id, "alice", "member", T0)
    assert app.get_job(job_id).version == version
    assert app.catalog_file(register(app)).active_jobs == []


def test_cancelling_a_queued_job_releases_its_reservation_and_its_file(app: Pipeline) -> None:
    file_id = register(app)
    job_id = app.create_job_from_file(file_id, created_by="alice", at=T0)
    app.start_job(job_id, "alice", "member", T0)
    app.cancel_job(job_id, CancelReason.WRONG_CONFIGURATION, "wrong file", "alice", T0 + timedelta(minutes=1))
    assert app.budget("2026-11").reserved == 0
    assert app.catalog_file(file_id).active_jobs == []
    assert app.get_job(job_id).cancellation["reason"] == "wrong_configuration"


def test_spend_is_charged_from_the_ledger_once_however_often_it_is_reported(app: Pipeline) -> None:
    job_id = app.create_job_from_file(register(app), created_by="alice", at=T0)
    app.start_job(job_id, "alice", "member", T0)
    job = app.get_job(job_id)
    attempt = job.start_provisioning("spot", T0)
    job.pod_started("pod-1", attempt, Decimal("3.60"), T0)
    app.save(job)
    later = T0 + timedelta(hours=1)
    assert app.record_job_spend(job_id, later) == Decimal("3.6")
    app.record_job_spend(job_id, later)
    budget = app.budget("2026-11")
    assert budget.charged == Decimal("3.6")
    assert budget.reservations[str(job_id)] == job.estimated_cost_max - Decimal("3.6")
