"""Brand-voice rubrics (FR6.4.1, FR6.4.2): characteristics scored 1-5, badge thresholds, client messages."""

from __future__ import annotations

import re
from decimal import Decimal
from itertools import pairwise
from types import MappingProxyType

from domain.quality.decoding import decode_document, text_of
from domain.quality.fields import Fields, Place, describe
from domain.quality.items import Items, check_count, format_version
from domain.quality.model import (
    DEFAULT_THRESHOLDS,
    MAX_CHARACTERISTICS,
    MIN_CHARACTERISTICS,
    SCORE_LEVELS,
    Badge,
    Characteristic,
    Rubric,
    RubricPrompt,
    Thresholds,
)
from domain.quality.problems import Problem, ProblemLog

SHAPE = "a JSON object with 'format_version', 'name' and 'characteristics'"
SUBJECT = "The rubric"
ANCHOR_LEVELS = ("1", "5")
# Ids become column names of the scoring export (FR6.4.1: 30 responses x 10 characteristics as CSV).
ID_PATTERN = re.compile(r"[a-z][a-z0-9_]*\Z")
LOWEST, HIGHEST = Decimal(1), Decimal(5)


def read_rubric(data: bytes, log: ProblemLog) -> Rubric | None:
    text = text_of(data, log)
    decoded = None if text is None else decode_document(text, log)
    if decoded is None:
        return None
    if not isinstance(decoded.top, dict):
        log.add(Problem(None, None, f"The file must be {SHAPE}, not {describe(decoded.top)}"))
        return None
    fields = Fields(decoded.top, SUBJECT, Place(), log)
    version = format_version(fields, required=True)
    name = fields.string("name").strip()
    characteristics = _characteristics(fields)
    thresholds = _thresholds(fields)
    prompts = _prompts(fields)
    if fields.failed or characteristics is None or thresholds is None or prompts is None:
        return None
    return Rubric(version, name, characteristics, thresholds, prompts)


def _characteristics(fields: Fields) -> tuple[Characteristic, ...] | None:
    items = fields.array("characteristics")
    if items is None:
        return None
    if not MIN_CHARACTERISTICS <= len(items) <= MAX_CHARACTERISTICS:
        fields.problem("characteristics", f"{SUBJECT} has {len(items)} characteristics, "
                                          f"expected {MIN_CHARACTERISTICS} to {MAX_CHARACTERISTICS}")
    places = [(Place(path=f"characteristics[{i}]"), value) for i, value in enumerate(items)]
    return Items("characteristic", fields.log).read(places, _characteristic)


def _characteristic(fields: Fields, characteristic_id: str | None) -> Characteristic | None:
    if characteristic_id is not None and not ID_PATTERN.match(characteristic_id):
        fields.problem("id", f"{fields.subject} has 'id' '{characteristic_id}', expected lowercase letters, "
                             "digits and underscores, starting with a letter")
    name, description = fields.string("name").strip(), fields.string("description").strip()
    scoring = _scoring(fields)
    return None if scoring is None else Characteristic(characteristic_id or "", name, description, scoring)


def _scoring(fields: Fields) -> MappingProxyType[str, str] | None:
    obj = fields.object("scoring")
    if obj is None:
        return None
    levels = fields.nested("scoring", obj)
    levels.only_keys(SCORE_LEVELS, "score level")
    texts = {level: levels.string(level).strip() for level in SCORE_LEVELS if level in obj or level in ANCHOR_LEVELS}
    fields.failed |= levels.failed
    return None if levels.failed else MappingProxyType(texts)


def _thresholds(fields: Fields) -> Thresholds | None:
    obj = fields.object("thresholds", optional=True)
    if obj is None:
        return DEFAULT_THRESHOLDS
    given = fields.nested("thresholds", obj)
    badges = _badges(given) if "badges" in obj else DEFAULT_THRESHOLDS.badges
    target = given.number("target_score", LOWEST, HIGHEST, optional=True)
    flag_below = given.number("flag_below", LOWEST, HIGHEST, optional=True)
    fields.failed |= given.failed
    if given.failed or badges is None:
        return None
    return Thresholds(badges, target if target is not None else DEFAULT_THRESHOLDS.target_score,
                      flag_below if flag_below is not None else DEFAULT_THRESHOLDS.flag_below)


def _badges(thresholds: Fields) -> tuple[Badge, ...] | None:
    items = thresholds.array("badges")
    if items is None:
        return None
    if not items:
        thresholds.problem("badges", f"{SUBJECT} has no badges in 'thresholds.badges'")
        return None
    badges = [_badge(number, thresholds.place.child("badges").item(number - 1), value, thresholds)
              for number, value in enumerate(items, start=1)]
    if any(badge is None for badge in badges):
        return None
    read = tuple(badge for badge in badges if badge is not None)
    for number, (higher, lower) in enumerate(pairwise(read), start=2):
        if lower.min_score >= higher.min_score:
            thresholds.problem(f"badges[{number - 1}].min_score", f"Badge #{number} has 'min_score' {lower.min_score}, "
                               f"expected less than badge #{number - 1}'s {higher.min_score} (highest first)")
    if read[-1].min_score != LOWEST:
        thresholds.problem(f"badges[{len(read) - 1}].min_score", f"Badge #{len(read)} has 'min_score' "
                           f"{read[-1].min_score}, but the last badge must start at 1 so that every score gets one")
    return None if thresholds.failed else read


def _badge(number: int, place: Place, value: object, thresholds: Fields) -> Badge | None:
    if not isinstance(value, dict):
        thresholds.failed = True
        thresholds.log.add(place.problem(f"Badge #{number} is not an object (it is {describe(value)})"))
        return None
    fields = Fields(value, f"Badge #{number}", place, thresholds.log)
    label, min_score = fields.string("label").strip(), fields.number("min_score", LOWEST, HIGHEST)
    thresholds.failed |= fields.failed
    return None if fields.failed or min_score is None else Badge(label, min_score)


def _prompts(fields: Fields) -> tuple[RubricPrompt, ...] | None:
    items = fields.array("prompts", optional=True)
    if items is None:
        return None if fields.failed else ()
    if not check_count(fields.log, Place(path="prompts"), SUBJECT, len(items), "prompts", at_least=0):
        return None
    places = [(Place(path=f"prompts[{i}]"), value) for i, value in enumerate(items)]
    return Items("prompt", fields.log).read(places, _prompt)


def _prompt(fields: Fields, prompt_id: str | None) -> RubricPrompt:
    persona, topic = fields.optional_string("persona"), fields.optional_string("topic")
    return RubricPrompt(prompt_id or "", persona and persona.strip(), topic and topic.strip(),
                        fields.string("prompt").strip())
