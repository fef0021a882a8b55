"""QualityReview: the scoring of one evaluation's generated replies (FR6.2.1, FR6.4.1;
docs/quality-validation.md), by a model judge and by people. One per results object (the id derives
from its digest), so a re-evaluation's results, recorded on two jobs, are scored once; its costs are
charged to the job whose pod produced them (`job_id`).

Each item (a scenario or a brand-voice prompt, keyed "ei/ei-001") has a blind order drawn when the
review opens (domain/quality/generations.py `blind_order`) and recorded here: the judge and the people
see the replies in that order, never which one is the baseline. One event per item judged (its
scores, the judge's model id and reason, tokens and cost) or left unscored (with why), one per
person's scoring of an item (a later scoring of the same item by the same person replaces it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.job_metadata import InvalidJobError
from domain.quality.generations import Generations, blind_order
from domain.quality.scores import MODEL, PEOPLE, Scored, SourceScores, averaged, check_scores
from domain.values import ArtifactRef

REVIEWER_MAX = 200
UNSCORED_REASON_MAX = 500


class QualityReview(Aggregate):
    TOPIC = "QualityReview"

    class Created(Aggregate.Created):
        TOPIC = "QualityReview.Created"
        job_id: UUID
        results: ArtifactRef
        items: list[str]                     # item keys, EI scenarios first, in suite order
        characteristics: dict[str, list[str]]  # part -> characteristic ids
        orders: dict[str, str]               # item key -> baseline_first | trained_first
        seed: str
        at: datetime

    class ItemJudged(Aggregate.Event):
        TOPIC = "QualityReview.ItemJudged"
        item: str
        judge_model: str
        baseline: dict[str, int]
        trained: dict[str, int]
        reason: str
        prompt_tokens: int
        completion_tokens: int
        cost: Decimal
        attempts: int
        at: datetime

    class ItemUnscored(Aggregate.Event):
        """The judge gave no usable answer after its retries: no score is made up."""
        TOPIC = "QualityReview.ItemUnscored"
        item: str
        judge_model: str
        reason: str
        prompt_tokens: int
        completion_tokens: int
        cost: Decimal
        attempts: int
        at: datetime

    class PersonScored(Aggregate.Event):
        TOPIC = "QualityReview.PersonScored"
        item: str
        reviewer: str
        baseline: dict[str, int]
        trained: dict[str, int]
        at: datetime

    @staticmethod
    def id_for(results_sha256: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"lora-pipeline:quality-review:{results_sha256}")

    @classmethod
    def open(cls, job_id: UUID, results: ArtifactRef, generations: Generations, at: datetime) -> QualityReview:
        items = [g.key for g in generations.all_items()]
        if not items:
            raise InvalidJobError("These evaluation results have no generated replies to score")
        characteristics = {part: [c.id for c in generations.characteristics(part)] for part in generations.parts}
        seed = results.sha256
        return cls._create(cls.Created, id=cls.id_for(results.sha256), job_id=job_id, results=results, items=items,
                           characteristics=characteristics, orders={k: blind_order(seed, k) for k in items},
                           seed=seed, at=at)

    @event(Created)
    def __init__(self, job_id: UUID, results: ArtifactRef, items: list[str], characteristics: dict[str, list[str]],
                 orders: dict[str, str], seed: str, at: datetime) -> None:
        self.job_id, self.results, self.items = job_id, results, list(items)
        self.characteristics, self.orders, self.seed, self.opened_at = dict(characteristics), dict(orders), seed, at
        self.judged: dict[str, dict[str, Any]] = {}
        self.unscored: dict[str, dict[str, Any]] = {}
        self.people: dict[str, dict[str, tuple[dict[str, int], dict[str, int]]]] = {}  # item -> reviewer -> scores
        self.cost = Decimal(0)
        self.prompt_tokens = self.completion_tokens = 0

    # --- the model judge ----------------------------------------------------------------------

    def characteristics_of(self, item: str) -> list[str]:
        return self.characteristics[item.split("/", 1)[0]]

    def record_judged(self, item: str, judge_model: str, baseline: Mapping[str, int], trained: Mapping[str, int],
                      reason: str, prompt_tokens: int, completion_tokens: int, cost: Decimal, attempts: int,
                      at: datetime) -> None:
        """Idempotent: an item already judged keeps its first scores."""
        self._check_item(item)
        if item in self.judged:
            return
        names = self.characteristics_of(item)
        self._item_judged(item=item, judge_model=judge_model[:200],
                          baseline=check_scores(baseline, names, "baseline"),
                          trained=check_scores(trained, names, "trained"), reason=reason[:1000],
                          prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost=cost,
                          attempts=attempts, at=at)

    @event(ItemJudged)
    def _item_judged(self, item: str, judge_model: str, baseline: dict[str, int], trained: dict[str, int],
                     reason: str, prompt_tokens: int, completion_tokens: int, cost: Decimal, attempts: int,
                     at: datetime) -> None:
        self.judged[item] = {"model": judge_model, "baseline": dict(baseline), "trained": dict(trained),
                             "reason": reason, "attempts": attempts, "cost": cost, "at": at}
        self.unscored.pop(item, None)
        self._spent(prompt_tokens, completion_tokens, cost)

    def record_unscored(self, item: str, judge_model: str, reason: str, prompt_tokens: int, completion_tokens: int,
                        cost: Decimal, attempts: int, at: datetime) -> None:
        self._check_item(item)
        if item in self.judged or item in self.unscored:
            return
        self._item_unscored(item=item, judge_model=judge_model[:200], reason=reason[:UNSCORED_REASON_MAX],
                            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost=cost,
                            attempts=attempts, at=at)

    @event(ItemUnscored)
    def _item_unscored(self, item: str, judge_model: str, reason: str, prompt_tokens: int, completion_tokens: int,
                       cost: Decimal, attempts: int, at: datetime) -> None:
        self.unscored[item] = {"model": judge_model, "reason": reason, "attempts": attempts, "at": at}
        self._spent(prompt_tokens, completion_tokens, cost)

    def _spent(self, prompt_tokens: int, completion_tokens: int, cost: Decimal) -> None:
        self.cost += cost
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens

    def to_judge(self) -> list[str]:
        """The items the model judge has not dealt with yet, in order (a restart resumes here)."""
        return [k for k in self.items if k not in self.judged and k not in self.unscored]

    @property
    def judge_complete(self) -> bool:
        return not self.to_judge()

    def model_scores(self) -> SourceScores:
        models = list(dict.fromkeys(j["model"] for j in [*self.judged.values(), *self.unscored.values()]))
        label = "model judge " + ", ".join(models) if models else "model judge"
        items = {k: Scored(k, _decimals(j["baseline"]), _decimals(j["trained"]), reasons=(j["reason"],))
                 for k, j in self.judged.items()}
        return SourceScores(MODEL, label, items, {k: u["reason"] for k, u in self.unscored.items()},
                            self.judge_complete, tuple(models))

    # --- people ---------------------------------------------------------------------------------

    def score_by_person(self, item: str, reviewer: str, first: Mapping[str, Any], second: Mapping[str, Any],
                        at: datetime) -> None:
        """A reviewer's scores of the replies as shown (first, second: the recorded blind order); a
        repeat by the same reviewer replaces their earlier scores of that item."""
        self._check_item(item)
        name = " ".join(reviewer.split())[:REVIEWER_MAX]
        if not name:
            raise InvalidJobError("A review needs the reviewer's name")
        names = self.characteristics_of(item)
        try:
            shown_first = check_scores(first, names, "Response 1")
            shown_second = check_scores(second, names, "Response 2")
        except ValueError as exc:
            raise InvalidJobError(f"Score every characteristic of both responses from 1 to 5 ({exc})") from None
        baseline, trained = (shown_second, shown_first) if self.orders[item] == "trained_first" else (
            shown_first, shown_second)
        if self.people.get(item, {}).get(name) == (baseline, trained):
            return
        self._person_scored(item=item, reviewer=name, baseline=baseline, trained=trained, at=at)

    @event(PersonScored)
    def _person_scored(self, item: str, reviewer: str, baseline: dict[str, int], trained: dict[str, int],
                       at: datetime) -> None:
        self.people.setdefault(item, {})[reviewer] = (dict(baseline), dict(trained))

    @property
    def reviewers(self) -> tuple[str, ...]:
        return tuple(sorted({r for by in self.people.values() for r in by}))

    def scored_by(self, reviewer: str) -> list[str]:
        return [k for k in self.items if reviewer in self.people.get(k, {})]

    @property
    def people_complete(self) -> bool:
        return all(self.people.get(k) for k in self.items)

    def people_scores(self) -> SourceScores:
        reviewers = self.reviewers
        label = f"{len(reviewers)} reviewer{'s' if len(reviewers) != 1 else ''} ({', '.join(reviewers)})"
        items = {k: averaged(k, list(self.people[k].values())) for k in self.items if self.people.get(k)}
        return SourceScores(PEOPLE, label, items, {}, self.people_complete, reviewers)

    def sources(self) -> list[SourceScores]:
        """The sources with any score, the model judge first."""
        found = []
        if self.judged or self.unscored:
            found.append(self.model_scores())
        if self.people:
            found.append(self.people_scores())
        return found

    def _check_item(self, item: str) -> None:
        if item not in self.orders:
            raise InvalidJobError(f"This review has no item {item!r}")


def _decimals(scores: Mapping[str, int]) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in scores.items()}


def complete_sources(review: QualityReview | None) -> Sequence[SourceScores]:
    """The sources the gate counts: those that dealt with every item."""
    return [s for s in review.sources() if s.complete] if review is not None else []
