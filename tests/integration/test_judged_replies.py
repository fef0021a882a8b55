"""Judged replies end to end on the control plane (FR6.2.1, FR6.2.2, FR6.4.1, FR6.4.2; docs/quality-validation.md),
on real PostgreSQL and NATS: a job created through the API carries the shipped EI scenarios and the Elena
Morales rubric into its pod's spec; the pod's evaluation (gpu_agent.evaluation.evaluate on a tiny Llama with a
LoRA adapter) generates both models' replies into the item-level results; the model judge — a local
OpenAI-compatible fake that scores by a documented rule and answers 429 and malformed JSON on demand — scores
them through the judging reactor; then the Quality tab, the CSVs, the gate on the downloads, /compare,
/analytics, the report and the budget line. A good adapter and a damaged one (its LoRA B matrices drawn 200
times wider, as a huge learning rate leaves them) give different gates. The judge's key is in no event, log
line or page. Two reviewers score crafted replies blind through the pages: their averages, disagreement, a
regression that blocks, and the retry with the suggested fix (the browser does the same against a whole
stack: tests/e2e/test_replies_review_in_browser.py)."""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus
from uuid import UUID

import psycopg
import pytest
from pypdf import PdfReader

torch = pytest.importorskip("torch")

from domain.aggregates.quality_review import QualityReview  # noqa: E402
from domain.budget_month import budget_month  # noqa: E402
from domain.job_status import JobStatus  # noqa: E402
from domain.quality import load_ei_suite, load_rubric  # noqa: E402
from domain.values import ArtifactRef  # noqa: E402
from handlers.judge_client import JudgeClient, JudgeConfig  # noqa: E402
from handlers.judging import JudgingReactor  # noqa: E402
from handlers.provisioning import AgentSettings, Provisioner  # noqa: E402
from handlers.telemetry import TelemetryHandler  # noqa: E402
from infra.pod_env import decode_json  # noqa: E402
from tests.fakes.judge import MODEL, FakeJudge, score  # noqa: E402
from tests.integration.test_quality_validation import (  # noqa: E402,F401 - fixtures
    HTML,
    SAMPLE,
    one_thread,
    put,
    reader,
    scorer,
    send,
    text_of,
)
from tests.web_rig import WebRig, web  # noqa: E402,F401 - the fixture

SUITES = Path(__file__).resolve().parents[2] / "samples" / "suites"
KEY = "sk-judge-integration-KEY-5f1e0c9a"
LABEL = f"model judge {MODEL}"


@pytest.fixture
def judge() -> Iterator[FakeJudge]:
    server = FakeJudge(api_key=KEY).start()
    yield server
    server.stop()


def judged_job(web: WebRig, scorer: dict[str, Any], spread: float, name: str) -> UUID:
    """A job created through the API (the EI scenarios and the shipped rubric attached by default), its pod's
    evaluation with both models' replies (16 new tokens each) stored and reported: completed, not judged yet."""
    from gpu_agent.evaluation import evaluate

    api, token = web.client(), web.token("alice")
    catalogue = api.post("/api/files", headers=token, files={"file": ("advisor.json", SAMPLE.read_bytes())})
    created = api.post("/api/jobs", headers=token, json={"training_file_id": catalogue.json()["id"], "name": name,
                                                         "knowledge_retention": False})
    assert created.status_code == 201, created.text
    job_id = UUID(created.json()["id"])
    app, now = web.store.app, datetime.now(timezone.utc)
    job = app.get_job(job_id)
    assert job.ei_suite.name == "emotional-intelligence.jsonl" and job.rubric.name == "Elena Morales voice"
    provisioner = Provisioner(app, provider=None, agent=AgentSettings(nats_url="nats://x"),  # type: ignore[arg-type]
                              stage=lambda jid, refs: [ArtifactRef(f"job-{jid}", f"staged/{r.name}", r.sha256, r.size)
                                                       for r in refs])
    spec = decode_json(provisioner.pod_env(job, 1)["PIPELINE_JOB_CONFIG"], "PIPELINE_JOB_CONFIG")
    assert spec["evaluation"]["ei"]["sha256"] == job.ei_suite.file.sha256  # staged for the pod, no judge key
    assert spec["evaluation"]["rubric"]["sha256"] == job.rubric.file.sha256 and KEY not in str(spec)
    attempt = app.update_job(job_id, lambda j: j.start_provisioning("spot", now))
    app.update_job(job_id, lambda j: j.pod_started("pod-1", attempt, Decimal("2.49"), now))
    for stage in (JobStatus.TRAINING, JobStatus.FINALIZATION, JobStatus.EVALUATING):
        app.update_job(job_id, lambda j, s=stage: j.change_stage(s, attempt, datetime.now(timezone.utc)))
    model = scorer["model"]
    torch.manual_seed(11)
    with torch.no_grad():
        for param_name, param in model.named_parameters():
            if "lora_B" in param_name:
                param.normal_(0, spread)
    ei = load_ei_suite((SUITES / "emotional-intelligence.jsonl").read_bytes(), "emotional-intelligence.jsonl")
    rubric = load_rubric((SUITES / "brand-voice-elena-morales.json").read_bytes())
    results = evaluate(model, scorer["tokenizer"], scorer["training_file"], scorer["validation"], scorer["train"],
                       None, [], str(job_id), 1, ei=ei, rubric=rubric, max_new_tokens=16)
    assert results.generations is not None and len(results.generations.ei) == 50
    assert len(results.generations.brand_voice) == 30
    evaluation = put(web, job_id, "evaluation-attempt-1.json", results.to_json())
    adapter = web.store_adapter(job_id, b"adapter of " + name.encode())
    send(TelemetryHandler(app, read_object=reader(web)), job_id, "completed",
         {"adapter": adapter.as_dict(), "metrics": {"final_loss": 0.4}, "evaluation": evaluation.as_dict()}, 2)
    ended = datetime.now(timezone.utc)  # as the provisioner ends its pod: spend charged, the file free again
    app.update_job(job_id, lambda j: j.pod_stopped("pod-1", ended))
    app.record_job_spend(job_id, ended)
    return job_id


def reactor(web: WebRig, judge: FakeJudge, waits: list[float]) -> JudgingReactor:
    config = JudgeConfig(judge.url, "fake-judge", KEY, Decimal("0.15"), Decimal("0.60"))
    return JudgingReactor(web.store.app, reader(web), JudgeClient(config, sleep=waits.append), batch=20)


@pytest.mark.slow  # about 25 s: two evaluations with 160 generated replies each, judged over HTTP
def test_replies_judged_by_a_model_give_the_ei_regressions_and_brand_voice_and_gate_a_damaged_adapter(
        web: WebRig, scorer, judge: FakeJudge, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    good = judged_job(web, scorer, 0.02, "Advisor voice good")
    web.project()
    alice = web.client("alice")
    pending = text_of(alice.get(f"/jobs/{good}?tab=quality", headers=HTML).text)
    assert "Emotional intelligence (50 scenarios) and brand voice (30 responses) not scored yet" in pending
    assert "Review the replies (blind)" in pending and "⚠ Review before client delivery" in pending

    waits: list[float] = []
    judge.script = ["429", "", "malformed", "malformed", "malformed"]  # item 1: 429, then 200; item 2: malformed × 3
    assert reactor(web, judge, waits).judge_job(good) == "judged"
    assert waits == [1.0]  # the fake's Retry-After
    app = web.store.app
    review = app.review(QualityReview.id_for(app.get_job(good).evaluation["results"].sha256))
    assert review.judge_complete and list(review.unscored) == [review.items[1]] and len(review.judged) == 79
    first = review.items[0]  # what was stored for each model is the rule applied to that model's reply
    item = next(g for g in app_results(web, good).generations.all_items() if g.key == first)
    assert review.judged[first]["baseline"] == {n: score(item.baseline, n) for n in ("empathy", "clarity",
                                                                                    "appropriateness")}
    assert review.judged[first]["trained"]["empathy"] == score(item.trained, "empathy")
    web.project()
    summary = app.get_job(good).evaluation["summary"]
    source = summary["judged"][0]
    assert source["label"] == LABEL and source["ei"]["scored"] == 49 and source["unscored"] == 1
    assert not any(r.startswith("EI regressions") and "regressed" in r and "block" in r for r in summary["reasons"])
    tab = text_of(alice.get(f"/jobs/{good}?tab=quality", headers=HTML).text)
    assert source["ei"]["headline"] in tab and source["ei"]["badge"] in tab
    assert source["regressions"]["headline"] in tab and source["brand_voice"]["headline"] in tab
    assert "79 of 80 replies scored, 1 left unscored" in tab and "malformed 3 times" in tab
    assert f"${review.cost:.4f}" in tab and "charged to this job's budget line" in tab
    for c in source["brand_voice"]["characteristics"]:
        assert c["name"] in tab

    ei_csv = list(csv.DictReader(io.StringIO(alice.get(f"/jobs/{good}/quality/ei.csv").text)))
    assert len(ei_csv) == 50 and ei_csv[0]["source"] == LABEL and ei_csv[0]["scenario"] == "1"
    assert sum(r["regression"] == "True" for r in ei_csv) == source["regressions"]["count"]
    assert sum(r["unscored_reason"] != "" for r in ei_csv) == 1
    brand = alice.get(f"/jobs/{good}/quality/brand-voice.csv")
    rows = list(csv.DictReader(io.StringIO(brand.text)))
    characteristics = [c.id for c in load_rubric((SUITES / "brand-voice-elena-morales.json").read_bytes())
                       .characteristics]
    assert len(rows) == 30 and all(c in rows[0] for c in characteristics)  # 30 responses × 10 characteristics
    api = alice.get(f"/api/jobs/{good}/quality").json()
    assert api["review"]["judge"] == {"judged": 79, "unscored": 1, "complete": True, "cost": str(review.cost),
                                      "prompt_tokens": review.prompt_tokens,
                                      "completion_tokens": review.completion_tokens}

    damaged = judged_job(web, scorer, 4.0, "Advisor voice damaged")
    assert reactor(web, judge, waits).judge_job(damaged) == "judged"
    web.project()
    job = app.get_job(damaged)
    assert job.gate_outcome == "block" and job.delivery_blocked, job.evaluation["summary"]["reasons"]
    assert any(r.startswith(f"EI regressions ({LABEL}): Number of regressions:") for r in
               job.evaluation["summary"]["reasons"])
    refused = alice.get(f"/jobs/{damaged}/adapter", headers=HTML)
    assert refused.status_code == 423 and "EI regressions" in refused.text
    tab = text_of(alice.get(f"/jobs/{damaged}?tab=quality", headers=HTML).text)
    assert "delivery is blocked" in tab and "Corrective actions:" in tab and "Retry with suggested fix" in tab
    compare = text_of(alice.get(f"/compare?jobs={good}&jobs={damaged}", headers=HTML).text)
    assert "EI improvement" in compare and "Brand alignment" in compare
    assert f"{summary['judged'][0]['brand_voice']['alignment_percent']}%" in compare
    analytics = text_of(alice.get("/analytics", headers=HTML).text)
    assert "Emotional intelligence and brand voice across runs" in analytics and "Advisor voice damaged" in analytics
    report = alice.get(f"/jobs/{damaged}/report.pdf")
    text = " ".join(" ".join((p.extract_text() or "") for p in PdfReader(io.BytesIO(report.content)).pages).split())
    assert "Emotional intelligence" in text and "Brand voice: Elena Morales voice" in text and "Regressions" in text

    # the budget line: each job's judging cost charged once, with its pods' spend
    month = app.budget(budget_month(job.queued_at, "UTC"))
    assert month.spent_by_job[str(damaged)] == job.spend(job.updated_at) and job.judging_cost > 0  # once, in full
    # the key: in the pods' spec (checked above) no, in no stored event, no log line, no page
    with psycopg.connect(web.database_url) as conn:
        stored = conn.execute("SELECT count(*) FROM pipeline_events WHERE position(%s in convert_from(state, 'UTF8'))"
                              " > 0", (KEY,)).fetchone()[0]
        total = conn.execute("SELECT count(*) FROM pipeline_events").fetchone()[0]
    assert total > 100 and stored == 0
    assert KEY not in caplog.text
    for path in (f"/jobs/{good}?tab=quality", f"/jobs/{good}?tab=events", f"/api/jobs/{good}/quality",
                 f"/jobs/{good}/replies", "/suites", "/settings/notifications", f"/jobs/{damaged}"):
        assert KEY not in alice.get(path, headers=HTML).text, path
    assert all(r["headers"]["Authorization"] == f"Bearer {KEY}" for r in judge.requests)  # where it does go


def app_results(web: WebRig, job_id: UUID) -> Any:
    from domain.quality.results import parse

    return parse(reader(web)(web.store.app.get_job(job_id).evaluation["results"]))


def test_a_client_rubric_is_refused_with_places_or_added_from_the_form_and_attached_to_a_job(web: WebRig) -> None:
    token = web.token("carol")
    bad = b'{"format_version": 1, "name": "Acme formal", "characteristics": [{"id": "Formal", "name": "Formal"}]}'
    answer = web.client().post("/api/rubrics", headers=token, content=bad)
    assert answer.status_code == 400
    places = {(p["place"], p["message"]) for p in answer.json()["problems"]}
    assert ("characteristics", "The rubric has 1 characteristics, expected 5 to 15") in places
    assert any(place == "characteristics[0].id" for place, _ in places)
    form = {"name": "Acme Wealth formal voice"}
    for n, trait in enumerate(("Conservative tone", "Risk-aware language", "Formal communication style",
                               "Precision", "Compliance awareness"), start=1):
        form |= {f"c{n}_name": trait, f"c{n}_description": f"{trait} in every reply",
                 f"c{n}_level_1": "Absent", f"c{n}_level_5": "Throughout"}
    short = dict(form, c5_level_5="")
    refused = web.form("carol", "/suites/rubrics", short, headers=HTML)
    assert refused.status_code == 400 and "Characteristic 5: level 5" in text_of(refused.text)
    assert 'value="Risk-aware language"' in refused.text  # the form comes back as typed
    added = web.form("carol", "/suites/rubrics", form, headers=HTML)
    assert added.status_code == 303, added.text
    web.project()
    rubric = next(s for s in web.client().get("/api/suites", headers=token).json()
                  if s["kind"] == "rubric" and s["registered_by"] == "carol")
    assert rubric["name"] == "Acme Wealth formal voice" and rubric["questions"] == 30  # the shipped prompts
    assert [c["id"] for c in rubric["categories"]] == ["conservative_tone", "risk_aware_language",
                                                        "formal_communication_style", "precision",
                                                        "compliance_awareness"]
    api = web.client()
    catalogue = api.post("/api/files", headers=token, files={"file": ("advisor.json", SAMPLE.read_bytes())})
    created = api.post("/api/jobs", headers=token, json={"training_file_id": catalogue.json()["id"],
                                                         "rubric_id": rubric["id"], "start": False})
    assert created.status_code == 201, created.text
    assert web.store.app.get_job(UUID(created.json()["id"])).rubric.name == "Acme Wealth formal voice"
    wrong = api.post("/api/jobs", headers=token, json={"training_file_id": catalogue.json()["id"],
                                                       "probe_suite_ids": [rubric["id"]], "start": False})
    assert wrong.status_code == 400 and "is a brand-voice rubric" in wrong.json()["detail"]
    new_job = text_of(web.client("carol").get("/jobs/new", headers=HTML).text)
    assert "Acme Wealth formal voice (5 characteristics)" in new_job and "Emotional intelligence" in new_job
    assert re.search(r"Brand voice rubric", new_job)


def reported_job(web: WebRig, name: str, generations: Any) -> tuple[UUID, str]:
    """A job created through the API whose pod reported an evaluation holding only `generations` (crafted here,
    no model): completed, its replies waiting to be scored. Its id and the results' digest."""
    from domain.quality.results import EvaluationResults

    api, token = web.client(), web.token("alice")
    catalogue = api.post("/api/files", headers=token, files={"file": ("advisor.json", SAMPLE.read_bytes())})
    created = api.post("/api/jobs", headers=token, json={"training_file_id": catalogue.json()["id"], "name": name,
                                                         "knowledge_retention": False})
    assert created.status_code == 201, created.text
    job_id = UUID(created.json()["id"])
    app, now = web.store.app, datetime.now(timezone.utc)
    attempt = app.update_job(job_id, lambda j: j.start_provisioning("spot", now))
    app.update_job(job_id, lambda j: j.pod_started("pod-1", attempt, Decimal("2.49"), now))
    for stage in (JobStatus.TRAINING, JobStatus.FINALIZATION, JobStatus.EVALUATING):
        app.update_job(job_id, lambda j, s=stage: j.change_stage(s, attempt, datetime.now(timezone.utc)))
    results = EvaluationResults(str(job_id), 1, generations=generations)
    evaluation = put(web, job_id, "evaluation-attempt-1.json", results.to_json())
    adapter = web.store_adapter(job_id, b"adapter of " + name.encode())
    send(TelemetryHandler(app, read_object=reader(web)), job_id, "completed",
         {"adapter": adapter.as_dict(), "metrics": {"final_loss": 0.4}, "evaluation": evaluation.as_dict()}, 2)
    ended = datetime.now(timezone.utc)  # as the provisioner ends its pod: spend charged, the file free again
    app.update_job(job_id, lambda j: j.pod_stopped("pod-1", ended))
    app.record_job_spend(job_id, ended)
    web.project()
    return job_id, evaluation.sha256


def test_two_reviewers_score_blind_through_the_pages_and_their_averages_and_disagreement_gate_the_job(
        web: WebRig) -> None:
    from domain.quality.generations import BRAND_VOICE, EI, TRAINED_FIRST, Generated, Generations, blind_order

    rubric = load_rubric((SUITES / "brand-voice-elena-morales.json").read_bytes())
    ei = tuple(Generated(f"ei-{n}", EI, f"Client message {n}", f"Plain answer {n}.", f"I hear you, answer {n}.",
                         persona="Pragmatic Skeptic", emotional_arc="doubt to trust", topic="fees") for n in (1, 2))
    voice = (Generated("bv-01", BRAND_VOICE, "Should I sell?", "Maybe.", "Let's look at it together."),)
    job_id, sha = reported_job(web, "Advisor voice reviewed", Generations(24, "emotional-intelligence.jsonl", ei,
                                                                          rubric, voice))
    keys = [g.key for g in (*ei, *voice)]
    names = {EI: ("empathy", "clarity", "appropriateness"), BRAND_VOICE: [c.id for c in rubric.characteristics]}
    alice, bob = web.client("alice"), web.client("bob")
    first = text_of(alice.get(f"/jobs/{job_id}/replies", headers=HTML).text)
    assert "Emotional intelligence: 0 of 2 scored by you (0 by anyone)" in first
    assert "Brand voice: 0 of 1 scored by you (0 by anyone)" in first and "Response 1" in first
    page = alice.get(f"/jobs/{job_id}/replies?item={keys[0]}", headers=HTML).text
    form = page[page.index('id="rv-form"'):page.index("</form>", page.index('id="rv-form"'))]
    assert not re.search(r"baseline|trained", form, re.IGNORECASE)  # blind: nothing says which reply is which
    shown = [ei[0].trained, ei[0].baseline] if blind_order(sha, keys[0]) == TRAINED_FIRST else [
        ei[0].baseline, ei[0].trained]
    assert form.index(shown[0]) < form.index(shown[1])  # in the item's recorded order

    def scores(user: str, key: str, trained: int, baseline: int) -> Any:
        """A reviewer who, blind, gives the trained reply `trained` and the baseline's `baseline` (as Response
        1 and 2 in the item's recorded order) on every characteristic."""
        part = key.split("/")[0]
        first, second = (trained, baseline) if blind_order(sha, key) == TRAINED_FIRST else (baseline, trained)
        data = {"item": key} | {f"first.{n}": str(first) for n in names[part]} | {
            f"second.{n}": str(second) for n in names[part]}
        return web.form(user, f"/jobs/{job_id}/replies", data, headers=HTML)

    refused = web.form("alice", f"/jobs/{job_id}/replies", {"item": keys[0], "first.empathy": "5"}, headers=HTML)
    assert refused.status_code == 303 and "error=" in refused.headers["location"]  # every score is needed
    # ei-2 is the one the trained model did worse on, in both reviewers' eyes
    given = {"alice": {keys[0]: (5, 2), keys[1]: (2, 5), keys[2]: (5, 2)},
             "bob": {keys[0]: (3, 2), keys[1]: (2, 4), keys[2]: (3, 2)}}
    for key in keys:
        saved = scores("alice", key, *given["alice"][key])
        assert saved.status_code == 303, saved.text
    assert "Every item is scored" in unquote_plus(saved.headers["location"])
    web.project()
    job = web.store.app.get_job(job_id)
    people = next(s for s in job.evaluation["summary"]["judged"] if s["source"] == "people")
    assert people["complete"] and people["scorers"] == ["alice"]  # every item has a reviewer: it counts
    progress = text_of(bob.get(f"/jobs/{job_id}/replies", headers=HTML).text)
    assert "Emotional intelligence: 0 of 2 scored by you (2 by anyone)" in progress
    assert "Reviewers so far: alice." in progress
    for key in keys:
        assert scores("bob", key, *given["bob"][key]).status_code == 303
    web.project()
    job = web.store.app.get_job(job_id)
    people = next(s for s in job.evaluation["summary"]["judged"] if s["source"] == "people")
    assert people["label"] == "2 reviewers (alice, bob)" and people["scorers"] == ["alice", "bob"]
    # averaged: ei-1 trained 4 (5, 3), baseline 2; ei-2 trained 2, baseline 4.5 (5, 4); bv-01 trained 4
    assert people["ei"]["overall"] == {"baseline": "3.2", "trained": "3.0", "improvement_percent": "-8"}
    assert people["brand_voice"]["overall"] == "4.00" and people["brand_voice"]["baseline_overall"] == "2.00"
    found = people["regressions"]
    assert [r["text"] for r in found["list"]] == [
        "Scenario #2 (ei-2): Baseline 4.5/5, Trained 2.0/5 (-56% regression, major)"]
    assert job.gate_outcome == "block" and job.delivery_blocked
    assert "EI regressions (2 reviewers (alice, bob)): 1 major regression (a decrease over 20% to below 3/5)" in \
        job.evaluation["summary"]["reasons"]
    assert alice.get(f"/jobs/{job_id}?tab=quality", headers=HTML).status_code == 200
    tab = text_of(bob.get(f"/jobs/{job_id}?tab=quality", headers=HTML).text)
    assert "3 of 3 items scored by at least one reviewer (alice: 3, bob: 3)" in tab
    assert "Emotional intelligence — scored by 2 reviewers (alice, bob)" in tab
    assert "Where reviewers disagree" in tab and tab.count("up to 2 points apart (2 reviewers)") == 2  # ei-1, bv-01
    assert "Add more training data for the affected scenarios: 'Pragmatic Skeptic' conversations" in tab
    assert "Retry with suggested fix" in tab and "regressions involve" not in tab  # one regression: no pattern
    rows = list(csv.DictReader(io.StringIO(bob.get(f"/jobs/{job_id}/quality/ei.csv").text)))
    assert [(r["id"], r["scorers"], r["disagreement"], r["severity"]) for r in rows] == [
        ("ei-1", "2", "2", ""), ("ei-2", "2", "1", "major")]
    events = [type(e).__name__ for e in web.store.app.repository.event_store.get(QualityReview.id_for(sha))]
    assert events == ["Created"] + ["PersonScored"] * 6
    # FR6.2.2's corrective action, from the Quality tab's form: a new job at half the learning rate
    rate = job.configuration["hyperparameters"]["learning_rate"]
    retried = web.form("alice", f"/jobs/{job_id}/retry", {"mode": "suggested"}, headers=HTML)
    assert retried.status_code == 303, text_of(retried.text)[-800:]
    new_job = web.store.app.get_job(UUID(retried.headers["location"].split("?")[0].rsplit("/", 1)[1]))
    assert new_job.retry_of == job_id and new_job.configuration["hyperparameters"]["learning_rate"] == rate / 2
    assert new_job.rubric == job.rubric and new_job.ei_suite == job.ei_suite  # scored on the same suites
