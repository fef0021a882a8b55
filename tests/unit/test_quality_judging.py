"""FR6.2.1, FR6.2.2, FR6.4.1 and FR6.4.2's figures from scored replies: the EI benchmark with the spec's
worked example and badges, regressions with their severity, patterns and gate, brand voice with its badge
and flags, the judge's schema and answers, the blind order, the review's people and judge, and the job's
gate, cost and retry that follow, and the completion and "Replies scored" notices (docs/quality-validation.md)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from domain.aggregates.quality_review import QualityReview
from domain.applications import BudgetPolicy, Pipeline
from domain.budget_month import budget_month
from domain.job_metadata import InvalidJobError
from domain.job_status import JobStatus
from domain.quality import load_rubric
from domain.quality.brand_voice import brand_report
from domain.quality.ei_report import badge_for, ei_report
from domain.quality.generations import (
    BASELINE_FIRST,
    BRAND_VOICE,
    EI,
    EI_CHARACTERISTICS,
    TRAINED_FIRST,
    Generated,
    Generations,
    blind_order,
    shown_pair,
    unblind,
)
from domain.quality.judging import (
    MalformedJudgementError,
    judging_cost,
    messages,
    read_judgement,
    response_format,
)
from domain.quality.regressions import regressions
from domain.quality.results import EvaluationResults, parse, summary
from domain.quality.scores import MODEL, Scored, SourceScores, averaged
from domain.retries import check_retryable, quality_fix
from domain.values import ArtifactRef
from tests.factories import T0, configuration, job_fields

RUBRIC = load_rubric((Path(__file__).resolve().parents[2] / "samples" / "suites"
                      / "brand-voice-elena-morales.json").read_bytes())
DIMENSIONS = ("empathy", "clarity", "appropriateness")


def ints(total: int, n: int = 10) -> list[int]:
    """n whole scores that add up to `total` (the larger ones first)."""
    base, extra = divmod(total, n)
    return [base + 1] * extra + [base] * (n - extra)


def scenario(i: int, persona: str = "Anxious Investor", arc: str = "anxious to reassured",
             topic: str = "market volatility") -> Generated:
    return Generated(f"ei-{i:03}", EI, f"Message {i}", f"baseline reply {i}", f"trained reply {i}", persona=persona,
                     emotional_arc=arc, topic=topic)


def flat(item: Generated, baseline: float, trained: float) -> Scored:
    """Every characteristic at the same (average) score."""
    return Scored(item.key, {d: Decimal(str(baseline)) for d in DIMENSIONS},
                  {d: Decimal(str(trained)) for d in DIMENSIONS})


def test_the_ei_benchmark_gives_the_spec_worked_example_and_its_badges() -> None:
    items = [scenario(i) for i in range(1, 11)]
    columns = {"empathy": (ints(31), ints(46)), "clarity": (ints(34), ints(45)),
               "appropriateness": (ints(31), ints(44))}
    scores = {item.key: Scored(item.key, {d: Decimal(columns[d][0][n]) for d in DIMENSIONS},
                               {d: Decimal(columns[d][1][n]) for d in DIMENSIONS}) for n, item in enumerate(items)}
    report = ei_report(items, scores, {})
    assert report is not None
    assert report.headline == ("Overall Emotional Intelligence Score: 3.2/5 (baseline) → 4.5/5 (trained) = "
                               "41% improvement")
    assert report.badge == "✓ Exceptional EI"
    assert [c.text for c in report.subscores] == ["3.1 → 4.6 (48% improvement)", "3.4 → 4.5 (32% improvement)",
                                                  "3.1 → 4.4 (42% improvement)"]
    assert [badge_for(Decimal(p)) for p in (40, 39, 30, 29, 20, 19, -5)] == [
        "✓ Exceptional EI", "✓ Strong EI", "✓ Strong EI", "⚠ Moderate EI", "⚠ Moderate EI", "✗ Needs Improvement",
        "✗ Needs Improvement"]
    assert len(report.best) == 10 and report.best[0].gain >= report.best[-1].gain
    assert report.best[0].notes.startswith("Empathy +2")
    assert ei_report(items, {}, {}) is None  # nothing scored yet: no figures, never zeros


def test_regressions_read_as_the_spec_shows_them_with_severity_patterns_and_the_gate() -> None:
    items = [scenario(i, persona="Pragmatic Skeptic" if i in (23, 31) else "Anxious Investor") for i in range(1, 51)]
    scores = {item.key: flat(item, 3.0, 4.0) for item in items}
    scores[items[22].key] = flat(items[22], 4.2, 3.8)  # the spec's example: -9.5 % shown as -10 %
    scores[items[30].key] = flat(items[30], 5.0, 4.4)  # 12 % but still 4.4/5: minor
    scores[items[40].key] = flat(items[40], 4.0, 3.9)  # 2 %: minor
    found = regressions(items, scores)
    assert [r.text for r in found.regressions] == [
        "Scenario #23 (ei-023): Baseline 4.2/5, Trained 3.8/5 (-10% regression, moderate)",
        "Scenario #31 (ei-031): Baseline 5.0/5, Trained 4.4/5 (-12% regression, minor)",
        "Scenario #41 (ei-041): Baseline 4.0/5, Trained 3.9/5 (-2% regression, minor)"]
    assert found.headline == "Number of regressions: 3 of 50 scenarios (6%)"
    assert found.blocks == () and found.warning == ("1 moderate and 2 minor regressions detected. Review before client"
                                                    " delivery.")
    assert found.patterns == (
        "2 of 3 regressions involve 'Pragmatic Skeptic' persona - may need more training data",
        "3 of 3 regressions involve 'anxious to reassured' emotional arc - may need more training data",
        "3 of 3 regressions involve 'market volatility' topic - may need more training data")
    assert "'Pragmatic Skeptic' conversations" in found.corrective_actions[0]
    # a drop of more than 20 % to below 3/5 is major, and blocks
    scores[items[9].key] = flat(items[9], 4.0, 2.7)
    major = regressions(items, scores)
    assert major.regressions[0].severity == "major" and major.count("major") == 1
    assert major.blocks == ("1 major regression (a decrease over 20% to below 3/5)",) and major.warning is None
    # 5 of 50 (10 %) regressed, all minor: blocks all the same
    minor = {item.key: flat(item, 4.0, 4.0) for item in items}
    for item in items[:5]:
        minor[item.key] = flat(item, 4.3, 4.0)
    five = regressions(items, minor)
    assert five.count("minor") == 5 and five.blocks == (
        "Number of regressions: 5 of 50 scenarios (10%): 10% or more regressed",)
    minor[items[0].key] = flat(items[0], 4.0, 4.0)
    assert regressions(items, minor).warning == "4 minor regressions detected. Review before client delivery."


def brand_items() -> tuple[list[Generated], dict[str, Scored]]:
    """30 responses whose trained averages are the spec's example (overall 4.3, Humor 2.8)."""
    averages = {"warmth_empathy": 45, "directness_clarity": 42, "education_first": 41, "pragmatic_optimism": 46,
                "question_driven": 44, "storytelling": 43, "action_oriented": 45, "patience": 46, "humor": 28,
                "confidence": 50}
    items = [Generated(p.id, BRAND_VOICE, p.prompt, "Generic advice.", "Elena's reply.", persona=p.persona or "")
             for p in RUBRIC.prompts]
    scores = {item.key: Scored(item.key, {c: Decimal(3) for c in averages},
                               {c: Decimal(ints(total)[n % 10]) for c, total in averages.items()})
              for n, item in enumerate(items)}
    return items, scores


def test_brand_voice_gives_the_spec_alignment_badge_words_and_flags() -> None:
    items, scores = brand_items()
    report = brand_report(RUBRIC, items, scores, {})
    assert report is not None
    assert report.headline == "Overall voice consistency: 4.30/5 (86.0% alignment, target ≥85%)"
    assert report.badge == "✓ Strong Brand Alignment" and report.meets_target
    texts = [c.text for c in report.characteristics]
    assert texts[:4] == ["Warmth & Empathy: 4.5/5 (excellent)", "Directness & Clarity: 4.2/5 (strong)",
                         "Education-First Approach: 4.1/5 (good)", "Pragmatic Optimism: 4.6/5 (excellent)"]
    assert [c.text for c in report.flagged] == ["Humor (appropriate): 2.8/5 (needs improvement)"]
    assert len(report.best) == 5 and report.baseline_overall == Decimal("3.00")
    thresholds = RUBRIC.thresholds
    assert [thresholds.badge_for(Decimal(s)).label for s in ("4.5", "4.49", "4.25", "4.24", "4.0", "3.99")] == [
        "✓ Excellent Brand Alignment", "✓ Strong Brand Alignment", "✓ Strong Brand Alignment",
        "⚠ Acceptable Alignment", "⚠ Acceptable Alignment", "✗ Needs Improvement"]


def test_the_judge_gets_a_strict_schema_and_a_malformed_answer_is_never_a_score() -> None:
    fmt = response_format(EI, EI_CHARACTERISTICS)
    schema = fmt["json_schema"]["schema"]
    assert fmt["json_schema"]["strict"] is True and schema["additionalProperties"] is False
    assert schema["properties"]["reply_a"]["required"] == list(DIMENSIONS)
    assert schema["properties"]["reply_a"]["properties"]["empathy"]["enum"] == [1, 2, 3, 4, 5]
    item = scenario(1)
    asked = messages(EI, item, EI_CHARACTERISTICS, "EI", "first text", "second text")[-1]["content"]
    assert asked.index("Reply A:\nfirst text") < asked.index("Reply B:\nsecond text")
    assert "baseline" not in asked.lower() and "trained" not in asked.lower()  # nothing tells which is which
    good = {"reply_a": {d: 4 for d in DIMENSIONS}, "reply_b": {d: 2 for d in DIMENSIONS}, "reason": "  A  names it. "}
    judged = read_judgement(json.dumps(good), EI_CHARACTERISTICS)
    assert (judged.first["empathy"], judged.second["clarity"], judged.reason) == (4, 2, "A names it.")
    for bad, why in (("", "empty"), ("{\"reply_a\": {", "not JSON"), ("[1]", "not a JSON object"),
                     (json.dumps(good | {"reply_b": {"empathy": 4}}), "missing clarity"),
                     (json.dumps(good | {"reply_a": {d: 6 for d in DIMENSIONS}}), "expected a whole number"),
                     (json.dumps(good | {"reply_a": {d: 4.5 for d in DIMENSIONS}}), "expected a whole number"),
                     (json.dumps(good | {"reply_a": {d: True for d in DIMENSIONS}}), "expected a whole number"),
                     (json.dumps({k: v for k, v in good.items() if k != "reason"}), "'reason'")):
        with pytest.raises(MalformedJudgementError, match=why):
            read_judgement(bad, EI_CHARACTERISTICS)
    assert judging_cost(1_000_000, 500_000, Decimal("0.15"), Decimal("0.60")) == Decimal("0.45")


def test_the_blind_order_is_drawn_per_item_reproducibly_and_scores_map_back_to_their_model() -> None:
    keys = [f"ei/ei-{i:03}" for i in range(1, 51)]
    orders = [blind_order("f" * 64, k) for k in keys]
    assert orders == [blind_order("f" * 64, k) for k in keys]  # the same seed, the same draws
    assert 15 <= orders.count(TRAINED_FIRST) <= 35 and set(orders) == {TRAINED_FIRST, BASELINE_FIRST}
    assert orders != [blind_order("e" * 64, k) for k in keys]  # another evaluation, other draws
    item = scenario(1)
    assert shown_pair(item, TRAINED_FIRST) == (item.trained, item.baseline)
    assert unblind(TRAINED_FIRST, {"x": 5}, {"x": 1}) == ({"x": 1}, {"x": 5})
    assert unblind(BASELINE_FIRST, {"x": 5}, {"x": 1}) == ({"x": 5}, {"x": 1})


def generations() -> Generations:
    ei = tuple(scenario(i) for i in range(1, 4))
    voice = tuple(Generated(p.id, BRAND_VOICE, p.prompt, "b", "t") for p in RUBRIC.prompts[:2])
    return Generations(24, "emotional-intelligence.jsonl", ei, RUBRIC, voice)


RESULTS = ArtifactRef("job-x", "job-x/evaluation-attempt-1.json", "7" * 64, 4000)
NOW = datetime(2026, 11, 3, 9, tzinfo=timezone.utc)


def test_people_score_blind_their_scores_are_averaged_with_the_disagreement_and_the_judge_counts_once() -> None:
    review = QualityReview.open(uuid.uuid4(), RESULTS, generations(), NOW)
    assert review.items[:3] == ["ei/ei-001", "ei/ei-002", "ei/ei-003"] and len(review.items) == 5
    key = next(k for k in review.items if k.startswith("ei/") and review.orders[k] == TRAINED_FIRST)
    low, high = dict.fromkeys(DIMENSIONS, 2), dict.fromkeys(DIMENSIONS, 5)
    review.score_by_person(key, "alice", high, low, NOW)  # Response 1 is the trained reply here
    assert review.people[key]["alice"] == (low, high)  # stored as (baseline, trained)
    review.score_by_person(key, "bob", dict.fromkeys(DIMENSIONS, 3), low, NOW)
    scored = review.people_scores().items[key]
    assert scored.scorers == 2 and scored.trained["empathy"] == 4 and scored.baseline["empathy"] == 2
    assert scored.spread == 2  # alice said 5, bob 3 for the same reply
    assert not review.people_complete and review.people_scores().complete is False
    review.score_by_person(key, "bob", high, low, NOW)  # bob changes his mind: his scores are replaced
    assert review.people_scores().items[key].spread == 0
    with pytest.raises(InvalidJobError, match="from 1 to 5"):
        review.score_by_person(key, "carol", high | {"empathy": 7}, low, NOW)
    with pytest.raises(InvalidJobError, match="no item"):
        review.score_by_person("ei/nope", "carol", high, low, NOW)
    review.record_judged("ei/ei-001", "judge-1", low, high, "why", 100, 10, Decimal("0.01"), 1, NOW)
    review.record_judged("ei/ei-001", "judge-1", high, low, "again", 100, 10, Decimal("0.01"), 1, NOW)
    assert review.judged["ei/ei-001"]["trained"] == high and review.cost == Decimal("0.01")
    review.record_unscored("ei/ei-002", "judge-1", "malformed 3 times", 300, 30, Decimal("0.03"), 3, NOW)
    assert review.to_judge()[0] == "ei/ei-003" and not review.judge_complete
    model = review.model_scores()
    assert model.label == "model judge judge-1" and model.unscored == {"ei/ei-002": "malformed 3 times"}


def evaluated(app: Pipeline, scored_results: EvaluationResults) -> tuple[uuid.UUID, ArtifactRef]:
    """A completed job whose evaluation is `scored_results`, as the telemetry reactor records it."""
    job_id = app.create_job(**job_fields(at=T0))
    hyper = {"r": 16, "lora_alpha": 32, "target_modules": ["q_proj"], "learning_rate": 2e-4, "num_train_epochs": 3,
             "per_device_train_batch_size": 4}
    app.configure_job(job_id, **configuration(hyperparameters=hyper, at=T0))
    app.start_job(job_id, "alice", "member", T0)
    data = scored_results.to_json()
    ref = ArtifactRef(f"job-{job_id}", f"{job_id}/evaluation-attempt-1.json", hashlib.sha256(data).hexdigest(),
                      len(data))
    now = datetime.now(timezone.utc)
    attempt = app.update_job(job_id, lambda j: j.start_provisioning("spot", now))
    app.update_job(job_id, lambda j: j.change_stage(JobStatus.EVALUATING, attempt, now))
    app.update_job(job_id, lambda j: j.record_evaluation(ref, summary(parse(data)), attempt, now))
    app.update_job(job_id, lambda j: j.complete(ref, {}, attempt, now))
    return job_id, ref


def test_judged_replies_gate_the_job_charge_its_budget_once_and_offer_a_retry_with_half_the_learning_rate() -> None:
    app = Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=BudgetPolicy(default_limit=5000))
    items = tuple(scenario(i, persona="Pragmatic Skeptic" if i % 2 else "Anxious Investor") for i in range(1, 11))
    results = EvaluationResults("x", 1, generations=Generations(24, "emotional-intelligence.jsonl", items))
    job_id, ref = evaluated(app, results)
    job = app.get_job(job_id)
    assert job.gate_outcome == "review" and job.evaluation["summary"]["reasons"] == [
        "Emotional intelligence (10 scenarios) not scored yet: a model judge or reviewers score the replies"
        " (Quality tab)"]
    assert job.evaluation["summary"]["generations"]["ei"] == {"suite": "emotional-intelligence.jsonl", "scenarios": 10}
    review = app.open_review(job_id, ref, results.generations, NOW)
    assert app.open_review(job_id, ref, results.generations, NOW).version == review.version  # opened once
    scores = {"good": dict.fromkeys(DIMENSIONS, 4), "bad": dict.fromkeys(DIMENSIONS, 2)}

    def verdicts(keys: list[str], cost: str, regressed: int = 0) -> object:
        return lambda r: [r.record_judged(k, "judge-1", scores["good"], scores["bad" if n < regressed else "good"],
                                          "r", 1000, 100, Decimal(cost), 1, NOW) for n, k in enumerate(keys)]

    app.record_judgements(review.id, verdicts(review.items[:5], "0.0100", regressed=3), NOW)
    app.record_judgements(review.id, verdicts(review.items[:5], "0.0100", regressed=3), NOW)  # redelivered: no news
    job = app.get_job(job_id)
    month = app.budget(budget_month(job.queued_at, "UTC"))
    assert job.judging_cost == Decimal("0.0500") and month.spent_by_job[str(job_id)] == job.spend(NOW)
    charged = month.charged
    app.record_judgements(review.id, verdicts(review.items[5:], "0.0100"), NOW)
    month = app.budget(budget_month(job.queued_at, "UTC"))
    assert month.charged - charged == Decimal("0.0500")  # only the new verdicts' cost
    review = app.review(review.id)
    assert review.judge_complete
    figures = summary(results, [review.model_scores()])
    app.record_judged(job_id, review.id, ref.sha256, figures, NOW)
    job = app.get_job(job_id)
    assert job.gate_outcome == "block" and job.delivery_blocked  # 3 of 10 scenarios regressed, majors among them
    assert any(r.startswith("EI regressions (model judge judge-1): Number of regressions: 3 of 10 scenarios (30%)")
               for r in job.evaluation["summary"]["reasons"])
    assert [type(e).__name__ for e in app.repository.event_store.get(job_id)][-3:] == [
        "JudgingCharged", "JudgingCharged", "Judged"]
    app.override_delivery(job_id, actor="bob", role="manager", justification="Client accepted the EI drop in writing",
                          at=NOW)
    app.record_judged(job_id, review.id, ref.sha256, figures | {"notes": ["again"]}, NOW)  # no new reason to block
    assert not app.get_job(job_id).delivery_blocked
    app.record_judged(job_id, review.id, "0" * 64, figures, NOW)  # another evaluation's: ignored
    plan = quality_fix(app.get_job(job_id))
    assert plan is not None and [c.describe() for c in plan.changes] == ["learning_rate: 0.0002 → 0.0001"]
    assert "'Pragmatic Skeptic'" in plan.message and "Number of regressions: 3 of 10" in plan.message
    check_retryable(app.get_job(job_id))  # a completed job with regressions may be retried with the fix
    new_id, _ = app.retry_job(job_id, plan, actor="alice", role="member", at=NOW)
    assert app.get_job(new_id).configuration["hyperparameters"]["learning_rate"] == 0.0001


def test_results_of_version_1_still_read_and_version_2_round_trips_its_replies_and_rubric() -> None:
    old = json.dumps({"format_version": 1, "job_id": "j", "attempt": 1, "perplexity": {"samples": []},
                      "knowledge": None, "probes": []}).encode()
    assert parse(old).generations is None and "generations" not in summary(parse(old))
    results = EvaluationResults("j", 2, generations=generations())
    again = parse(results.to_json())
    kept = again.generations
    assert kept is not None and kept.all_items() == results.generations.all_items() and kept.max_new_tokens == 24
    assert kept.rubric is not None and kept.rubric.prompts == ()  # the replies carry the prompts; the rubric its rules
    assert (kept.rubric.characteristics, kept.rubric.thresholds) == (RUBRIC.characteristics, RUBRIC.thresholds)
    assert json.loads(results.to_json())["format_version"] == 2
    with_scores = summary(results, [SourceScores(MODEL, "model judge m", {
        k: averaged(k, [(dict.fromkeys(names, 3), dict.fromkeys(names, 4))]) for k, names in
        ((g.key, [c.id for c in results.generations.characteristics(g.part)]) for g in results.generations.all_items())
    }, complete=True)])
    judged = with_scores["judged"][0]
    assert judged["ei"]["overall"] == {"baseline": "3.0", "trained": "4.0", "improvement_percent": "33"}
    assert judged["brand_voice"]["overall"] == "4.00" and judged["brand_voice"]["badge"] == "⚠ Acceptable Alignment"
    assert with_scores["outcome"] == "pass" and judged["regressions"]["count"] == 0


def test_the_completion_notice_says_the_replies_await_scoring_and_a_replies_scored_notice_follows_once() -> None:
    from domain.aggregates.training_job import TrainingJob
    from handlers.notifications.digest import Digest
    from handlers.notifications.notices import job_kind, job_notice

    base = "https://pipeline.example"
    app = Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=BudgetPolicy(default_limit=5000))
    items = tuple(scenario(i, persona="Pragmatic Skeptic") for i in range(1, 11))
    results = EvaluationResults("x", 1, generations=Generations(24, "emotional-intelligence.jsonl", items))
    job_id, ref = evaluated(app, results)

    def told(kind: type) -> tuple[object, TrainingJob]:
        event = [e for e in app.repository.event_store.get(job_id) if isinstance(e, kind)][-1]
        return event, app.repository.get(job_id, version=event.originator_version)

    done, job = told(TrainingJob.Completed)
    completed = job_notice(done, job, base)
    assert completed.subject.endswith("— ⚠ Review before client delivery")
    assert dict(completed.facts)["Replies to score"] == "10 EI scenarios: awaiting a model judge or reviewers"
    review = app.open_review(job_id, ref, results.generations, NOW)
    good, bad = dict.fromkeys(DIMENSIONS, 4), dict.fromkeys(DIMENSIONS, 2)
    app.record_judgements(review.id, lambda r: [
        r.record_judged(k, "judge-1", good, bad if n < 3 else good, "r", 1000, 100, Decimal("0.01"), 1, NOW)
        for n, k in enumerate(r.items)], NOW)
    review = app.review(review.id)
    app.record_judged(job_id, review.id, ref.sha256, summary(results, [review.model_scores()]), NOW)
    judged, job = told(TrainingJob.Judged)
    assert job_kind(judged) == "quality_scored"
    notice = job_notice(judged, job, base)
    assert notice.subject == f"Replies scored: {job.name} — ✗ Delivery blocked"
    facts = dict(notice.facts)
    assert facts["Quality gate"] == "✗ Delivery blocked" and "Replies to score" not in facts
    assert facts["Emotional intelligence (model judge judge-1)"] == ("4.0 → 3.4/5 (-15% improvement,"
                                                                     " ✗ Needs Improvement)")
    assert facts["EI regressions (model judge judge-1)"] == "3 of 10 scenarios (30%)"
    assert any(line.startswith("EI regressions (model judge judge-1)") for line in dict(notice.sections)[
        "Quality gate reasons"])
    assert notice.actions == (("Review Quality", f"{base}/jobs/{job_id}?tab=quality"),
                              ("Retry with Suggested Fix", f"{base}/jobs/{job_id}?tab=quality#q-retry-fix"))
    # people finish later: told again (a source complete for the first time); a revision is not
    for key in review.items:
        app.score_by_person(review.id, key, "alice", good, good, NOW)
    review = app.review(review.id)
    app.record_judged(job_id, review.id, ref.sha256, summary(results, [review.model_scores(), review.people_scores()]),
                      NOW)
    again, _ = told(TrainingJob.Judged)
    assert again.completes == ["people"] and job_kind(again) == "quality_scored"
    app.score_by_person(review.id, review.items[0], "alice", bad, good, NOW)
    review = app.review(review.id)
    app.record_judged(job_id, review.id, ref.sha256, summary(results, [review.model_scores(), review.people_scores()]),
                      NOW)
    revised, _ = told(TrainingJob.Judged)
    assert revised.originator_version > again.originator_version and job_kind(revised) is None
    line = {"event_key": "k", "kind": "quality_scored", "headline": notice.headline, "link": base, "job_id": None,
            "occurred_at": NOW}
    digest = Digest("alice", NOW.date(), "UTC", NOW, NOW, (line,), (), (), Decimal(0), Decimal(0), "2026-11", None)
    assert digest.notice(base).headline.startswith("1 event(s) on your jobs: 1 with replies scored.")
