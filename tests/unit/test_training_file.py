"""The training-file format: validation messages and places, statistics, eligibility."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.training_file import (
    HIGH_QUALITY,
    MAX_PROBLEMS,
    REVIEW,
    DatasetFormatError,
    IneligibleTrainingFileError,
    Refusal,
    check_eligibility,
    decoding,
    load,
    quality_indicator,
    summarize,
    validate,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "financial-advisory.json"
BROKEN = ROOT / "samples" / "broken-missing-target.json"


def pair(n: int = 1, **fields: object) -> dict[str, Any]:
    return {"system_prompt": "Be kind.", "user_input": f"Question {n}?", "target_response": f"Answer {n}.", **fields}


def conversation(conv_id: str = "conv_1", pairs: int = 2, **fields: object) -> dict[str, Any]:
    return {
        "id": conv_id, "persona": "Single parent", "emotional_arc": "anxious to reassured", "topic": "budgeting",
        "quality": {"empathy": 4.5, "clarity": 4, "appropriateness": 3.5}, "human_reviewed": False,
        "training_pairs": [pair(n) for n in range(1, pairs + 1)], **fields,
    }


def document(*conversations: dict[str, Any], **fields: object) -> dict[str, Any]:
    return {"format_version": 1, "name": "Test file", "conversations": list(conversations), **fields}


def encode(value: object) -> bytes:
    return json.dumps(value).encode()


def only_problem(data: bytes) -> tuple[str, str]:
    report = validate(data)
    assert len(report.problems) == 1, report.problems
    return report.problems[0].place, report.problems[0].message


# --- the sample -----------------------------------------------------------------------------------


def test_the_committed_sample_is_valid_and_has_about_300_conversations() -> None:
    report = validate(SAMPLE.read_bytes())
    assert report.ok and report.first_problem is None and report.problem_count == 0
    assert report.training_file is not None and len(report.training_file.conversations) == 300


def test_the_sample_statistics_equal_counts_made_directly_from_its_json() -> None:
    data = SAMPLE.read_bytes()
    conversations = json.loads(data)["conversations"]
    pairs = sum(len(c["training_pairs"]) for c in conversations)
    stats = summarize(data)
    assert (stats.name, stats.conversation_count, stats.training_pair_count) == (
        "Financial advisory - sample", len(conversations), pairs)
    assert stats.average_pairs_per_conversation == round(Decimal(pairs) / len(conversations), 2)
    for dimension in ("empathy", "clarity", "appropriateness"):
        exact = sum(Decimal(str(c["quality"][dimension])) for c in conversations) / len(conversations)
        assert getattr(stats.quality, dimension) == round(exact, 2)
    assert {s.value: s.count for s in stats.personas} == Counter(c["persona"] for c in conversations)
    assert {s.value: s.count for s in stats.topics} == Counter(c["topic"] for c in conversations)
    assert {s.value: s.count for s in stats.emotional_arcs} == Counter(c["emotional_arc"] for c in conversations)
    reviewed = sum(c["human_reviewed"] for c in conversations)
    assert stats.human_reviewed_count == reviewed
    assert stats.human_reviewed_percent == round(Decimal(100 * reviewed) / len(conversations), 1)
    assert 10 <= stats.human_reviewed_percent <= 20
    assert stats.quality_indicator == HIGH_QUALITY


def test_size_and_digest_are_those_of_the_exact_bytes() -> None:
    data = SAMPLE.read_bytes()
    stats = summarize(data)
    assert stats.size_bytes == len(data) == SAMPLE.stat().st_size
    assert stats.sha256 == hashlib.sha256(data).hexdigest()
    assert summarize(data + b"\n").sha256 != stats.sha256


def test_distributions_list_the_most_frequent_first_with_rounded_percentages() -> None:
    data = encode(document(conversation("a"), conversation("b"), conversation("c", persona="Retiree")))
    personas = summarize(data).personas
    assert [(s.value, s.count, s.percent) for s in personas] == [
        ("Single parent", 2, Decimal("66.7")), ("Retiree", 1, Decimal("33.3"))]


def test_the_sample_generator_reproduces_the_committed_sample_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "sample.json"
    subprocess.run([sys.executable, "scripts/generate_sample.py", "--out", str(out)], cwd=ROOT, check=True,
                   capture_output=True)
    assert out.read_bytes() == SAMPLE.read_bytes()


def test_the_generator_honours_the_conversation_count(tmp_path: Path) -> None:
    out = tmp_path / "small.json"
    subprocess.run([sys.executable, "scripts/generate_sample.py", "--conversations", "12", "--out", str(out)],
                   cwd=ROOT, check=True, capture_output=True)
    assert summarize(out.read_bytes()).conversation_count == 12


# --- messages and places --------------------------------------------------------------------------


def test_the_spec_example_message_is_reported_word_for_word() -> None:
    before = [conversation(f"conv_{n}", pairs=2) for n in range(23)]  # 46 pairs before it
    broken = conversation("conv_abc123", pairs=3)
    del broken["training_pairs"][0]["target_response"]
    report = validate(encode(document(*before, broken)))
    problem = report.first_problem
    assert problem is not None and len(report.problems) == 1
    assert problem.message == "Training pair #47 (conversation conv_abc123) is missing 'target_response'"
    assert problem.place == "conversations[23].training_pairs[0].target_response"
    assert (problem.conversation_id, problem.conversation_number, problem.pair_number) == ("conv_abc123", 24, 47)


def test_the_broken_sample_has_exactly_one_problem_a_missing_target_response() -> None:
    assert only_problem(BROKEN.read_bytes()) == (
        "conversations[1].training_pairs[1].target_response",
        "Training pair #4 (conversation conv_abc123) is missing 'target_response'",
    )


Mutation = Callable[[dict[str, Any]], None]
_DELETE = object()


def _set(path: str, value: object) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = doc
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        if value is _DELETE:
            del target[last]
        else:
            target[int(last) if last.isdigit() else last] = value
    return mutate


C0, P1 = "conversations.0", "conversations.0.training_pairs.1"

CASES = [
    (_set(f"{C0}.persona", _DELETE), "conversations[0].persona", "Conversation #1 (conv_1) is missing 'persona'"),
    (_set(f"{C0}.topic", "  "), "conversations[0].topic", "Conversation #1 (conv_1) has an empty 'topic'"),
    (_set(f"{C0}.emotional_arc", 3), "conversations[0].emotional_arc",
     "Conversation #1 (conv_1) has 'emotional_arc' that is a number, expected a string"),
    (_set(f"{C0}.id", ""), "conversations[0].id", "Conversation #1 has an empty 'id'"),
    (_set(f"{C0}.id", None), "conversations[0].id", "Conversation #1 has 'id' that is null, expected a string"),
    (_set(f"{C0}.quality.empathy", 5.5), "conversations[0].quality.empathy",
     "Conversation #1 (conv_1) has 'quality.empathy' of 5.5, expected a number from 0 to 5"),
    (_set(f"{C0}.quality.clarity", -1), "conversations[0].quality.clarity",
     "Conversation #1 (conv_1) has 'quality.clarity' of -1, expected a number from 0 to 5"),
    (_set(f"{C0}.quality.clarity", "4"), "conversations[0].quality.clarity",
     "Conversation #1 (conv_1) has 'quality.clarity' that is a string, expected a number from 0 to 5"),
    (_set(f"{C0}.quality.appropriateness", True), "conversations[0].quality.appropriateness",
     "Conversation #1 (conv_1) has 'quality.appropriateness' that is a boolean, expected a number from 0 to 5"),
    (_set(f"{C0}.quality.empathy", float("nan")), "conversations[0].quality.empathy",
     "Conversation #1 (conv_1) has 'quality.empathy' of NaN, expected a number from 0 to 5"),
    (_set(f"{C0}.quality.empathy", _DELETE), "conversations[0].quality.empathy",
     "Conversation #1 (conv_1) is missing 'quality.empathy'"),
    (_set(f"{C0}.quality", [4, 4, 4]), "conversations[0].quality",
     "Conversation #1 (conv_1) has 'quality' that is an array, expected an object"),
    (_set(f"{C0}.human_reviewed", "yes"), "conversations[0].human_reviewed",
     "Conversation #1 (conv_1) has 'human_reviewed' that is a string, expected true or false"),
    (_set(f"{C0}.training_pairs", []), "conversations[0].training_pairs",
     "Conversation #1 (conv_1) has no training pairs"),
    (_set(f"{C0}.training_pairs", {"a": 1}), "conversations[0].training_pairs",
     "Conversation #1 (conv_1) has 'training_pairs' that is an object, expected an array"),
    (_set("conversations.0", "conv_1"), "conversations[0]", "Conversation #1 is not an object (it is a string)"),
    (_set(P1, "hello"), "conversations[0].training_pairs[1]",
     "Training pair #2 (conversation conv_1) is not an object (it is a string)"),
    (_set(f"{P1}.user_input", ""), "conversations[0].training_pairs[1].user_input",
     "Training pair #2 (conversation conv_1) has an empty 'user_input'"),
    (_set(f"{P1}.target_response", ["Answer"]), "conversations[0].training_pairs[1].target_response",
     "Training pair #2 (conversation conv_1) has 'target_response' that is an array, expected a string"),
    (_set(f"{P1}.system_prompt", _DELETE), "conversations[0].training_pairs[1].system_prompt",
     "Training pair #2 (conversation conv_1) is missing 'system_prompt'"),
    (_set(f"{P1}.turn", 0), "conversations[0].training_pairs[1].turn",
     "Training pair #2 (conversation conv_1) has 'turn' of 0, expected a whole number of 1 or more"),
    (_set(f"{P1}.turn", 1.5), "conversations[0].training_pairs[1].turn",
     "Training pair #2 (conversation conv_1) has 'turn' of 1.5, expected a whole number of 1 or more"),
    (_set(f"{P1}.turn", "2"), "conversations[0].training_pairs[1].turn",
     "Training pair #2 (conversation conv_1) has 'turn' that is a string, expected a whole number of 1 or more"),
    (_set(f"{P1}.metadata", "x"), "conversations[0].training_pairs[1].metadata",
     "Training pair #2 (conversation conv_1) has 'metadata' that is a string, expected an object"),
    (_set("format_version", 2), "format_version",
     "The file has 'format_version' 2, but this version reads only format_version 1"),
    (_set("format_version", "1"), "format_version",
     "The file has 'format_version' that is a string, expected the number 1"),
    (_set("format_version", _DELETE), "format_version", "The file is missing 'format_version'"),
    (_set("name", _DELETE), "name", "The file is missing 'name'"),
    (_set("name", ""), "name", "The file has an empty 'name'"),
    (_set("conversations", {}), "conversations", "The file has 'conversations' that is an object, expected an array"),
]


@pytest.mark.parametrize(("mutate", "place", "message"), CASES, ids=[c[2] for c in CASES])
def test_each_kind_of_problem_is_reported_with_its_exact_message_and_place(
    mutate: Mutation, place: str, message: str
) -> None:
    doc = document(conversation())
    mutate(doc)
    assert only_problem(encode(doc)) == (place, message)


def test_a_duplicate_conversation_id_names_the_conversation_that_first_used_it() -> None:
    doc = document(conversation("conv_1"), conversation("conv_2"), conversation("conv_1"))
    report = validate(encode(doc))
    assert [(p.place, p.message, p.conversation_id) for p in report.problems] == [(
        "conversations[2].id", "Conversation #3 has duplicate id 'conv_1' (first used by conversation #1)", "conv_1")]


def test_a_key_given_twice_is_reported_rather_than_silently_overwritten() -> None:
    text = json.dumps(document(conversation())).replace('"topic": "budgeting"', '"topic": "budgeting", "topic": "x"')
    assert only_problem(text.encode()) == (
        "conversations[0].topic", "Conversation #1 (conv_1) has 'topic' more than once")


def test_pairs_of_a_conversation_without_a_usable_id_are_named_by_conversation_number() -> None:
    doc = document(conversation(pairs=1))
    doc["conversations"][0]["id"] = 7
    doc["conversations"][0]["training_pairs"][0]["user_input"] = ""
    messages = [p.message for p in validate(encode(doc)).problems]
    assert messages == ["Conversation #1 has 'id' that is a number, expected a string",
                        "Training pair #1 (conversation #1) has an empty 'user_input'"]


SHAPE = "a JSON object with 'format_version', 'name' and 'conversations'"


@pytest.mark.parametrize(("data", "place", "message"), [
    (b'{"format_version": 1,\n  "name": "x",,}', "line 2, column 15",
     "The file is not valid JSON: Expecting property name enclosed in double quotes at line 2, column 15"),
    (b'{"format_version": 1, "name": "x", "conversations": []} []', "line 1, column 57",
     "The file is not valid JSON: Extra data at line 1, column 57"),
    (b"[]", "file", f"The file must be {SHAPE}, not an array"),
    (b'"hello"', "file", f"The file must be {SHAPE}, not a string"),
    (b"", "file", "The file is empty"),
    (b" \n\t ", "file", "The file is empty"),
    (b'{"name": "caf\xe9"}', "byte 13", "The file is not UTF-8 text (invalid byte at offset 13)"),
    (b'\xef\xbb\xbf{"a\xff', "byte 6", "The file is not UTF-8 text (invalid byte at offset 6)"),
    pytest.param(b"[" * 100_000, "line 1, column 101", "The file cannot be read as JSON: arrays and objects nested"
                 " more than 100 levels deep at line 1, column 101", id="nested-100000-deep"),
    pytest.param(b'{"format_version": 1,\n "name": ' + b"9" * 5000 + b"}", "line 2, column 10",
                 "The file cannot be read as JSON: a number with 5,000 digits (at most 4,300) at line 2, column 10",
                 id="a-5000-digit-number"),
    pytest.param(b'{"format_version": 1,\n "name": "a\\u0000b", "conversations": []}', "line 2, column 12",
                 "At line 2, column 12 the file contains a NUL character (written \\u0000), which text cannot"
                 " contain", id="a-nul-escape"),
    pytest.param(b'{"format_version": 1,\n "name": "a\\ud800b", "conversations": []}', "line 2, column 12",
                 "At line 2, column 12 the file contains \\ud800, half of a surrogate pair, which is not a"
                 " character", id="a-lone-surrogate-escape"),
])
def test_unreadable_files_get_one_clear_problem_with_a_place(data: bytes, place: str, message: str) -> None:
    assert only_problem(data) == (place, message)


def test_no_problem_names_python_internals_and_real_characters_written_as_escapes_are_accepted() -> None:
    for data in (b'{"format_version": 1, "name": ' + b"9" * 5000 + b"}", b"[" * 10_000 + b"]" * 10_000):
        (problem,) = validate(data).problems
        assert "sys." not in problem.message and "4300 digits" not in problem.message, problem.message
    emoji = encode(document(conversation(persona="Parent \U0001f600")))  # json.dumps writes \ud83d\ude00
    assert b"\\ud83d\\ude00" in emoji and validate(emoji).ok
    assert validate(encode(document(conversation(topic="C:\\u0000 folder")))).ok  # a backslash, then "u0000"


def test_json_lines_too_deep_or_too_long_a_number_is_placed_by_line_and_column() -> None:
    header = b'{"format_version": 1, "name": "x"}\n'
    assert only_problem(header + b'{"id": "c", "training_pairs": [' + b"1" * 5000 + b"]}\n") == (
        "line 2, column 32", "Line 2 cannot be read as JSON: a number with 5,000 digits (at most 4,300) at column 32")
    assert only_problem(header + b"[" * 10_000 + b"]" * 10_000 + b"\n") == (
        "line 2, column 101",
        "Line 2 cannot be read as JSON: arrays and objects nested more than 100 levels deep at column 101")


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decoding, "MAX_FILE_BYTES", 3 * 1024 * 1024)
    assert only_problem(b" " * (4 * 1024 * 1024)) == ("file", "The file is 4 MiB, over the 3 MiB limit")


def test_a_utf8_byte_order_mark_is_accepted() -> None:
    assert validate(b"\xef\xbb\xbf" + encode(document(conversation()))).ok


def test_unknown_fields_are_ignored_and_empty_system_prompts_and_null_optionals_are_allowed() -> None:
    doc = document(conversation(pairs=1, source="export-v2"), exported_at="2026-01-01")
    doc["conversations"][0]["training_pairs"][0].update(system_prompt="", turn=None, metadata=None)
    training_file = load(encode(doc))
    assert training_file.conversations[0].training_pairs[0].system_prompt == ""


def test_a_file_with_no_conversations_is_valid_and_summarized_as_empty() -> None:
    stats = summarize(encode(document()))
    assert (stats.conversation_count, stats.training_pair_count, stats.average_pairs_per_conversation) == (0, 0, 0)
    assert stats.quality.overall is None and stats.quality_indicator == REVIEW
    assert stats.personas == () and stats.human_reviewed_percent == 0


def test_load_and_summarize_refuse_an_invalid_file_with_the_whole_report() -> None:
    with pytest.raises(DatasetFormatError) as raised:
        summarize(BROKEN.read_bytes())
    assert str(raised.value) == (
        "Dataset format error: Training pair #4 (conversation conv_abc123) is missing 'target_response'")
    assert raised.value.report.problem_count == 1
    with pytest.raises(DatasetFormatError):
        load(b"not json")


def test_a_huge_broken_file_gives_a_bounded_report_with_a_count_of_the_rest() -> None:
    doc = document(*(conversation(f"c{n}", pairs=10) for n in range(1_000)))
    for c in doc["conversations"]:
        for p in c["training_pairs"]:
            del p["target_response"]
    report = validate(encode(doc))
    assert len(report.problems) == MAX_PROBLEMS == 100
    assert report.more_problems == 10_000 - 100 and report.problem_count == 10_000
    assert report.problems[-1].pair_number == 100 and not report.ok


# --- JSON Lines -----------------------------------------------------------------------------------


def to_json_lines(doc: dict, header: bool) -> bytes:
    lines = [json.dumps({"format_version": 1, "name": doc["name"]})] if header else []
    return ("\n".join(lines + [json.dumps(c) for c in doc["conversations"]]) + "\n").encode()


@pytest.mark.parametrize("header", [True, False], ids=["with header", "without header"])
def test_json_lines_give_the_same_statistics_as_the_json_document(header: bool) -> None:
    doc = json.loads(SAMPLE.read_bytes())
    from_lines, from_document = summarize(to_json_lines(doc, header)), summarize(SAMPLE.read_bytes())
    assert from_lines.name == (from_document.name if header else None)
    for field in ("conversation_count", "training_pair_count", "quality", "personas", "topics", "human_reviewed_count"):
        assert getattr(from_lines, field) == getattr(from_document, field)


def test_a_single_json_line_holding_one_conversation_is_accepted() -> None:
    assert summarize(encode(conversation(pairs=3))).training_pair_count == 3


def test_json_lines_problems_are_placed_by_line_number() -> None:
    doc = document(conversation("a"), conversation("b"), conversation("c"))
    doc["conversations"][2]["training_pairs"][0]["target_response"] = " "
    lines = to_json_lines(doc, header=True).split(b"\n")
    lines[2] = lines[2][:-1]  # line 3 (conversation b) loses its closing brace
    report = validate(b"\n".join(lines))
    assert [(p.place, p.message) for p in report.problems] == [
        (f"line 3, column {len(lines[2]) + 1}",
         f"Line 3 is not valid JSON: Expecting ',' delimiter at column {len(lines[2]) + 1}"),
        ("line 4: training_pairs[0].target_response",
         "Training pair #3 (conversation c) has an empty 'target_response'"),
    ]


# --- eligibility ----------------------------------------------------------------------------------

ELIGIBLE = {"found": True, "stored": True, "enrichment_status": "completed", "first_problem": None,
            "conversation_count": 50, "in_use": False}


def test_a_valid_enriched_stored_unused_file_with_50_conversations_is_eligible() -> None:
    check_eligibility(**ELIGIBLE)


@pytest.mark.parametrize(("change", "message"), [
    ({"found": False}, "Training file not found"),
    ({"stored": False}, "Storage file missing"),
    ({"enrichment_status": "processing"}, "Training file not enriched"),
    ({"conversation_count": 49}, "Insufficient conversations"),
    ({"in_use": True}, "Training file is in use by an active job"),
    ({"first_problem": "Training pair #4 (conversation c) is missing 'target_response'"},
     "Training file failed validation: Training pair #4 (conversation c) is missing 'target_response'"),
])
def test_each_refusal_carries_the_spec_message(change: dict, message: str) -> None:
    with pytest.raises(IneligibleTrainingFileError) as raised:
        check_eligibility(**{**ELIGIBLE, **change})
    assert str(raised.value) == message


def test_a_missing_file_is_reported_before_any_other_refusal() -> None:
    with pytest.raises(IneligibleTrainingFileError) as raised:
        check_eligibility(found=False, stored=False, enrichment_status="failed", first_problem="x",
                          conversation_count=0, in_use=True)
    assert raised.value.refusal is Refusal.NOT_FOUND


@pytest.mark.parametrize(("score", "indicator"), [
    (Decimal("4.00"), HIGH_QUALITY), (Decimal("5"), HIGH_QUALITY), (Decimal("3.99"), REVIEW), (None, REVIEW)])
def test_the_quality_indicator_turns_high_at_4(score: Decimal | None, indicator: str) -> None:
    assert quality_indicator(score) == indicator


def test_the_indicator_agrees_with_the_rounded_average_shown() -> None:
    scores = {"empathy": 4, "clarity": 4, "appropriateness": Decimal("3.99")}  # overall 3.9966… shows as 4.00
    doc = document(conversation(quality={k: float(v) for k, v in scores.items()}))
    stats = summarize(encode(doc))
    assert stats.quality.overall == Decimal("4.00") and stats.quality_indicator == HIGH_QUALITY


# --- properties -----------------------------------------------------------------------------------

# Any character text can hold: not a lone surrogate, not NUL (refused with its place, see above).
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1,
                max_size=12).filter(str.strip)


@st.composite
def conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Well-formed conversations with varied text, scaffolding, scores and pair counts."""
    items = []
    for n in range(draw(st.integers(0, 15))):
        pairs = [pair(user_input=draw(texts), target_response=draw(texts)) for _ in range(draw(st.integers(1, 5)))]
        quality = {d: float(draw(st.decimals(0, 5, places=1))) for d in ("empathy", "clarity", "appropriateness")}
        items.append(conversation(f"conv_{n}", persona=draw(texts), topic=draw(texts), quality=quality,
                                  human_reviewed=draw(st.booleans()), training_pairs=pairs))
    return items


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(conversations())
def test_any_well_formed_file_validates_and_its_counts_are_the_sums(items: list[dict[str, Any]]) -> None:
    data = encode(document(*items))
    assert validate(data).ok
    stats = summarize(data)
    assert stats.conversation_count == len(items)
    assert stats.training_pair_count == sum(len(c["training_pairs"]) for c in items)
    assert sum(s.count for s in stats.personas) == sum(s.count for s in stats.topics) == len(items)
    assert stats.human_reviewed_count == sum(c["human_reviewed"] for c in items)


@settings(max_examples=200)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_validate_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    report = validate(data)
    assert report.ok == (report.training_file is not None)
