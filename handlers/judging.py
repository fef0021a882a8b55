"""The model judge's reactor (FR6.2.1, FR6.4.1; docs/quality-validation.md, "The model judge"): for a job
whose evaluation (TrainingJob.Evaluated) carries generated replies, it opens the review of those
results (the blind order of each item drawn and recorded), asks the judge about each item not judged
yet, records the verdicts in batches — each batch with the review's cost so far charged to the job's
budget line, in one save — and, once every item is judged or marked unscored, records the job's
summary recomputed with the scores (TrainingJob.Judged), which the delivery gate follows.

Idempotent and resumable: the review knows which items are done, so a redelivered event, a rescan or
a restart asks only about the rest. A judge that is down or refuses (a bad key) leaves the items
unjudged, never scored; they are asked about on a later round."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.aggregates.quality_review import QualityReview, complete_sources
from domain.applications import Pipeline
from domain.quality.generations import Generated, Generations, shown_pair, unblind
from domain.quality.judging import MalformedJudgementError, judging_cost, messages, read_judgement, response_format
from domain.quality.results import EvaluationResults, ResultsFormatError, parse, summary
from domain.values import ArtifactRef
from handlers.evaluation import ReadObject
from handlers.judge_client import JudgeClient, JudgeRefusedError, JudgeUnavailableError
from infra.objectstore import ArtifactCorruptError, ArtifactMissingError

log = logging.getLogger(__name__)

BATCH = 10


@dataclass(frozen=True)
class Verdict:
    """One item's outcome: scores (baseline's, trained's) or why it is unscored, with what it cost."""

    item: str
    model: str
    baseline: dict[str, int] | None
    trained: dict[str, int] | None
    reason: str
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal
    attempts: int

    def apply(self, review: QualityReview, at: datetime) -> None:
        if self.baseline is not None and self.trained is not None:
            review.record_judged(self.item, self.model, self.baseline, self.trained, self.reason, self.prompt_tokens,
                                 self.completion_tokens, self.cost, self.attempts, at)
        else:
            review.record_unscored(self.item, self.model, self.reason, self.prompt_tokens, self.completion_tokens,
                                   self.cost, self.attempts, at)


def ask(client: JudgeClient, review: QualityReview, generations: Generations, item: Generated) -> Verdict:
    """The judge's scores of one item, asked again while the answer is malformed (then unscored)."""
    config = client.config
    order = review.orders[item.key]
    characteristics = generations.characteristics(item.part)
    rubric = "FR6.2.1 emotional intelligence" if item.part == "ei" else (
        generations.rubric.name if generations.rubric else "brand voice")
    first, second = shown_pair(item, order)
    asked, schema = messages(item.part, item, characteristics, rubric, first, second), response_format(
        item.part, characteristics)
    prompt_tokens = completion_tokens = 0
    model, problem = config.model, ""
    tries = 1 + config.malformed_retries
    for attempt in range(1, tries + 1):
        answer = client.complete(asked, schema)
        model = answer.model
        prompt_tokens += answer.prompt_tokens
        completion_tokens += answer.completion_tokens
        cost = judging_cost(prompt_tokens, completion_tokens, config.input_price, config.output_price)
        if answer.content is None:
            problem = answer.problem
            continue
        try:
            judgement = read_judgement(answer.content, characteristics)
        except MalformedJudgementError as exc:
            problem = str(exc)
            continue
        baseline, trained = unblind(order, judgement.first, judgement.second)
        return Verdict(item.key, model, baseline, trained, judgement.reason, prompt_tokens, completion_tokens, cost,
                       attempt)
    return Verdict(item.key, model, None, None, f"the judge's answer was malformed {tries} times (last: {problem})",
                   prompt_tokens, completion_tokens,
                   judging_cost(prompt_tokens, completion_tokens, config.input_price, config.output_price), tries)


class JudgingReactor:
    def __init__(self, app: Pipeline, read_object: ReadObject, client: JudgeClient | None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc), batch: int = BATCH,
                 still_leading: Callable[[], bool] = lambda: True) -> None:
        self.app, self.read_object, self.client, self.clock, self.batch = app, read_object, client, clock, batch
        self.still_leading = still_leading
        self._results: dict[str, EvaluationResults] = {}

    def results(self, ref: ArtifactRef) -> EvaluationResults:
        if ref.sha256 not in self._results:
            self._results = {ref.sha256: parse(self.read_object(ref))}  # one at a time: jobs are judged in turn
        return self._results[ref.sha256]

    def judge_job(self, job_id: UUID) -> str:
        """What came of it: "judged", "nothing to judge", "no judge", or why the judge stopped."""
        job = self.app.get_job(job_id)
        evaluation = job.evaluation
        if evaluation is None:
            return "nothing to judge"
        ref: ArtifactRef = evaluation["results"]
        try:
            results = self.results(ref)
        except (ArtifactMissingError, ArtifactCorruptError, ResultsFormatError) as exc:
            log.warning("judging: job %s: its results cannot be read (%s)", job_id, exc)
            return "results unreadable"
        generations = results.generations
        if generations is None or not generations.parts:
            return "nothing to judge"
        producer = evaluation.get("evaluated_by") or job.id  # a re-evaluation's pod produced them: it pays
        review = self.app.open_review(producer, ref, generations, self.clock())
        if self.client is None:
            return "no judge"
        stopped = self.judge_items(review, generations)
        review = self.app.review(review.id) or review
        self.record_summary(job_id, review, results)
        return stopped or "judged"

    def judge_items(self, review: QualityReview, generations: Generations) -> str | None:
        """Asks about each item not judged yet, a batch at a time; returns why it stopped early (None: done)."""
        assert self.client is not None
        items = {g.key: g for g in generations.all_items()}
        pending = [items[k] for k in review.to_judge() if k in items]
        for start in range(0, len(pending), self.batch):
            if not self.still_leading():
                return "no longer leading"
            verdicts: list[Verdict] = []
            stopped = None
            for item in pending[start:start + self.batch]:
                try:
                    verdicts.append(ask(self.client, review, generations, item))
                except (JudgeUnavailableError, JudgeRefusedError) as exc:
                    log.warning("judging: review %s stopped at %s: %s", review.id, item.key, exc)
                    stopped = str(exc)
                    break
            if verdicts:
                at = self.clock()
                review = self.app.record_judgements(review.id, lambda r, vs=verdicts, t=at: [
                    v.apply(r, t) for v in vs], at)
            if stopped:
                return stopped
        return None

    def record_summary(self, job_id: UUID, review: QualityReview, results: EvaluationResults) -> None:
        """The job's summary with every complete source's scores (when any is complete)."""
        sources = complete_sources(review)
        if sources:
            self.app.record_judged(job_id, review.id, review.results.sha256, summary(results, sources), self.clock())


def judged_summary(results: EvaluationResults, review: QualityReview) -> dict[str, Any] | None:
    """The summary a job records once a source is complete (None before)."""
    sources = complete_sources(review)
    return summary(results, sources) if sources else None


class JudgingRounds:
    """The judging loop's rounds (pipeline/workers/handlers.py runs one every PIPELINE_JUDGE_POLL_S under the
    provisioning lease): the evaluated jobs whose replies the model judge has not finished (`pending`, from
    the jobs read model), each judged in turn; a job whose judge stopped (down, rate limited past the bound,
    refused) waits `retry_s` before it is tried again."""

    def __init__(self, reactor: JudgingReactor, pending: Callable[[], list[UUID]], retry_s: float) -> None:
        self.reactor, self.pending, self.retry_s = reactor, pending, retry_s
        self.not_before: dict[UUID, float] = {}

    def round(self, now: float) -> dict[UUID, str]:
        outcomes = {}
        for job_id in self.pending():
            if self.not_before.get(job_id, 0.0) > now or not self.reactor.still_leading():
                continue
            outcome = self.reactor.judge_job(job_id)
            outcomes[job_id] = outcome
            if outcome == "judged":
                self.not_before.pop(job_id, None)
            else:
                self.not_before[job_id] = now + self.retry_s
                log.info("judging: job %s: %s; tried again in %.0f s", job_id, outcome, self.retry_s)
        return outcomes
