"""The responses a pod generates for the judged parts of an evaluation (FR6.2.1, FR6.4.1): for each
emotional-intelligence scenario and each brand-voice prompt, the baseline's and the trained model's
reply, greedy (no sampling) up to `max_new_tokens`, so a re-run gives the same texts. Scoring them
is the control plane's (a model judge or people: docs/quality-validation.md), never the pod's, so no
judge's key ever reaches a pod.

The results carry everything scoring needs: the scenario's scaffolding and the rubric itself (in its
file format, docs/quality-suites.md), so a review reads one object, fixed by its digest."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from domain.quality.model import Characteristic, Rubric
from domain.quality.suites import load_rubric

EI, BRAND_VOICE = "ei", "brand_voice"
PARTS = (EI, BRAND_VOICE)
PART_TITLES = {EI: "Emotional intelligence", BRAND_VOICE: "Brand voice"}
BASELINE_FIRST, TRAINED_FIRST = "baseline_first", "trained_first"

# FR6.2.1's three scores, with the anchors a judge (a model or a person) reads.
EI_CHARACTERISTICS = (
    Characteristic("empathy", "Empathy", "Recognizes and validates emotions", {
        "1": "Ignores or dismisses the client's feelings; goes straight to generic advice.",
        "3": "Acknowledges the feeling in passing (\"I understand\") without naming or validating it.",
        "5": "Names the client's specific emotion, validates it, and lets it shape the whole reply."}),
    Characteristic("clarity", "Clarity", "Clear, understandable explanations", {
        "1": "Confusing, jargon-heavy or off the point; the client could not act on it.",
        "3": "Understandable, with some unexplained terms or padding.",
        "5": "Plain words, one idea at a time, every term explained; easy to act on."}),
    Characteristic("appropriateness", "Appropriateness", "Tone matches situation", {
        "1": "The tone clashes with the situation (flippant about a loss, alarmist about a small risk).",
        "3": "A neutral tone that neither clashes nor fits the client's state.",
        "5": "The tone fits the client's emotional state and the stakes exactly."}),
)


@dataclass(frozen=True)
class Generated:
    """One prompt and both models' replies; the scaffolding is the scenario's (EI) or the prompt's."""

    id: str
    part: str
    prompt: str
    baseline: str
    trained: str
    system_prompt: str = ""
    category: str = ""
    difficulty: str = ""
    persona: str = ""
    emotional_arc: str = ""
    topic: str = ""
    reference_notes: str = ""

    @property
    def key(self) -> str:
        """Unique across the parts (a rubric's prompt ids may repeat a scenario's): "ei/ei-001"."""
        return f"{self.part}/{self.id}"


@dataclass(frozen=True)
class Generations:
    max_new_tokens: int
    ei_suite: str | None = None
    ei: tuple[Generated, ...] = ()
    rubric: Rubric | None = None
    brand_voice: tuple[Generated, ...] = ()

    def items(self, part: str) -> tuple[Generated, ...]:
        return self.ei if part == EI else self.brand_voice

    def characteristics(self, part: str) -> tuple[Characteristic, ...]:
        if part == EI:
            return EI_CHARACTERISTICS
        return self.rubric.characteristics if self.rubric is not None else ()

    @property
    def parts(self) -> tuple[str, ...]:
        """The parts with something to score, EI first."""
        return tuple(p for p in PARTS if self.items(p))

    def all_items(self) -> tuple[Generated, ...]:
        return self.ei + self.brand_voice

    def to_dict(self) -> dict[str, Any]:
        return {"max_new_tokens": self.max_new_tokens, "ei_suite": self.ei_suite,
                "ei": [asdict(g) for g in self.ei], "rubric": rubric_dict(self.rubric) if self.rubric else None,
                "brand_voice": [asdict(g) for g in self.brand_voice]}

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> Generations:
        rubric = body.get("rubric")
        return cls(int(body["max_new_tokens"]), body.get("ei_suite"),
                   tuple(Generated(**g) for g in body.get("ei") or ()),
                   load_rubric(json.dumps(rubric).encode()) if rubric else None,
                   tuple(Generated(**g) for g in body.get("brand_voice") or ()))


def rubric_dict(rubric: Rubric) -> dict[str, Any]:
    """The rubric in its file format (docs/quality-suites.md), less its prompts: `load_rubric` reads it back."""
    return {"format_version": rubric.format_version, "name": rubric.name,
            "characteristics": [{"id": c.id, "name": c.name, "description": c.description,
                                 "scoring": dict(c.scoring)} for c in rubric.characteristics],
            "thresholds": {"badges": [{"label": b.label, "min_score": _number(b.min_score)}
                                      for b in rubric.thresholds.badges],
                           "target_score": _number(rubric.thresholds.target_score),
                           "flag_below": _number(rubric.thresholds.flag_below)}}


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def blind_order(seed: str, item_id: str) -> str:
    """Which reply a judge sees first, drawn per item from an RNG seeded with the review's seed (the
    results' digest): position bias averages out over a review, and the draw is reproducible."""
    return TRAINED_FIRST if random.Random(f"{seed}:{item_id}").random() < 0.5 else BASELINE_FIRST


def shown_pair(item: Generated, order: str) -> tuple[str, str]:
    """The two replies in the order a blind judge sees them (first, second)."""
    return (item.trained, item.baseline) if order == TRAINED_FIRST else (item.baseline, item.trained)


def unblind(order: str, first: Mapping[str, Any], second: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(baseline's, trained's) from what was given for the first and second reply shown."""
    return (dict(second), dict(first)) if order == TRAINED_FIRST else (dict(first), dict(second))
