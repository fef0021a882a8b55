"""Every event class survives the trip through the stored form (transcoder) and the wire
envelope unchanged; a new event class without a case here fails the coverage test."""

import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from domain.aggregates.budget import Budget
from domain.aggregates.catalog_file import CatalogFile
from domain.aggregates.training_job import TrainingJob
from domain.applications import Pipeline
from domain.job_status import CancelReason, FailureType, JobStatus
from domain.training_file import ValidationReport, summarize
from domain.values import ArtifactRef
from infra import envelope
from projections.base import event_topics
from tests.factories import T0, configured_job, new_job

CKPT = ArtifactRef("checkpoints", "job/checkpoint-step-100", "c" * 64, 2048)
ADAPTER = ArtifactRef("adapters", "job/adapter.safetensors", "d" * 64, 4096)


def t(minutes: float):
    return T0 + timedelta(minutes=minutes)


def full_life_events() -> list:
    job = configured_job()
    job.rename("Advisor tone v2", t(1))
    job.update_metadata(description="First run", tags=["experiment"], client="Acme", project="Q1", at=t(1))
    job.add_note("Testing r=16", "alice", t(1))
    job.queue(t(2))
    attempt = job.start_provisioning("spot", t(2))
    job.provisioning_failed(attempt, "no capacity", t(3))
    attempt = job.start_provisioning("spot", t(8))
    job.pod_started("pod-1", attempt, Decimal("2.49"), t(9))
    for i, stage in enumerate((JobStatus.PREPROCESSING, JobStatus.MODEL_LOADING, JobStatus.TRAINING)):
        job.change_stage(stage, attempt, t(10 + i))
    job.record_data_measurement(attempt, t(12), examples=1254, longest=2210, seq_len=1536, decided_by="memory",
                                truncated_examples=9, truncated_tokens=3120, most_cut=674, masked_share=0.4613)
    job.record_memory_guard(attempt, t(12), gpu_memory_gb=79.2, estimate_gb=65.7, micro_batch=2,
                            gradient_accumulation_steps=2, gradient_checkpointing=True, seq_len=1536,
                            changes=["Gradient checkpointing turned on: 336.1 GB → 81.8 GB estimated"])
    job.record_progress(50, 400, 0.5, 1.25, attempt, t(20))
    job.record_checkpoint(100, CKPT, attempt, t(30))
    job.complete_epoch(1, 1.1, attempt, t(40))
    job.interrupt("preempted", 120, attempt, t(45))
    job.pod_stopped("pod-1", t(45))
    job.begin_recovery(t(46))
    attempt = job.start_provisioning("spot", t(46))
    job.pod_started("pod-2", attempt, Decimal("2.49"), t(47))
    job.change_stage(JobStatus.TRAINING, attempt, t(50))
    job.change_stage(JobStatus.FINALIZATION, attempt, t(90))
    job.complete(ADAPTER, {"final_loss": 0.287, "perplexity_improvement": 31.0}, attempt, t(95))
    job.record_export("metrics-csv", "alice", t(96))
    job.delete_adapter("bob", "manager", "Superseded by v2, freeing storage", t(97))
    events = job.collect_events()
    other = configured_job()
    other.queue(t(1))
    other.promote("carol", "manager", t(1))
    other.provisioning_failed(other.start_provisioning("spot", t(1)), "no capacity", t(1))
    other.provisioning_timed_out(Decimal(3600), t(61))
    other.change_gpu_tier("on_demand", Decimal("7.99"), Decimal("20.10"), Decimal("30.15"), "alice", t(62))
    other.change_stage(JobStatus.PREPROCESSING, other.start_provisioning("on_demand", t(62)), t(63))
    other.fail(FailureType.DATASET_FORMAT, "Training pair #47 is missing 'target_response'", {"pair": 47}, t(1))
    cancelled = new_job()
    cancelled.cancel(CancelReason.TESTING, "just a test", "bob", t(1))
    return events + other.collect_events() + cancelled.collect_events()


def budget_events() -> list:
    budget = Budget.open("ml", "2026-11", Decimal("500.10"), T0)
    job = uuid.uuid4()
    budget.reserve(job, Decimal("600"), "carol", "manager", t(1), "Client deadline, approved by the VP")
    budget.change_reservation(job, Decimal("650"), "carol", "manager", t(1), "Switched to on-demand for the deadline")
    budget.record_spend(job, Decimal("450.25"), t(2))
    budget.release(job, t(3))
    request = uuid.uuid4()
    budget.request_limit_increase(request, Decimal("750"), "x" * 60, "alice", t(4))
    budget.decide_limit_increase(request, True, "carol", "manager", t(5))
    budget.set_blocking(False, "carol", "manager", "Soft limits while the client pays overruns", t(6))
    budget.reserve(uuid.uuid4(), Decimal("900.5"), "alice", "member", t(7))
    return budget.collect_events()


@pytest.fixture(scope="module")
def app() -> Pipeline:
    return Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def quality_events() -> list:
    """FR6.1 / FR6.3: suites attached, a re-evaluation, progress, results (and a failure), the override."""
    from domain.quality.delivery import SuiteRef

    suite = SuiteRef(uuid.uuid4(), "acme-probes.csv", ArtifactRef("files", "ab/acme-probes.csv", "e" * 64, 812))
    results = ArtifactRef("job-x", "job-x/evaluation-attempt-1.json", "f" * 64, 5120)
    job = configured_job()
    job.attach_suites(suite, [suite], t(1))
    job.queue(t(2))
    attempt = job.start_provisioning("spot", t(2))
    job.change_stage(JobStatus.EVALUATING, attempt, t(3))
    job.record_evaluation_progress("perplexity", 3, 48, attempt, t(4))
    job.evaluation_failed("the results object is missing", None, attempt, t(5))
    job.record_evaluation(results, {"outcome": "block", "reasons": ["Knowledge retention 80% (✗ Failed)"],
                                    "perplexity": {"baseline": 24.5, "trained": 16.8}}, attempt, t(5))
    job.complete(ADAPTER, {}, attempt, t(6))
    job.override_delivery("bob", "manager", "Client accepted the knowledge loss in writing", t(7))
    again = configured_job()
    again.request_evaluation(job.id, ADAPTER, "bob", t(8))
    return job.collect_events() + again.collect_events()


def provider_events() -> list:
    """#16: the base model's download on a pod, and the provider's bill read back after the pod ended."""
    job = configured_job()
    job.queue(t(1))
    attempt = job.start_provisioning("on_demand", t(1))
    job.pod_started("rp-7x2k", attempt, Decimal("2.39"), t(2))
    job.record_model_download("rp-7x2k", attempt, "meta-llama/Meta-Llama-3-70B-Instruct", Decimal("312.5"),
                              141_107_251_200, False, t(8))
    job.pod_stopped("rp-7x2k", t(70))
    job.reconcile_billing("rp-7x2k", Decimal("2.750000"), [
        {"start": "2026-11-03T09:00:00Z", "end": "2026-11-03T10:00:00Z", "amount": Decimal("2.350000")},
        {"start": "2026-11-03T10:00:00Z", "end": "2026-11-03T11:00:00Z", "amount": Decimal("0.400000")}], t(80))
    return job.collect_events()


def pause_events() -> list:
    """#20 (FR2.2.2): a pause asked for, the pod's end pausing the job, and its resume."""
    job = configured_job()
    job.queue(t(1))
    attempt = job.start_provisioning("spot", t(1))
    job.pod_started("pod-1", attempt, Decimal("2.49"), t(2))
    job.change_stage(JobStatus.TRAINING, attempt, t(3))
    job.record_checkpoint(40, CKPT, attempt, t(9))
    job.request_pause("alice", "member", t(10))
    job.interrupt("sigterm", 40, attempt, t(10.1))
    job.request_resume("bob", "manager", t(30))
    return [e for e in job.collect_events() if type(e).__name__ in ("PauseRequested", "Paused", "ResumeRequested")]


def judging_events() -> list:
    """#19 (FR6.2.1, FR6.4.1): the EI suite and a rubric attached, the judge's cost charged, the replies' scores."""
    from domain.quality.delivery import SuiteRef

    ei = SuiteRef(uuid.uuid4(), "emotional-intelligence.jsonl", ArtifactRef("files", "ab/ei.jsonl", "a" * 64, 9000))
    rubric = SuiteRef(uuid.uuid4(), "Elena Morales voice", ArtifactRef("files", "cd/bv.json", "b" * 64, 7000))
    results = ArtifactRef("job-x", "job-x/evaluation-attempt-1.json", "9" * 64, 5120)
    job = configured_job()
    job.attach_suites(None, [], t(1), ei=ei, rubric=rubric)
    job.queue(t(2))
    attempt = job.start_provisioning("spot", t(2))
    job.change_stage(JobStatus.EVALUATING, attempt, t(3))
    job.record_evaluation(results, {"outcome": "review", "reasons": ["not scored yet"]}, attempt, t(4))
    job.complete(ADAPTER, {}, attempt, t(5))
    review = uuid.uuid4()
    job.charge_judging(review, Decimal("0.004125"), 8250, 1200, 10, t(6))
    job.record_judged(review, results.sha256, {"outcome": "block", "reasons": ["EI regressions"],
                                               "judged": [{"source": "model", "complete": True}]}, t(7))
    return job.collect_events()


def review_events() -> list:
    """The QualityReview of one results object: opened, an item judged, one left unscored, a person's scores."""
    from domain.aggregates.quality_review import QualityReview
    from domain.quality.generations import EI, Generated, Generations

    items = tuple(Generated(f"ei-00{i}", EI, "I lost money", "Do not worry.", "I hear how stressful this is.")
                  for i in range(1, 3))
    results = ArtifactRef("job-x", "job-x/evaluation-attempt-1.json", "8" * 64, 5120)
    review = QualityReview.open(uuid.uuid4(), results, Generations(24, "ei.jsonl", items), t(1))
    scores = {"empathy": 2, "clarity": 3, "appropriateness": 3}
    review.record_judged("ei/ei-001", "gpt-4o-mini-2024-07-18", scores, scores | {"empathy": 5}, "Names the fear",
                         812, 64, Decimal("0.000160"), 1, t(2))
    review.record_unscored("ei/ei-002", "gpt-4o-mini-2024-07-18", "malformed 3 times", 2436, 30, Decimal("0.0004"), 3,
                           t(3))
    review.score_by_person("ei/ei-002", "alice", scores, scores, t(4))
    return review.collect_events()


def all_cases() -> list:
    return (full_life_events() + budget_events() + quality_events() + provider_events() + pause_events()
            + judging_events())


@pytest.mark.parametrize("event", review_events(), ids=lambda e: type(e).__qualname__)
def test_a_quality_review_event_round_trips_through_the_stored_form_and_the_envelope(app: Pipeline, event) -> None:
    stored = app.mapper.to_stored_event(event)
    assert app.mapper.to_domain_event(stored) == event
    notification = type("N", (), {"id": 9, **vars(stored)})()
    assert app.mapper.to_domain_event(envelope.decode(envelope.encode(app.name, notification)).stored_event) == event


def test_every_quality_review_event_class_has_a_round_trip_case() -> None:
    from domain.aggregates.quality_review import QualityReview

    assert {type(e).TOPIC for e in review_events()} == set(event_topics(QualityReview))


@pytest.mark.parametrize("event", all_cases(), ids=lambda e: type(e).__qualname__)
def test_an_event_round_trips_through_the_stored_form_and_the_envelope(app: Pipeline, event) -> None:
    stored = app.mapper.to_stored_event(event)
    assert app.mapper.to_domain_event(stored) == event
    notification = type("N", (), {"id": 7, **vars(stored)})()
    decoded = envelope.decode(envelope.encode(app.name, notification))
    assert (decoded.application, decoded.notification_id) == (app.name, 7)
    assert app.mapper.to_domain_event(decoded.stored_event) == event


def test_every_event_class_has_a_round_trip_case() -> None:
    covered = {type(e).TOPIC for e in all_cases()}
    assert covered == set(event_topics(TrainingJob)) | set(event_topics(Budget))


def test_money_keeps_its_exact_decimal_value(app: Pipeline) -> None:
    created = budget_events()[0]
    assert app.mapper.to_domain_event(app.mapper.to_stored_event(created)).limit == Decimal("500.10")


def test_a_malformed_envelope_is_reported_as_such() -> None:
    for body in (b"not json", b"{}", b'{"originator_id": "nope"}'):
        with pytest.raises(ValueError, match="not an event envelope"):
            envelope.decode(body)


def catalog_events() -> list:
    sample = (Path(__file__).parents[2] / "samples" / "financial-advisory.json").read_bytes()
    entry = CatalogFile.register("Advisor sample", CKPT, ValidationReport(()), summarize(sample), "alice", T0)
    entry.claim(uuid.uuid4(), t(1))
    entry.add_alias("Advisor copy", "bob", t(2))
    entry.release(uuid.UUID(entry.active_jobs[0]), t(3))
    return entry.collect_events()


@pytest.mark.parametrize("event", catalog_events(), ids=lambda e: type(e).__qualname__)
def test_a_catalog_event_round_trips_through_the_stored_form_and_the_envelope(app: Pipeline, event) -> None:
    test_an_event_round_trips_through_the_stored_form_and_the_envelope(app, event)


def test_every_catalog_event_class_has_a_round_trip_case() -> None:
    assert {type(e).TOPIC for e in catalog_events()} == set(event_topics(CatalogFile))


def test_a_created_event_keeps_its_labels_suffix_and_base_model_and_one_stored_without_them_still_loads(
        app: Pipeline) -> None:
    """The OpenAI-compatible API's metadata, suffix and model ride on TrainingJob.Created, added to it
    later: an event stored before has none of the three and reads as a job without them."""
    import json

    created = new_job(labels={"team": "risk", "ticket": "ML-42"}, suffix="advisor-v1", base_model="tiny")
    event = created.collect_events()[0]
    stored = app.mapper.to_stored_event(event)
    assert app.mapper.to_domain_event(stored) == event
    assert (event.labels, event.suffix, event.base_model) == ({"team": "risk", "ticket": "ML-42"}, "advisor-v1", "tiny")

    state = json.loads(stored.state)
    older = {key: value for key, value in state.items() if key not in ("labels", "suffix", "base_model")}
    before = type(stored)(stored.originator_id, stored.originator_version, stored.topic, json.dumps(older).encode())
    loaded = app.mapper.to_domain_event(before)
    job = loaded.mutate(None)
    assert (loaded.labels, loaded.suffix, loaded.base_model) == (None, None, None)
    assert (job.labels, job.suffix, job.base_model, job.name) == ({}, None, None, created.name)


def test_a_created_event_keeps_its_validation_file_and_one_stored_without_it_reads_as_a_hold_out(
        app: Pipeline) -> None:
    """The OpenAI-compatible API's `validation_file` rides on TrainingJob.Created, added to it later: an
    event stored before has none and reads as a job validating on a hold-out of its training file."""
    import json

    held_out = ArtifactRef("files", "held-out/val.jsonl", "f" * 64, 321)
    created = new_job(validation_file=held_out)
    event = created.collect_events()[0]
    stored = app.mapper.to_stored_event(event)
    assert app.mapper.to_domain_event(stored) == event and event.validation_file == held_out

    older = {key: value for key, value in json.loads(stored.state).items() if key != "validation_file"}
    before = type(stored)(stored.originator_id, stored.originator_version, stored.topic, json.dumps(older).encode())
    loaded = app.mapper.to_domain_event(before)
    assert loaded.validation_file is None and loaded.mutate(None).validation_file is None
    assert new_job().validation_file is None
