"""The delivery gate on the job (docs/quality-validation.md): evaluations recorded from the pod's
results object once, a failure noted instead of a made-up score, a manager's release, a new
evaluation superseding it, re-evaluation jobs, the suites in the pod's spec and the completion
notice. The figures are the domain's `summary` of item-level results built from real answers."""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from domain.aggregates.budget import PermissionDeniedError
from domain.aggregates.probe_suite import ProbeSuite
from domain.aggregates.training_job import IllegalTransitionError, TrainingJob
from domain.applications import BudgetPolicy, Pipeline
from domain.budget_month import budget_month
from domain.cost_model import estimate_cost
from domain.gpu import PricingTier, gpu_option
from domain.job_metadata import InvalidJobError
from domain.job_status import JobStatus
from domain.presets import preset_named
from domain.quality import load_knowledge_suite
from domain.quality.cost import evaluation_hours
from domain.quality.delivery import SuiteRef
from domain.quality.perplexity import Sample
from domain.quality.results import EvaluationResults, SuiteAnswers, parse, summary
from domain.quality.retention import Answer
from domain.retries import same_configuration
from domain.values import ArtifactRef
from handlers.evaluation import evaluation_inputs, evaluation_spec
from handlers.notifications.notices import job_notice
from handlers.provisioning import AgentSettings, Provisioner
from handlers.telemetry import TelemetryHandler
from infra.objectstore import ArtifactMissingError
from infra.pod_env import decode_json
from infra.telemetry import Telemetry
from projections.event_messages import category, message
from tests.factories import T0, configuration, queue_sample_job

ADAPTER = ArtifactRef("job-x", "job-x/adapter-attempt-1.tar", "d" * 64, 4096)
SHIPPED_BYTES = (Path(__file__).resolve().parents[2] / "samples" / "suites" / "financial-knowledge.jsonl").read_bytes()


@pytest.fixture
def app() -> Pipeline:
    return Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=BudgetPolicy(default_limit=5000))


def answered(retained: int, category_: str = "retirement", critical: bool = False) -> tuple[Answer, ...]:
    """Twenty questions the base model answers right; the adapter keeps `retained` of them."""
    return tuple(Answer(f"{category_}-{i}", category_, "basic", "A", "A", "A" if i < retained else "B", critical)
                 for i in range(20))


def results(job_id: uuid.UUID, attempt: int, retained: int, probes: tuple[SuiteAnswers, ...] = ()) -> bytes:
    samples = tuple(Sample(f"c{i}", persona, arc, "taxes", 100, math.log(24.5) * 100, math.log(16.8) * 100)
                    for i, (persona, arc) in enumerate([("Anxious Investor", "fear"), ("Pragmatic Skeptic", "calm")]))
    return EvaluationResults(str(job_id), attempt, samples, {("Anxious Investor", "fear"): 12},
                             SuiteAnswers("financial-knowledge.jsonl", answered(retained)), probes).to_json()


class Store:
    """The object store as the handler sees it (bytes by reference, digest checked), in memory."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, job_id: uuid.UUID, attempt: int, data: bytes) -> ArtifactRef:
        ref = ArtifactRef(f"job-{job_id}", f"{job_id}/evaluation-attempt-{attempt}.json",
                          hashlib.sha256(data).hexdigest(), len(data))
        self.objects[ref.sha256] = data
        return ref

    def read(self, ref: ArtifactRef) -> bytes:
        if ref.sha256 not in self.objects:
            raise ArtifactMissingError(f"no object {ref.bucket}/{ref.name}")
        return self.objects[ref.sha256]


def send(handler: TelemetryHandler, job_id: uuid.UUID, attempt: int, kind: str, data: dict, seq: int = 1) -> None:
    body = Telemetry(job_id=str(job_id), attempt=attempt, seq=seq, kind=kind,  # type: ignore[arg-type]
                     at=datetime.now(timezone.utc).isoformat(), data=data)
    handler.handle(body.subject, body.model_dump_json().encode())


def evaluating(app: Pipeline) -> tuple[uuid.UUID, int]:
    job_id = queue_sample_job(app)
    now = datetime.now(timezone.utc)
    attempt = app.update_job(job_id, lambda job: job.start_provisioning("spot", now))
    app.update_job(job_id, lambda job: job.pod_started("pod-1", attempt, Decimal("2.49"), now))
    for stage in (JobStatus.TRAINING, JobStatus.FINALIZATION, JobStatus.EVALUATING):
        app.update_job(job_id, lambda job, s=stage: job.change_stage(s, attempt, now))
    return job_id, attempt


def completed(app: Pipeline, store: Store, retained: int) -> tuple[uuid.UUID, ArtifactRef, TelemetryHandler]:
    job_id, attempt = evaluating(app)
    ref = store.put(job_id, attempt, results(job_id, attempt, retained))
    handler = TelemetryHandler(app, read_object=store.read)
    send(handler, job_id, attempt, "completed", {"adapter": ADAPTER.as_dict(), "metrics": {"final_loss": 0.3},
                                                 "evaluation": ref.as_dict()})
    return job_id, ref, handler


def kinds(app: Pipeline, job_id: uuid.UUID) -> list[str]:
    return [type(e).__name__ for e in app.repository.event_store.get(job_id)]


def test_the_evaluation_and_the_completion_are_recorded_together_and_the_same_results_count_once(app) -> None:
    store = Store()
    job_id, ref, handler = completed(app, store, retained=20)
    job = app.get_job(job_id)
    assert job.status is JobStatus.COMPLETED and job.gate_outcome == "pass" and not job.delivery_blocked
    assert job.evaluation["summary"] == summary(parse(store.objects[ref.sha256]))
    assert job.evaluation["summary"]["perplexity"]["badge"] == "✓ Production Ready"
    assert kinds(app, job_id)[-2:] == ["Evaluated", "Completed"]
    for seq in (2, 3):  # a redelivered completion, and the same results from a re-sent message
        send(handler, job_id, 1, "completed", {"adapter": ADAPTER.as_dict(), "evaluation": ref.as_dict()}, seq)
    assert kinds(app, job_id).count("Evaluated") == 1
    older = store.put(job_id, 1, results(job_id, 1, retained=5))
    app.update_job(job_id, lambda j: j.record_evaluation(older, {"outcome": "block"}, 0, datetime.now(timezone.utc)))
    assert kinds(app, job_id).count("Evaluated") == 1 and app.get_job(job_id).gate_outcome == "pass"


def test_a_missing_or_malformed_results_object_is_a_failure_note_and_the_job_still_completes(app) -> None:
    store = Store()
    for data, why in ((None, "is missing from the object store"), (b'{"format_version": 1}', "malformed"),
                      (b"not json", "malformed")):
        job_id, attempt = evaluating(app)
        ref = store.put(job_id, attempt, data) if data is not None else ArtifactRef(
            f"job-{job_id}", "gone.json", "0" * 64, 10)
        send(TelemetryHandler(app, read_object=store.read), job_id, attempt, "completed",
             {"adapter": ADAPTER.as_dict(), "evaluation": ref.as_dict()})
        job = app.get_job(job_id)
        assert job.status is JobStatus.COMPLETED and job.evaluation is None and why in job.evaluation_failure["reason"]
        assert job.gate_outcome is None and not job.delivery_blocked
        failed = next(e for e in app.repository.event_store.get(job_id) if isinstance(e, TrainingJob.EvaluationFailed))
        assert category(failed) == "warning" and "the job completes without a gate outcome" in message(failed)
    job_id, attempt = evaluating(app)  # results of another job: refused, not recorded as this job's
    ref = store.put(job_id, attempt, results(uuid.uuid4(), attempt, 20))
    send(TelemetryHandler(app, read_object=store.read), job_id, attempt, "completed",
         {"adapter": ADAPTER.as_dict(), "evaluation": ref.as_dict()})
    assert "not this job's attempt" in app.get_job(job_id).evaluation_failure["reason"]


def test_only_a_manager_releases_a_blocked_adapter_and_a_new_evaluation_supersedes_the_release(app) -> None:
    store = Store()
    job_id, _, _ = completed(app, store, retained=15)  # 75 % retention: catastrophic forgetting
    job = app.get_job(job_id)
    assert job.delivery_blocked and "Knowledge retention 75%" in job.delivery_block_reason
    now = datetime.now(timezone.utc)
    with pytest.raises(PermissionDeniedError, match="manager or admin"):
        app.override_delivery(job_id, actor="alice", role="member", justification="x" * 40, at=now)
    with pytest.raises(InvalidJobError, match="at least 20 characters"):
        app.override_delivery(job_id, actor="bob", role="manager", justification="  client ok   ", at=now)
    app.override_delivery(job_id, actor="bob", role="manager",
                          justification="Client signed off the knowledge loss in writing", at=now)
    job = app.get_job(job_id)
    assert not job.delivery_blocked and job.delivery_override["actor"] == "bob"
    released = next(e for e in app.repository.event_store.get(job_id) if isinstance(e, TrainingJob.DeliveryOverridden))
    assert message(released) == ("Delivery released by bob despite the quality gate's block: Client signed off the"
                                 " knowledge loss in writing")
    with pytest.raises(InvalidJobError, match="already released by bob"):
        app.override_delivery(job_id, actor="root", role="admin", justification="y" * 30, at=now)
    # a re-evaluation's results (another job's pod) supersede the release: blocked again
    again = store.put(job_id, 2, results(job_id, 2, retained=10))
    app.update_job(job_id, lambda j: j.record_evaluation(again, summary(parse(store.read(again))), 1, now,
                                                         evaluated_by=uuid.uuid4()))
    assert app.get_job(job_id).delivery_blocked and app.get_job(job_id).delivery_override is None
    passing = store.put(job_id, 3, results(job_id, 3, retained=20))
    with pytest.raises(InvalidJobError, match="blocked can be released"):
        app.update_job(job_id, lambda j: (j.record_evaluation(passing, summary(parse(store.read(passing))), 1, now,
                                                              evaluated_by=uuid.uuid4()),
                                          j.override_delivery("bob", "manager", "z" * 30, now)))
    app.update_job(job_id, lambda j: j.record_evaluation(passing, summary(parse(store.read(passing))), 1, now,
                                                         evaluated_by=uuid.uuid4()))
    assert app.get_job(job_id).gate_outcome == "pass" and not app.get_job(job_id).delivery_blocked


def test_a_critical_probe_category_that_regressed_blocks_and_the_completion_notice_says_so(app) -> None:
    store = Store()
    job_id, attempt = evaluating(app)
    probes = (SuiteAnswers("acme-probes.csv", answered(19, "compliance", critical=True) + answered(20, "products")),)
    ref = store.put(job_id, attempt, results(job_id, attempt, 20, probes))
    send(TelemetryHandler(app, read_object=store.read), job_id, attempt, "completed",
         {"adapter": ADAPTER.as_dict(), "metrics": {"final_loss": 0.31}, "evaluation": ref.as_dict()})
    job = app.get_job(job_id)
    assert job.gate_outcome == "block" and job.evaluation["summary"]["reasons"] == [
        "acme-probes.csv: compliance knowledge 95% retention (acceptable threshold: 100%)"]
    done = next(e for e in app.repository.event_store.get(job_id) if isinstance(e, TrainingJob.Completed))
    notice = job_notice(done, job, "https://pipeline.example")
    assert notice.subject.endswith("— ✗ Delivery blocked") and notice.headline.endswith("— ✗ Delivery blocked")
    facts = dict(notice.facts)
    assert facts["Quality gate"] == "✗ Delivery blocked" and facts["Knowledge retention"] == "100% (✓ Passed)"
    assert facts["Perplexity"] == "24.5 → 16.8 (31% improvement, ✓ Production Ready)"
    review = ("Review Quality (delivery blocked)", f"https://pipeline.example/jobs/{job_id}?tab=quality")
    assert review in notice.actions
    assert all(label != "Download Adapters" for label, _ in notice.actions)


def suite_ref(app: Pipeline, name: str, body: bytes, kind: str = "probes") -> SuiteRef:
    suite = load_knowledge_suite(body, name)
    file = ArtifactRef("files", f"{hashlib.sha256(body).hexdigest()[:16]}/{name}", hashlib.sha256(body).hexdigest(),
                       len(body))
    return app.register_suite(suite, kind, file, "carol", T0).ref


PROBES = (b"id,category,question,A,B,C,D,answer,critical\n"
          b"c-01,compliance,Who writes broker-dealer conduct rules?,FINRA,FDIC,OCC,NCUA,A,yes\n"
          b"p-01,products,Which IRA takes after-tax money?,Roth,Traditional,Both,Neither,A,\n")


def test_a_reevaluation_is_costed_budget_checked_and_its_figures_count_for_the_original(app) -> None:
    store = Store()
    original, _, _ = completed(app, store, retained=15)
    probes = suite_ref(app, "acme-probes.csv", PROBES)
    with pytest.raises(Exception, match="Only a completed job"):
        app.reevaluate_job(queue_sample_job(app), knowledge=None, probes=[probes], questions=2, actor="bob",
                           role="manager", at=T0)
    new_id, _ = app.reevaluate_job(original, knowledge=None, probes=[probes], questions=2, actor="bob",
                                   role="manager", at=datetime.now(timezone.utc))
    job = app.get_job(new_id)
    assert (job.evaluates, job.evaluates_adapter, job.status) == (original, ADAPTER, JobStatus.QUEUED)
    assert job.name.endswith("(Re-evaluation)") and job.probe_suites == [probes] and job.knowledge_suite is None
    config = job.configuration
    assert config["estimation_algorithm"] == "evaluation-1" and 0 < config["estimated_cost_max"] < Decimal(5)
    budget = app.budget(budget_month(job.queued_at, "UTC"))
    assert budget is not None and budget.reservations[str(new_id)] == config["estimated_cost_max"]
    # its pod runs in evaluate mode on the stored adapter and the probes, staged into its bucket
    provisioner = Provisioner(app, provider=None, agent=AgentSettings(nats_url="nats://x"),  # type: ignore[arg-type]
                              stage=lambda job_id, refs: [ArtifactRef(f"job-{job_id}", f"staged/{r.bucket}/{r.name}",
                                                                      r.sha256, r.size) for r in refs])
    spec = decode_json(provisioner.pod_env(job, 1)["PIPELINE_JOB_CONFIG"], "PIPELINE_JOB_CONFIG")
    assert spec["mode"] == "evaluate" and spec["adapter"]["name"] == f"staged/{ADAPTER.bucket}/{ADAPTER.name}"
    assert spec["evaluation"] == {"knowledge": None, "probes": [
        {"bucket": f"job-{new_id}", "name": f"staged/files/{probes.file.name}", "sha256": probes.file.sha256,
         "size": probes.file.size}]}
    # the re-evaluation completes: its figures are recorded on it and on the original, whose gate they decide
    now = datetime.now(timezone.utc)
    attempt = app.update_job(new_id, lambda j: j.start_provisioning("spot", now))
    app.update_job(new_id, lambda j: j.change_stage(JobStatus.EVALUATING, attempt, now))
    ref = store.put(new_id, attempt, results(new_id, attempt, retained=20))
    send(TelemetryHandler(app, read_object=store.read), new_id, attempt, "completed", {"evaluation": ref.as_dict()})
    assert app.get_job(new_id).status is JobStatus.COMPLETED and app.get_job(new_id).adapter == ADAPTER
    first = app.get_job(original)
    assert first.gate_outcome == "pass" and first.evaluation["evaluated_by"] == new_id
    assert "by re-evaluation job" in message(next(e for e in reversed(list(app.repository.event_store.get(original)))
                                                  if isinstance(e, TrainingJob.Evaluated)))


def test_the_suite_catalog_keeps_each_content_once_and_a_job_carries_its_suites_into_the_pod_spec(app) -> None:
    knowledge = suite_ref(app, "financial-knowledge.jsonl", SHIPPED_BYTES, "knowledge")
    probes = suite_ref(app, "acme-probes.csv", PROBES)
    shipped = app.suite(knowledge.suite_id)
    assert shipped is not None and shipped.questions == 100 and shipped.categories[0] == {
        "name": "taxes", "questions": 25, "critical": False, "threshold": "95"}
    assert app.suite(probes.suite_id).categories == [  # type: ignore[union-attr]
        {"name": "compliance", "questions": 1, "critical": True, "threshold": "100"},
        {"name": "products", "questions": 1, "critical": False, "threshold": "95"}]
    again = app.register_suite(load_knowledge_suite(SHIPPED_BYTES, "copy.jsonl"), "knowledge", knowledge.file, "dave",
                               T0)
    assert (again.id, again.name, again.registered_by) == (knowledge.suite_id, "financial-knowledge.jsonl", "carol")
    job = TrainingJob.create(uuid.uuid4(), name="Suites", training_file=ADAPTER, file_name="f.json",
                             conversation_count=60, pair_count=300, created_by="alice", at=T0)
    job.attach_suites(knowledge, [probes, probes], T0)
    assert job.probe_suites == [probes]
    inputs = evaluation_inputs(job)
    assert inputs == [knowledge.file, probes.file]
    assert evaluation_spec(job, inputs) == {"evaluation": {"knowledge": knowledge.file.as_dict(),
                                                           "probes": [probes.file.as_dict()]}}
    started = queue_sample_job(app)
    with pytest.raises(IllegalTransitionError, match="before the job starts"):
        app.update_job(started, lambda j: j.attach_suites(knowledge, [probes], T0))


def test_a_retry_is_evaluated_on_the_suites_of_the_job_it_retries(app) -> None:
    knowledge = suite_ref(app, "acme-probes.csv", PROBES)
    job_id = app.create_job(name="Suited", training_file=ADAPTER, file_name="f.json", conversation_count=60,
                            pair_count=300, created_by="alice", at=T0)
    app.configure_job(job_id, **configuration(hyperparameters=preset_named("balanced").as_config()))
    app.update_job(job_id, lambda j: j.attach_suites(None, [knowledge], T0))
    app.start_job(job_id, "alice", "member", T0)
    assert app.get_job(job_id).probe_suites == [knowledge]
    app.update_job(job_id, lambda j: j.cancel("testing", "", "alice", T0))  # type: ignore[arg-type]
    retry_id, _ = app.retry_job(job_id, same_configuration(app.get_job(job_id)), actor="alice", role="member",
                                at=T0 + timedelta(minutes=1))
    assert app.get_job(retry_id).probe_suites == [knowledge]


def test_the_evaluation_adds_under_ten_percent_to_a_balanced_run_at_the_spec_suite_sizes() -> None:
    """FR1.2.1's worked example (1,567 pairs, Balanced, 3 epochs) with the spec's 100 knowledge
    questions and 100 client probes (FR6.3.2's upper size)."""
    gpu = gpu_option(PricingTier.SPOT)
    training = estimate_cost(preset_named("balanced"), 1567, gpu).duration_hours
    share = evaluation_hours("balanced", 1567, 200) / training
    assert Decimal("0.03") < share < Decimal("0.10"), share


def test_the_evaluation_telemetry_reports_progress_throttled_only_while_evaluating(app) -> None:
    job_id, attempt = evaluating(app)
    handler = TelemetryHandler(app)
    for done in (1, 2, 3):  # within 10 s: the first only, then the part's end
        send(handler, job_id, attempt, "evaluation", {"part": "perplexity", "done": done, "total": 3}, done)
    assert app.get_job(job_id).evaluation_progress == {"part": "perplexity", "done": 3, "total": 3}
    assert kinds(app, job_id).count("EvaluationProgressed") == 2
    send(handler, job_id, attempt, "evaluation", {"part": "acme", "done": 1}, 9)  # malformed: ignored
    assert kinds(app, job_id).count("EvaluationProgressed") == 2
    assert json.loads(json.dumps(app.get_job(job_id).evaluation_progress))["total"] == 3


def test_a_suite_registration_round_trips_through_the_stored_form(app) -> None:
    from domain.aggregates.probe_suite import ProbeSuite

    body = PROBES
    file = ArtifactRef("files", "ab/acme-probes.csv", hashlib.sha256(body).hexdigest(), len(body))
    [created] = ProbeSuite.register(load_knowledge_suite(body, "acme-probes.csv"), "probes", file, "carol",
                                    T0).collect_events()
    assert app.mapper.to_domain_event(app.mapper.to_stored_event(created)) == created
    with pytest.raises(ValueError, match="not one of"):
        ProbeSuite.register(load_knowledge_suite(body, "acme-probes.csv"), "rubric", file, "carol", T0)
