"""ProbeSuite: an evaluation suite in the suite catalog (FR6.3.1's shipped knowledge suite, FR6.3.2's
client probes, FR6.2.1's EI scenarios, FR6.4.1's brand-voice rubric and clients' own rubrics, FR6.4.2),
validated before it is registered; jobs name it when they are created."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.quality.delivery import SuiteRef
from domain.quality.model import EiSuite, KnowledgeSuite, Rubric
from domain.quality.retention import PASSED
from domain.values import ArtifactRef

KINDS = ("knowledge", "probes", "ei", "rubric")
KIND_OF = {KnowledgeSuite: ("knowledge", "probes"), EiSuite: ("ei",), Rubric: ("rubric",)}


class ProbeSuite(Aggregate):
    """One per distinct content (the id derives from the SHA-256): the same bytes uploaded twice
    are one suite. Only a valid suite is registered (the validator's problems go back to the upload)."""

    TOPIC = "ProbeSuite"

    class Created(Aggregate.Created):
        TOPIC = "ProbeSuite.Created"
        name: str
        kind: str
        file: ArtifactRef
        questions: int
        categories: list[dict[str, Any]]
        registered_by: str
        at: datetime

    @staticmethod
    def id_for(sha256: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"lora-pipeline:probe-suite:{sha256}")

    @classmethod
    def register(cls, suite: KnowledgeSuite | EiSuite | Rubric, kind: str, file: ArtifactRef, registered_by: str,
                 at: datetime) -> ProbeSuite:
        """`questions` counts the items (questions, scenarios, a rubric's prompts); `categories` lists the
        question categories, the scenario categories, or the rubric's characteristics."""
        if kind not in KIND_OF[type(suite)]:
            raise ValueError(f"suite kind {kind!r} is not one of {', '.join(KIND_OF[type(suite)])} for this suite")
        if isinstance(suite, KnowledgeSuite):
            count, listed = len(suite.questions), categories(suite)
        elif isinstance(suite, EiSuite):
            count, listed = len(suite.scenarios), scenario_categories(suite)
        else:
            count, listed = len(suite.prompts), [{"id": c.id, "name": c.name, "description": c.description}
                                                  for c in suite.characteristics]
        return cls._create(cls.Created, id=cls.id_for(file.sha256), name=suite.name, kind=kind, file=file,
                           questions=count, categories=listed, registered_by=registered_by, at=at)

    @event(Created)
    def __init__(self, name: str, kind: str, file: ArtifactRef, questions: int, categories: list[dict[str, Any]],
                 registered_by: str, at: datetime) -> None:
        self.name, self.kind, self.file, self.questions = name, kind, file, questions
        self.categories = categories
        self.registered_by, self.registered_at = registered_by, at

    @property
    def ref(self) -> SuiteRef:
        return SuiteRef(self.id, self.name, self.file)


def categories(suite: KnowledgeSuite) -> list[dict[str, Any]]:
    """Each category in file order with its question count and the retention it must keep: the
    suite's threshold, 100 % for a category holding a critical question, else FR6.3.1's 95 %
    (domain/quality/retention.py `threshold_of`, the rule the figures are judged by)."""
    out = []
    for name in suite.categories:
        questions = [q for q in suite.questions if q.category == name]
        marked = any(q.critical for q in questions)
        threshold = Decimal(suite.critical_categories[name]) if name in suite.critical_categories else (
            Decimal(100) if marked else PASSED)
        out.append({"name": name, "questions": len(questions), "critical": name in suite.critical_categories
                    or marked, "threshold": str(threshold)})
    return out


def scenario_categories(suite: EiSuite) -> list[dict[str, Any]]:
    counts: dict[str, int] = {}
    for scenario in suite.scenarios:
        counts[scenario.category] = counts.get(scenario.category, 0) + 1
    return [{"name": name, "questions": n} for name, n in counts.items()]
