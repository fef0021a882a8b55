"""The evaluation suites' typed form and their fixed limits (docs/quality-suites.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

FORMAT_VERSION = 1
MAX_ITEMS = 2_000
LETTERS = ("A", "B", "C", "D")
KNOWLEDGE_DIFFICULTIES = ("basic", "intermediate", "advanced")
EI_CATEGORIES = ("empathy_detection", "emotional_awareness", "supportive_responses", "conflict_handling")
EI_DIFFICULTIES = ("easy", "medium", "hard")
SCORE_LEVELS = ("1", "2", "3", "4", "5")
MIN_CHARACTERISTICS, MAX_CHARACTERISTICS = 5, 15  # FR6.4.2


@dataclass(frozen=True)
class Question:
    """A multiple-choice question (FR6.3.1, FR6.3.2); `choices` are the texts of A, B, C and D."""

    id: str
    category: str
    difficulty: str | None
    question: str
    choices: tuple[str, str, str, str]
    answer: str
    critical: bool = False

    def choice(self, letter: str) -> str:
        return self.choices[LETTERS.index(letter)]


@dataclass(frozen=True)
class KnowledgeSuite:
    """Questions, and the retention (a percentage) each named category must keep, e.g. compliance: 100."""

    name: str
    questions: tuple[Question, ...]
    critical_categories: Mapping[str, Decimal]

    @property
    def categories(self) -> tuple[str, ...]:
        """In order of first appearance."""
        return tuple(dict.fromkeys(q.category for q in self.questions))


@dataclass(frozen=True)
class Scenario:
    """An emotional-intelligence scenario (FR6.2.1): the client's message and what a good reply does."""

    id: str
    category: str
    difficulty: str
    persona: str
    emotional_arc: str
    topic: str
    system_prompt: str
    prompt: str
    reference_notes: str


@dataclass(frozen=True)
class EiSuite:
    name: str
    scenarios: tuple[Scenario, ...]


@dataclass(frozen=True)
class Characteristic:
    """One trait of a brand voice, scored 1-5; `scoring` describes some levels ("1" and "5" at least)."""

    id: str
    name: str
    description: str
    scoring: Mapping[str, str]


@dataclass(frozen=True)
class Badge:
    label: str
    min_score: Decimal


@dataclass(frozen=True)
class Thresholds:
    """Badges from the highest `min_score` down (the last starts at 1); the target, and the score under
    which a characteristic is flagged."""

    badges: tuple[Badge, ...]
    target_score: Decimal
    flag_below: Decimal

    def badge_for(self, score: Decimal) -> Badge:
        return next((b for b in self.badges if score >= b.min_score), self.badges[-1])


# FR6.4.1's badges; a custom rubric (FR6.4.2) that gives no thresholds is judged by these.
DEFAULT_THRESHOLDS = Thresholds(
    badges=(
        Badge("✓ Excellent Brand Alignment", Decimal("4.5")),
        Badge("✓ Strong Brand Alignment", Decimal("4.25")),
        Badge("⚠ Acceptable Alignment", Decimal("4.0")),
        Badge("✗ Needs Improvement", Decimal("1")),
    ),
    target_score=Decimal("4.25"),
    flag_below=Decimal("3"),
)


@dataclass(frozen=True)
class RubricPrompt:
    id: str
    persona: str | None
    topic: str | None
    prompt: str


@dataclass(frozen=True)
class Rubric:
    """A brand-voice rubric (FR6.4.1, FR6.4.2) and the client messages its responses are generated from."""

    format_version: int
    name: str
    characteristics: tuple[Characteristic, ...]
    thresholds: Thresholds
    prompts: tuple[RubricPrompt, ...]
