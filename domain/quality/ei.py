"""Emotional-intelligence suites (FR6.2.1), from JSON Lines or JSON."""

from __future__ import annotations

from domain.quality.decoding import decode_json, text_of
from domain.quality.fields import Fields, Place, describe
from domain.quality.items import Items, check_count, format_version
from domain.quality.model import EI_CATEGORIES, EI_DIFFICULTIES, EiSuite, Scenario
from domain.quality.problems import Problem, ProblemLog

SHAPE = "a list of scenarios or an object with 'scenarios'"
SUITE = "The suite"


def read_ei(data: bytes, name: str, log: ProblemLog) -> EiSuite | None:
    text = text_of(data, log)
    decoded = None if text is None else decode_json(text, log, collection="scenarios", item_key="prompt")
    if decoded is None:
        return None
    if decoded.json_lines:
        if decoded.header is not None:
            line, header = decoded.header
            format_version(Fields(header, f"The header on line {line}", Place(line), log),  # type: ignore[arg-type]
                           required=True)
        return _suite(name, log, Place(), [(Place(line), value) for line, value in decoded.lines])
    top = decoded.top
    if isinstance(top, list):
        return _suite(name, log, Place(), [(Place(path=f"[{i}]"), v) for i, v in enumerate(top)])
    if not isinstance(top, dict):
        log.add(Problem(None, None, f"The file must be {SHAPE}, not {describe(top)}"))
        return None
    fields = Fields(top, SUITE, Place(), log)
    format_version(fields, required=False)
    items = fields.array("scenarios")
    if items is None:
        return None
    return _suite(name, log, Place(path="scenarios"),
                  [(Place(path=f"scenarios[{i}]"), v) for i, v in enumerate(items)])


def _suite(name: str, log: ProblemLog, place: Place, items: list[tuple[Place, object]]) -> EiSuite | None:
    counted = check_count(log, place, SUITE, len(items), "scenarios")
    scenarios = Items("scenario", log).read(items, _scenario)
    return None if scenarios is None or not counted else EiSuite(name, scenarios)


def _scenario(fields: Fields, scenario_id: str | None) -> Scenario | None:
    category = fields.one_of("category", EI_CATEGORIES)
    difficulty = fields.one_of("difficulty", EI_DIFFICULTIES)
    persona, arc, topic = (fields.string(key).strip() for key in ("persona", "emotional_arc", "topic"))
    system_prompt = fields.optional_string("system_prompt") or ""
    prompt, notes = fields.string("prompt").strip(), fields.string("reference_notes").strip()
    if category is None or difficulty is None:
        return None
    return Scenario(scenario_id or "", category, difficulty, persona, arc, topic, system_prompt, prompt, notes)
