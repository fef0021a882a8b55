"""The model judge (docs/quality-validation.md, "The model judge") against a local OpenAI-compatible fake
(tests/fakes/judge.py): 429 with Retry-After and 500 waited out, malformed answers asked again and then the
item marked unscored (never a made-up score), a refused key stopping the round without scoring anything,
each score mapped back to its model through the recorded blind order, a resumed round asking only about
what is left, and the key in no event."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from domain.applications import BudgetPolicy, Pipeline
from domain.quality.generations import EI, Generated, Generations
from domain.quality.results import EvaluationResults
from domain.values import ArtifactRef
from handlers.judge_client import JudgeClient, JudgeConfig
from handlers.judging import JudgingReactor, JudgingRounds
from tests.fakes.judge import FakeJudge, score
from tests.unit.test_quality_judging import DIMENSIONS, RUBRIC, evaluated

KEY = "sk-test-judge-key-0123456789abcdef"


@pytest.fixture
def fake() -> Iterator[FakeJudge]:
    server = FakeJudge(api_key=KEY).start()
    yield server
    server.stop()


def replies() -> Generations:
    """Three scenarios and two brand-voice prompts, each reply a different length and wording."""
    ei = (Generated("ei-001", EI, "The market fell and I am scared.", "Stay invested.",
                    "I hear how worried you feel. First, losses on paper are not realized; let us look at your plan "
                    "together, step by step, this week."),
          Generated("ei-002", EI, "My partner and I fight about money.", "Make a budget and follow it every month.",
                    "budget budget budget budget"),
          Generated("ei-003", EI, "I got a raise!", "", "Congratulations! What would you like this money to do?"))
    voice = tuple(Generated(p.id, "brand_voice", p.prompt, "Diversify.", "I understand. Start small this week?")
                  for p in RUBRIC.prompts[:2])
    return Generations(24, "emotional-intelligence.jsonl", ei, RUBRIC, voice)


def rig(fake: FakeJudge, waits: list[float], **config: object) -> tuple[Pipeline, uuid.UUID, JudgingReactor]:
    app = Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=BudgetPolicy(default_limit=5000))
    results = EvaluationResults("x", 1, generations=replies())
    job_id, ref = evaluated(app, results)
    data = results.to_json()
    assert hashlib.sha256(data).hexdigest() == ref.sha256

    def read(wanted: ArtifactRef) -> bytes:
        return data

    settings = {"input_price": Decimal("0.15"), "output_price": Decimal("0.60")} | config
    client = JudgeClient(JudgeConfig(fake.url, "fake-judge", KEY, **settings),  # type: ignore[arg-type]
                         sleep=waits.append)
    return app, job_id, JudgingReactor(app, read, client, batch=2)


def test_the_judge_scores_every_reply_blind_and_each_score_goes_back_to_its_model(fake: FakeJudge) -> None:
    waits: list[float] = []
    app, job_id, reactor = rig(fake, waits)
    assert reactor.judge_job(job_id) == "judged"
    review = app.review(_review_id(app, job_id))
    assert review is not None and review.judge_complete and not review.unscored
    items = {g.key: g for g in replies().all_items()}
    for key, judged in review.judged.items():
        names = DIMENSIONS if key.startswith("ei/") else [c.id for c in RUBRIC.characteristics]
        assert judged["baseline"] == {n: score(items[key].baseline, n) for n in names}, key
        assert judged["trained"] == {n: score(items[key].trained, n) for n in names}, key
        assert judged["model"] == "fake-judge-2026-01" and judged["reason"].startswith("Scored by length")
    assert {review.orders[k] for k in review.items} == {"baseline_first", "trained_first"}
    request = fake.requests[0]["body"]
    assert request["response_format"]["json_schema"]["strict"] is True and request["temperature"] == 0
    assert fake.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    job = app.get_job(job_id)
    assert job.evaluation["summary"]["judged"][0]["label"] == "model judge fake-judge-2026-01"
    assert job.judging_cost == review.cost > 0 and review.cost == (
        Decimal(review.prompt_tokens) * Decimal("0.15") + Decimal(review.completion_tokens) * Decimal("0.60")
    ) / 1_000_000
    asked = len(fake.requests)
    assert reactor.judge_job(job_id) == "judged" and len(fake.requests) == asked  # nothing is asked twice
    kinds = [type(e).__name__ for e in app.repository.event_store.get(job_id)]
    assert kinds.count("JudgingCharged") == 3 and kinds[-1] == "Judged"  # batches of 2 over 5 items
    every = [app.mapper.to_stored_event(e).state for e in app.repository.event_store.get(job_id)]
    every += [app.mapper.to_stored_event(e).state for e in app.repository.event_store.get(review.id)]
    assert not any(KEY.encode() in state for state in every)  # the key is in no event


def test_a_rate_limit_and_a_server_error_are_waited_out(fake: FakeJudge) -> None:
    waits: list[float] = []
    app, job_id, reactor = rig(fake, waits)
    fake.retry_after = "3"
    fake.script = ["429", "500", "429"]
    assert reactor.judge_job(job_id) == "judged"
    assert waits == [3.0, 1.0, 3.0]  # Retry-After as said; a 5xx on the 2nd attempt backs off 0.5 s × 2
    review = app.review(_review_id(app, job_id))
    assert review.judge_complete and not review.unscored and len(fake.requests) == 5 + 3


def test_malformed_answers_are_asked_again_then_the_item_is_unscored_never_made_up(fake: FakeJudge) -> None:
    waits: list[float] = []
    app, job_id, reactor = rig(fake, waits, malformed_retries=2)
    fake.script = ["malformed", "not-json-body", "malformed", "malformed"]  # item 1: 3 bad answers; item 2: 1
    assert reactor.judge_job(job_id) == "judged"
    review = app.review(_review_id(app, job_id))
    first, second = review.items[0], review.items[1]
    assert first in review.unscored and first not in review.judged
    assert "malformed 3 times" in review.unscored[first]["reason"] and review.unscored[first]["attempts"] == 3
    assert second in review.judged and review.judged[second]["attempts"] == 2
    summary = app.get_job(job_id).evaluation["summary"]
    assert summary["judged"][0]["ei"]["scored"] == 2 and summary["judged"][0]["unscored"] == 1
    assert any("could not score 1 of 5 replies" in r for r in summary["reasons"])  # a review, not a score


def test_a_refused_key_or_a_long_rate_limit_stops_the_round_and_a_later_round_resumes(fake: FakeJudge) -> None:
    waits: list[float] = []
    app2, job2, good = rig(fake, waits)
    wrong = JudgeClient(JudgeConfig(fake.url, "fake-judge", "sk-wrong-key-9876"), sleep=waits.append)
    outcome = JudgingReactor(app2, good.read_object, wrong).judge_job(job2)
    assert outcome.startswith("the judge refused the API key (HTTP 401)") and "sk-wrong" not in outcome
    assert not app2.review(_review_id(app2, job2)).judged  # nothing scored, nothing made up
    fake.retry_after = "600"
    fake.script = ["429"]
    rounds = JudgingRounds(good, lambda: [job2], retry_s=60)
    assert "asked to wait 600 s" in rounds.round(now=0.0)[job2]
    assert rounds.round(now=30.0) == {}  # waits its turn
    assert rounds.round(now=61.0) == {job2: "judged"}
    assert app2.review(_review_id(app2, job2)).judge_complete


def _review_id(app: Pipeline, job_id: uuid.UUID) -> uuid.UUID:
    from domain.aggregates.quality_review import QualityReview

    return QualityReview.id_for(app.get_job(job_id).evaluation["results"].sha256)
