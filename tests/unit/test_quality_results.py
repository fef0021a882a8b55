"""FR6.1 and FR6.3's figures from item-level results: perplexity and its badge, by category with the
heatmap and advice, knowledge retention with the spec's worked example, probes, and the delivery gate."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from domain.quality.gate import Outcome, ProbeResult, judge
from domain.quality.perplexity import Sample, by_category, heatmap, perplexity, recommendations
from domain.quality.results import EvaluationResults, ResultsFormatError, SuiteAnswers, parse, summary
from domain.quality.retention import Answer, advice, retention
from domain.quality.retention import by_category as retention_by_category


def sample(persona: str, arc: str, topic: str, base_ppl: float, trained_ppl: float, tokens: int = 100) -> Sample:
    return Sample(f"{persona}-{arc}-{topic}", persona, arc, topic, tokens, math.log(base_ppl) * tokens,
                  math.log(trained_ppl) * tokens)


def test_perplexity_is_taken_over_all_scored_tokens_with_the_spec_badges() -> None:
    p = perplexity([sample("Anxious Investor", "fear", "taxes", 24.5, 16.8)])
    assert (round(p.baseline, 1), round(p.trained, 1), round(p.improvement_percent, 1)) == (24.5, 16.8, 31.4)
    assert p.badge == "✓ Production Ready" and p.colour == "green"
    assert p.interpretation == "31% lower perplexity indicates significantly better prediction quality"
    assert perplexity([sample("a", "b", "c", 20, 15)]).badge == "⚠ Acceptable Quality"  # 25 %
    below = perplexity([sample("a", "b", "c", 20, 17)])  # 15 %
    assert below.badge == "✗ Below Threshold" and below.colour == "red" and "retry" in below.interpretation
    worse = perplexity([sample("a", "b", "c", 10, 12)])
    assert worse.interpretation.startswith("20% higher perplexity")
    # Tokens weigh: a long conversation counts more than a short one.
    mixed = perplexity([sample("a", "b", "c", 10, 5, tokens=300), sample("a", "b", "c", 10, 10, tokens=100)])
    assert mixed.trained == pytest.approx(math.exp((3 * math.log(5) + math.log(10)) / 4))
    with pytest.raises(ValueError):
        perplexity([])


def test_categories_mark_the_best_and_worst_and_the_heatmap_colours_each_pair() -> None:
    samples = [sample("Anxious Investor", "fear to calm", "Retirement Planning", 26.3, 15.2),
               sample("Pragmatic Skeptic", "fear to calm", "Tax Strategies", 28.3, 25.0),
               sample("Pragmatic Skeptic", "triumph", "Retirement Planning", 23.1, 15.8)]
    personas = by_category(samples, "persona")
    assert [r.text for r in personas] == ["Anxious Investor: 26.3 → 15.2 (42% improvement)",
                                          "Pragmatic Skeptic: 25.6 → 19.9 (22% improvement)"]
    assert (personas[0].best, personas[1].worst) == (True, True)
    rows, columns, grid = heatmap(samples)
    assert (rows, columns) == (["Anxious Investor", "Pragmatic Skeptic"], ["fear to calm", "triumph"])
    assert [[c.colour for c in row] for row in grid] == [["green", "none"], ["red", "green"]]
    coverage = {("Pragmatic Skeptic", "fear to calm"): 3, ("Anxious Investor", "fear to calm"): 40}
    assert recommendations(samples, coverage) == [
        "Add 10+ more 'Pragmatic Skeptic + fear to calm' conversations for better coverage",
        "Tax Strategies topic shows lower improvement - consider adding specialized training data"]


def answers(n: int, baseline_right: int, trained_right: int, category: str = "retirement", **extra) -> list[Answer]:
    """`n` questions; the first `baseline_right` the base answers right; the first `trained_right` the adapter."""
    return [Answer(f"{category}-{i}", category, "basic", "A", "A" if i < baseline_right else "B",
                   "A" if i < trained_right else "C", **extra) for i in range(n)]


def test_retention_follows_the_spec_example_and_its_verdicts() -> None:
    result = retention("Financial knowledge", answers(100, 87, 85))
    assert (result.baseline_accuracy, result.trained_accuracy, result.percent) == (87, 85, 98)
    assert result.text == "Retention rate: 98% (85/87 = 97.7%)" and result.verdict == "✓ Passed"
    assert len(result.regressed) == 2 and advice(result) == []
    warning = retention("k", answers(100, 100, 92))
    assert (warning.percent, warning.verdict) == (92, "⚠ Warning")
    failed = retention("k", answers(100, 90, 70))
    assert failed.verdict == "✗ Failed"
    assert advice(failed) == ["20 retirement questions regressed", "Retrain with lower learning rate to prevent "
                                                                   "overfitting"]
    # judged as shown: 94.5 % shows as 94 % (half-even) and is a warning, 94.6 % shows as 95 % and passes
    assert retention("k", answers(200, 200, 189)).verdict == "⚠ Warning"
    assert retention("k", answers(500, 500, 473)).verdict == "✓ Passed"
    assert retention("k", answers(10, 0, 3)).percent == 100  # nothing known, nothing lost


def test_the_gate_blocks_forgetting_and_critical_probes_and_asks_review_in_between() -> None:
    ppl = perplexity([sample("a", "b", "c", 24.5, 16.8)])
    assert judge(ppl, retention("k", answers(100, 87, 85))).outcome is Outcome.PASS
    review = judge(ppl, retention("k", answers(100, 100, 92)))
    assert review.outcome is Outcome.REVIEW and review.reasons == (
        "Knowledge retention 92% (⚠ Warning): minor knowledge loss, 90-94%",)
    assert review.notes == ("Perplexity 24.5 → 16.8: 31% improvement (✓ Production Ready)",)
    blocked = judge(ppl, retention("k", answers(100, 100, 80)))
    assert blocked.outcome is Outcome.BLOCK and "catastrophic forgetting" in blocked.reasons[0]
    probe_answers = answers(25, 25, 23, "compliance") + answers(25, 20, 18, "products")
    categories = retention_by_category(probe_answers, {"compliance": Decimal(100)})
    probe = ProbeResult("Acme probes", retention("Acme probes", probe_answers), categories)
    verdict = judge(ppl, retention("k", answers(100, 87, 85)), [probe])
    assert verdict.outcome is Outcome.BLOCK and verdict.reasons == (
        "Acme probes: compliance knowledge 92% retention (acceptable threshold: 100%)",
        "Acme probes: products knowledge 90% retention (acceptable threshold: 95%)")
    marked = retention_by_category(answers(10, 10, 9, "disclosures", critical=True), {})
    assert marked[0].critical and marked[0].threshold == 100


def test_item_level_results_round_trip_and_give_the_events_summary() -> None:
    results = EvaluationResults(
        "job-1", 2, samples=(sample("Anxious Investor", "fear", "taxes", 24.5, 16.8),),
        coverage={("Anxious Investor", "fear"): 12},
        knowledge=SuiteAnswers("Financial knowledge", tuple(answers(100, 100, 92))),
        probes=(SuiteAnswers("Acme", tuple(answers(4, 4, 4, "compliance")), {"compliance": Decimal(100)}),))
    again = parse(results.to_json())
    assert again == results and again.to_json() == results.to_json()
    shown = summary(again)
    assert shown["outcome"] == "review" and shown["perplexity"]["badge"] == "✓ Production Ready"
    assert shown["knowledge"]["retention_percent"] == "92" and shown["knowledge"]["regressed"] == 8
    assert shown["probes"][0]["categories"][0] | {} == {
        "suite": "compliance", "questions": 4, "baseline_correct": 4, "trained_correct": 4, "baseline_accuracy": "100",
        "trained_accuracy": "100", "retention_percent": "100", "verdict": "✓ Passed", "regressed": 0,
        "threshold": "100", "critical": True}
    for broken in (b"{", b'{"format_version": 2}', b'{"format_version": 1, "job_id": "j"}',
                   b'{"format_version": 1, "job_id": "j", "attempt": 1, "knowledge": {"suite": "k", "answers": [{}]}}'):
        with pytest.raises(ResultsFormatError):
            parse(broken)
