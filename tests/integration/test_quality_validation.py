"""Quality validation end to end on the control plane (FR6.1.1, FR6.1.2, FR6.3.1, FR6.3.2;
docs/quality-validation.md), on real PostgreSQL and NATS: suites uploaded and attached through the
API, item-level results produced by the pod's scorer (gpu_agent.evaluation.evaluate) on a tiny Llama
with a LoRA adapter, stored in the job's bucket and reported by telemetry; then the Quality tab, the
exports, the lists, the report, and the delivery gate on the downloads with a manager's release."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from pypdf import PdfReader

torch = pytest.importorskip("torch")

from domain.job_status import JobStatus  # noqa: E402
from domain.quality import load_knowledge_suite  # noqa: E402
from domain.quality.perplexity import CATEGORIES, by_category, heatmap  # noqa: E402
from domain.quality.results import EvaluationResults, summary  # noqa: E402
from domain.values import ArtifactRef  # noqa: E402
from handlers.evaluation import fetch_bytes  # noqa: E402
from handlers.telemetry import TelemetryHandler  # noqa: E402
from infra import bus  # noqa: E402
from infra.objectstore import ObjectStore  # noqa: E402
from infra.telemetry import Telemetry  # noqa: E402
from tests.web_rig import WebRig, web  # noqa: E402,F401 - the fixture

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "financial-advisory.json"
SHIPPED = ROOT / "samples" / "suites" / "financial-knowledge.jsonl"
HTML = {"Accept": "text/html"}
PROBE_QUESTIONS = 12


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """A tiny model's forward pass is ~5 ms on one thread; on a loaded 2-core machine torch's second
    thread makes it 20 times slower (measured: 0.8 s against 35 ms per question)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def scorer(one_thread: None) -> dict[str, Any]:
    """A tiny Llama with a LoRA adapter (CPU, seconds), its tokenizer, and a training file's split."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from gpu_agent.config import JobSpec
    from gpu_agent.data import examples, split
    from gpu_agent.model import build_tokenizer
    from tests.agent_helpers import small_training_file

    torch.manual_seed(3)
    training_file, items = examples(small_training_file(12))
    tokenizer = build_tokenizer(JobSpec(training_file=None, hyperparameters={}),  # type: ignore[arg-type]
                                [m["content"] for e in items for m in e.messages])
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
                         pad_token_id=tokenizer.pad_token_id)
    model = get_peft_model(LlamaForCausalLM(config), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                                task_type="CAUSAL_LM"))
    halves = split(items)
    validation = [(e.conversation_id, {"input_ids": tokenizer.apply_chat_template(e.messages, tokenize=True,
                                                                                  return_dict=False)})
                  for e in halves.validation]
    return {"model": model, "tokenizer": tokenizer, "training_file": training_file, "validation": validation,
            "train": [e.conversation_id for e in halves.train]}


def probe_csv(scorer: dict[str, Any]) -> bytes:
    """A client's compliance probes, marked critical, that the base model answers right: twelve of the
    shipped questions, the answer key set to the base model's own choice."""
    from gpu_agent.evaluation import choose

    questions = load_knowledge_suite(SHIPPED.read_bytes(), SHIPPED.name).questions[:PROBE_QUESTIONS]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "category", "question", "A", "B", "C", "D", "answer", "critical"])
    with scorer["model"].disable_adapter():
        for q in questions:
            writer.writerow([f"acme-{q.id}", "compliance", q.question, *q.choices,
                             choose(scorer["model"], scorer["tokenizer"], q), "yes"])
    return out.getvalue().encode()


def score(scorer: dict[str, Any], job_id: UUID, spread: float, probes: bytes) -> EvaluationResults:
    """The pod's evaluation with an adapter whose B matrices are drawn at `spread` (a trained adapter
    moves the model a little; a damaged one, trained at a huge learning rate, a lot)."""
    from gpu_agent.evaluation import evaluate

    model = scorer["model"]
    torch.manual_seed(11)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, spread)
    knowledge = load_knowledge_suite(SHIPPED.read_bytes(), SHIPPED.name)
    return evaluate(model, scorer["tokenizer"], scorer["training_file"], scorer["validation"], scorer["train"],
                    knowledge, [load_knowledge_suite(probes, "acme-probes.csv")], str(job_id), 1)


def put(web: WebRig, job_id: UUID, name: str, body: bytes) -> ArtifactRef:
    async def run() -> ArtifactRef:
        nc = await bus.connect(web.nats_url, "test-quality")
        try:
            bucket = await bus.ensure_job_bucket(nc.jetstream(), str(job_id))
            return await ObjectStore(nc.jetstream()).put_fileobj(bucket, f"{job_id}/{name}", io.BytesIO(body))
        finally:
            await nc.close()

    return asyncio.run(run())


def reader(web: WebRig):
    """The handlers worker's read_object, on this rig's NATS."""
    def read(ref: ArtifactRef) -> bytes:
        async def run() -> bytes:
            nc = await bus.connect(web.nats_url, "test-quality-read")
            try:
                return await fetch_bytes(ObjectStore(nc.jetstream()), ref)
            finally:
                await nc.close()

        return asyncio.run(run())

    return read


def send(handler: TelemetryHandler, job_id: UUID, kind: str, data: dict[str, Any], seq: int) -> None:
    body = Telemetry(job_id=str(job_id), attempt=1, seq=seq, kind=kind,  # type: ignore[arg-type]
                     at=datetime.now(timezone.utc).isoformat(), data=data)
    handler.handle(body.subject, body.model_dump_json().encode())


def evaluated_job(web: WebRig, scorer: dict[str, Any], spread: float, name: str,
                  probes: bytes | None = None) -> tuple[UUID, EvaluationResults, dict[str, Any]]:
    """A job created through the API with the probes attached, trained, evaluated on its pod and
    completed: its id, the pod's results and their summary as the domain computes it."""
    api = web.client()
    token = web.token("alice")
    catalogue = api.post("/api/files", headers=token, files={"file": ("advisor.json", SAMPLE.read_bytes())})
    assert catalogue.status_code == 201, catalogue.text
    suite = api.post("/api/suites", headers=token,
                     files={"file": ("acme-probes.csv", probes or probe_csv(scorer), "text/csv")})
    assert suite.status_code == 201, suite.text
    created = api.post("/api/jobs", headers=token, json={"training_file_id": catalogue.json()["id"], "name": name,
                                                         "probe_suite_ids": [suite.json()["id"]]})
    assert created.status_code == 201, created.text
    job_id = UUID(created.json()["id"])
    app, now = web.store.app, datetime.now(timezone.utc)
    job = app.get_job(job_id)
    assert job.knowledge_suite.name == "financial-knowledge.jsonl"  # type: ignore[union-attr]
    assert [s.name for s in job.probe_suites] == ["acme-probes.csv"]
    attempt = app.update_job(job_id, lambda j: j.start_provisioning("spot", now))
    app.update_job(job_id, lambda j: j.pod_started("pod-1", attempt, Decimal("2.49"), now))
    for stage in (JobStatus.TRAINING, JobStatus.FINALIZATION, JobStatus.EVALUATING):
        app.update_job(job_id, lambda j, s=stage: j.change_stage(s, attempt, datetime.now(timezone.utc)))
    handler = TelemetryHandler(app, read_object=reader(web))
    send(handler, job_id, "evaluation", {"part": "perplexity", "done": 1, "total": 3}, 1)
    results = score(scorer, job_id, spread, probes or probe_csv(scorer))
    evaluation = put(web, job_id, "evaluation-attempt-1.json", results.to_json())
    adapter = web.store_adapter(job_id, b"adapter bytes of " + name.encode())
    for seq in (2, 3):  # the completion arrives twice (a redelivery): its results count once
        send(handler, job_id, "completed", {"adapter": adapter.as_dict(), "metrics": {"final_loss": 0.4},
                                            "evaluation": evaluation.as_dict()}, seq)
    web.project()
    return job_id, results, summary(results)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&amp;", "&").replace("&#39;", "'")


@pytest.mark.slow  # about 30 s: the scorer runs the 112 questions on both models
def test_a_job_evaluated_on_its_pod_shows_every_figure_tab_and_export(web: WebRig, scorer) -> None:
    job_id, results, shown = evaluated_job(web, scorer, 0.02, "Advisor tone evaluated")
    app = web.store.app
    kinds = [type(e).__name__ for e in app.repository.event_store.get(job_id)]
    assert kinds.count("Evaluated") == 1 and kinds[-2:] == ["Evaluated", "Completed"]
    assert "SuitesAttached" in kinds and "EvaluationProgressed" in kinds

    tab = web.client("alice").get(f"/jobs/{job_id}?tab=quality", headers=HTML)
    assert tab.status_code == 200, tab.text
    page = text_of(tab.text)
    ppl, knowledge, probes = shown["perplexity"], shown["knowledge"], shown["probes"][0]
    assert f"{ppl['baseline']:.1f}" in page and f"{ppl['trained']:.1f}" in page and ppl["badge"] in page
    assert f"{ppl['improvement_percent']:.1f}%" in page and results.perplexity().interpretation in page
    assert f"{knowledge['retention_percent']}%" in page and knowledge["verdict"] in page
    assert "acme-probes.csv" in page and f"{probes['retention_percent']}%" in page
    for key in CATEGORIES:  # the tables of FR6.1.2 with their best and worst
        for row in by_category(results.samples, key):
            assert row.name in page
    personas, arcs, _ = heatmap(results.samples)
    assert 'id="q-heatmap"' in tab.text and all(p in page for p in personas) and all(a in page for a in arcs)
    assert 'id="q-recommendations"' in tab.text and 'class="q-bars"' in tab.text
    label = {"pass": "✓ Approved for delivery", "review": "⚠ Review before client delivery",
             "block": "✗ Delivery blocked"}[shown["outcome"]]
    assert label in page and all(reason in page for reason in shown["reasons"])

    exported = web.client("alice").get(f"/jobs/{job_id}/quality/categories.csv")
    categories = list(csv.DictReader(io.StringIO(exported.text)))
    assert categories[0]["analysis"] == "overall"
    assert float(categories[0]["improvement_percent"]) == round(ppl["improvement_percent"], 2)
    assert {r["analysis"] for r in categories} == {"overall", "persona", "emotional_arc", "topic", "persona_x_arc"}
    answers = web.client("alice").get(f"/jobs/{job_id}/quality/questions.csv")
    assert answers.headers["content-disposition"] == f'attachment; filename="job-{job_id}-questions.csv"'
    rows = list(csv.DictReader(io.StringIO(answers.text)))
    assert len(rows) == 100 + PROBE_QUESTIONS
    shipped = {q.id: q for q in load_knowledge_suite(SHIPPED.read_bytes(), SHIPPED.name).questions}
    first = rows[0]
    assert first["question"] == shipped[first["question_id"]].question  # the text, from the suite catalog
    assert sum(r["regressed"] == "True" for r in rows if r["suite"] == SHIPPED.name) == knowledge["regressed"]

    api = web.client("alice").get(f"/api/jobs/{job_id}/quality").json()
    assert api["gate"]["outcome"] == shown["outcome"] and api["summary"] == json.loads(json.dumps(shown))
    listed = next(j for j in web.client().get("/api/jobs", headers=web.token("alice")).json() if j["id"] == str(job_id))
    assert Decimal(str(listed["perplexity_improvement"])) == Decimal(str(ppl["improvement_percent"]))
    assert Decimal(str(listed["retention_percent"])) == Decimal(knowledge["retention_percent"])
    assert listed["quality_outcome"] == shown["outcome"]
    filtered = web.client("alice").get(f"/jobs?quality={shown['outcome']}", headers=HTML).text
    other = "block" if shown["outcome"] != "block" else "pass"
    assert "Advisor tone evaluated" in filtered
    assert "Advisor tone evaluated" not in web.client("alice").get(f"/jobs?quality={other}", headers=HTML).text
    analytics = text_of(web.client("alice").get(f"/analytics?quality={shown['outcome']}", headers=HTML).text)
    assert "Perplexity trend across runs" in analytics and "Advisor tone evaluated" in analytics
    assert "No evaluated run in this period" in text_of(
        web.client("alice").get(f"/analytics?quality={other}", headers=HTML).text)
    costs = web.client("alice").get(f"/api/finance/costs.json?quality={shown['outcome']}").json()
    assert [r["job_id"] for r in costs["rows"]] == [str(job_id)]
    assert web.client("alice").get("/api/finance/costs.json?quality=great").status_code == 400

    overview = text_of(web.client("alice").get(f"/jobs/{job_id}", headers=HTML).text)
    assert "Evaluation" in overview
    events = text_of(web.client("alice").get(f"/jobs/{job_id}?tab=events", headers=HTML).text)
    assert "Evaluated: " in events and "Evaluation suites: financial-knowledge.jsonl, acme-probes.csv" in events


@pytest.mark.slow
def test_a_damaged_adapters_forgetting_blocks_its_downloads_until_a_manager_releases_it(web: WebRig, scorer) -> None:
    job_id, _, shown = evaluated_job(web, scorer, 4.0, "Advisor tone diverged")
    assert shown["outcome"] == "block", shown  # every critical probe the base model knew, and more, was lost
    assert any("compliance knowledge" in r for r in shown["reasons"])
    alice, bob = web.client("alice"), web.client("bob")
    for path in (f"/jobs/{job_id}/adapter", f"/jobs/{job_id}/deployment-package"):
        refused = alice.get(path, headers=HTML)
        assert refused.status_code == 423 and "The quality gate blocked delivery of this adapter" in refused.text
    shared = web.form("alice", f"/jobs/{job_id}/deployment-package/share", {}, headers=HTML)
    assert shared.status_code == 423  # no share link for a blocked adapter either
    assert "✗ Delivery blocked: see Quality" in alice.get(f"/jobs/{job_id}", headers=HTML).text

    member = alice.post(f"/api/jobs/{job_id}/delivery-override", headers={"X-CSRF-Token": web.csrf("alice")},
                        json={"justification": "The client accepted the loss in writing"})
    assert member.status_code == 403 and "manager or admin" in member.json()["detail"]
    short = web.form("bob", f"/jobs/{job_id}/quality/override", {"justification": "ok by me"}, headers=HTML)
    assert short.status_code == 400 and "at least 20 characters" in short.text
    released = web.form("bob", f"/jobs/{job_id}/quality/override",
                        {"justification": "Client accepted the compliance regression in writing, ticket 4411"},
                        headers=HTML)
    assert released.status_code == 303, released.text
    web.project()
    download = alice.get(f"/jobs/{job_id}/adapter")
    assert download.status_code == 200 and download.content == b"adapter bytes of Advisor tone diverged"
    tab = text_of(bob.get(f"/jobs/{job_id}?tab=quality", headers=HTML).text)
    assert "bob released this adapter for delivery" in tab and "ticket 4411" in tab
    events = text_of(bob.get(f"/jobs/{job_id}?tab=events", headers=HTML).text)
    assert "Delivery released by bob despite the quality gate's block: Client accepted" in events
    audit = subprocess.run([sys.executable, "-m", "pipeline", "audit", "replay", "--job", str(job_id)],
                           env={**os.environ, "DATABASE_URL": web.database_url,
                                "NATS_URL": "nats://127.0.0.1:1"}, capture_output=True, text=True, timeout=120)
    assert audit.returncode == 0, audit.stderr
    released_line = next(line for line in audit.stdout.splitlines() if "TrainingJob.DeliveryOverridden" in line)
    assert "bob" in released_line and "ticket 4411" in released_line and '"outcome": "block"' in released_line
    report = bob.get(f"/jobs/{job_id}/report.pdf")
    text = " ".join(" ".join((p.extract_text() or "") for p in PdfReader(io.BytesIO(report.content)).pages).split())
    assert "Validation" in text and "Delivery blocked" in text and "Released by" in text

    # evaluated again on a new pod: a job of its own, costed and reserved on the budget
    suites = web.client().get("/api/suites", headers=web.token("bob")).json()
    assert {s["kind"] for s in suites} == {"knowledge", "probes", "ei", "rubric"}  # the shipped EI and rubric too
    again = web.client().post(f"/api/jobs/{job_id}/reevaluate", headers=web.token("bob"),
                              json={"suite_ids": [s["id"] for s in suites]})
    assert again.status_code == 201, again.text
    new = web.store.app.get_job(UUID(again.json()["id"]))
    assert new.evaluates == job_id and new.status is JobStatus.QUEUED and new.knowledge_suite is not None
    assert new.ei_suite is not None and new.rubric is not None and new.rubric.name == "Elena Morales voice"
    assert new.configuration["estimation_algorithm"] == "evaluation-1"  # type: ignore[index]


def test_a_bad_probe_suite_is_refused_with_the_place_of_each_problem(web: WebRig) -> None:
    bad = (b"id,category,question,A,B,C,D,answer\n"
           b"c-01,compliance,Who regulates broker-dealers?,FINRA,FDIC,OCC,NCUA,A\n"
           b"c-02,compliance,Which form reports wages?,W-2,1099,K-1,W-2,E\n")
    answer = web.client().post("/api/suites", headers=web.token("carol"),
                               files={"file": ("acme.csv", bad, "text/csv")})
    assert answer.status_code == 400
    body = answer.json()
    assert body["problem_count"] == 2
    assert [(p["place"], p["message"]) for p in body["problems"]] == [
        ("line 3: D", "Question #2 (c-02) has the same text for choices 'A' and 'D'"),
        ("line 3: answer", "Question #2 (c-02) has 'answer' 'E', expected one of A, B, C, D")]
    page = web.form("carol", "/suites", {}, headers=HTML, files={"file": ("acme.csv", bad, "text/csv")})
    assert page.status_code == 400 and "acme.csv has 2 problems: nothing was added" in text_of(page.text)
    assert "line 3: answer" in page.text
    web.project()
    assert sorted(s["kind"] for s in web.client().get("/api/suites", headers=web.token("carol")).json()) == [
        "ei", "knowledge", "rubric"]  # the shipped suites only
    unknown = web.client().post("/api/jobs", headers=web.token("carol"), json={
        "training_file_id": str(UUID(int=1)), "probe_suite_ids": [str(UUID(int=7))]})
    assert unknown.status_code == 400 and "probe_suite_ids[0]: there is no evaluation suite" in unknown.json()["detail"]


def test_a_job_without_figures_says_why_on_its_quality_tab_and_is_not_gated(web: WebRig) -> None:
    from tests.integration.test_web_job_detail import add_job, ago, run, training

    running, unread = add_job(web, name="Advisor still training"), add_job(web, name="Advisor unread results")
    training(web, running)
    training(web, unread)
    adapter = web.store_adapter(unread, b"adapter of a job whose results were lost")
    run(web, unread, lambda j: j.change_stage(JobStatus.EVALUATING, 1, ago(1)),
        lambda j: j.evaluation_failed("the results object x.json is missing from the object store", None, 1, ago(1)),
        lambda j: j.complete(adapter, {"final_loss": 0.3}, 1, ago(0)))
    web.project()
    alice = web.client("alice")
    assert "This job has no evaluation yet" in text_of(alice.get(f"/jobs/{running}?tab=quality", headers=HTML).text)
    tab = text_of(alice.get(f"/jobs/{unread}?tab=quality", headers=HTML).text)
    assert "No quality figures: the evaluation results could not be read (the results object x.json is missing" in tab
    assert alice.get(f"/jobs/{unread}/adapter").status_code == 200  # not evaluated: not gated
    assert alice.get(f"/jobs/{unread}/quality/categories.csv").status_code == 404
    assert alice.get(f"/api/jobs/{unread}/quality").json()["evaluation_failure"].startswith("the results object")
    assert "Evaluation results could not be read" in text_of(alice.get(f"/jobs/{unread}?tab=events",
                                                                       headers=HTML).text)
