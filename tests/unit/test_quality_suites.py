"""The shipped evaluation suites (FR6.2.1, FR6.3.1, FR6.4.1) and the validator of suites, probes and rubrics."""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.quality import (
    DEFAULT_THRESHOLDS,
    EI_CATEGORIES,
    LETTERS,
    MAX_PROBLEMS,
    SuiteFormatError,
    decoding,
    items,
    load_ei_suite,
    load_knowledge_suite,
    load_rubric,
)

ROOT = Path(__file__).resolve().parents[2]
SUITES = ROOT / "samples" / "suites"
KNOWLEDGE = SUITES / "financial-knowledge.jsonl"
EI = SUITES / "emotional-intelligence.jsonl"
RUBRIC = SUITES / "brand-voice-elena-morales.json"

Loader = Callable[[bytes], object]


def knowledge(name: str = "probes.json") -> Loader:
    return lambda data: load_knowledge_suite(data, name)


def problems(load: Loader, data: bytes) -> list[tuple[str, str]]:
    with pytest.raises(SuiteFormatError) as raised:
        load(data)
    return [(p.place, p.message) for p in raised.value.problems]


def only_problem(load: Loader, data: bytes) -> tuple[str, str]:
    found = problems(load, data)
    assert len(found) == 1, found
    return found[0]


def question(qid: str = "q1", **fields: object) -> dict[str, Any]:
    return {"id": qid, "category": "compliance", "difficulty": "basic", "question": "Who regulates brokers?",
            "choices": {"A": "FINRA", "B": "FDIC", "C": "OCC", "D": "NCUA"}, "answer": "A", "critical": True,
            **fields}


def encode(value: object) -> bytes:
    return json.dumps(value).encode()


def lines(*values: object) -> bytes:
    return "".join(json.dumps(v) + "\n" for v in values).encode()


# --- the shipped suites ----------------------------------------------------------------------------


def test_the_financial_knowledge_suite_has_the_100_questions_fr6_3_1_asks_for() -> None:
    suite = load_knowledge_suite(KNOWLEDGE.read_bytes(), KNOWLEDGE.name)
    questions = suite.questions
    assert len(questions) == 100 and suite.critical_categories == {}
    assert Counter(q.category for q in questions) == {"taxes": 25, "retirement": 25, "investing": 25, "insurance": 25}
    assert Counter(q.difficulty for q in questions) == {"basic": 40, "intermediate": 40, "advanced": 20}
    for category in suite.categories:
        assert Counter(q.difficulty for q in questions if q.category == category) == {
            "basic": 10, "intermediate": 10, "advanced": 5}
    assert Counter(q.answer for q in questions) == {letter: 25 for letter in LETTERS}
    assert not any(q.critical for q in questions)


def test_the_knowledge_suite_ids_name_their_category_and_count_from_one() -> None:
    questions = load_knowledge_suite(KNOWLEDGE.read_bytes(), KNOWLEDGE.name).questions
    short = {"taxes": "tax", "retirement": "ret", "investing": "inv", "insurance": "ins"}
    for category, prefix in short.items():
        ids = [q.id for q in questions if q.category == category]
        assert ids == [f"fk-{prefix}-{n:03d}" for n in range(1, 26)]


def test_the_right_answer_is_not_given_away_by_being_the_longest_choice() -> None:
    questions = load_knowledge_suite(KNOWLEDGE.read_bytes(), KNOWLEDGE.name).questions
    longest = [q.id for q in questions if all(len(q.choice(q.answer)) > len(c) for c in q.choices if c != q.choice(
        q.answer))]
    shortest = [q.id for q in questions if all(len(q.choice(q.answer)) < len(c) for c in q.choices if c != q.choice(
        q.answer))]
    assert 10 <= len(longest) <= 35 and 10 <= len(shortest) <= 35


def test_a_question_tied_to_a_year_says_which_year() -> None:
    questions = load_knowledge_suite(KNOWLEDGE.read_bytes(), KNOWLEDGE.name).questions
    for q in questions:
        if re.search(r"\b20[2-9]\d\b", " ".join(q.choices)):
            assert re.search(r"\b20[2-9]\d\b", q.question), q.id


def test_the_emotional_intelligence_suite_has_the_50_scenarios_fr6_2_1_asks_for() -> None:
    suite = load_ei_suite(EI.read_bytes(), EI.name)
    scenarios = suite.scenarios
    assert len(scenarios) == 50
    assert [s.id for s in scenarios] == [f"ei-{n:03d}" for n in range(1, 51)]
    assert Counter(s.category for s in scenarios) == {
        "empathy_detection": 15, "emotional_awareness": 15, "supportive_responses": 10, "conflict_handling": 10}
    assert Counter(s.difficulty for s in scenarios) == {"easy": 20, "medium": 20, "hard": 10}
    personas = Counter(s.persona for s in scenarios)
    assert {"Anxious Investor", "Pragmatic Skeptic", "Hopeful Planner"} <= set(personas) and len(personas) >= 6
    assert all(s.reference_notes and s.system_prompt and s.emotional_arc and s.topic for s in scenarios)


def test_the_elena_morales_rubric_has_the_spec_characteristics_in_order_and_30_prompts() -> None:
    rubric = load_rubric(RUBRIC.read_bytes())
    assert (rubric.format_version, rubric.name) == (1, "Elena Morales voice")
    assert [(c.name, c.description) for c in rubric.characteristics] == [
        ("Warmth & Empathy", "Genuine emotional connection"),
        ("Directness & Clarity", "Avoids jargon, gets to the point"),
        ("Education-First Approach", 'Explains "why" behind advice'),
        ("Pragmatic Optimism", "Realistic yet hopeful tone"),
        ("Question-Driven", "Asks clarifying questions"),
        ("Storytelling", "Uses relatable examples"),
        ("Action-Oriented", "Provides concrete next steps"),
        ("Patience", "Never rushes or dismisses concerns"),
        ("Humor (appropriate)", "Light touches when suitable"),
        ("Confidence", "Authoritative yet humble"),
    ]
    assert all(set(c.scoring) == {"1", "3", "5"} for c in rubric.characteristics)
    assert [p.id for p in rubric.prompts] == [f"bv-{n:02d}" for n in range(1, 31)]
    assert len({p.prompt for p in rubric.prompts}) == 30 and len({p.persona for p in rubric.prompts}) >= 6


def test_the_shipped_rubric_thresholds_are_the_fr6_4_1_badges() -> None:
    thresholds = load_rubric(RUBRIC.read_bytes()).thresholds
    assert thresholds == DEFAULT_THRESHOLDS
    assert [(b.label, b.min_score) for b in thresholds.badges] == [
        ("✓ Excellent Brand Alignment", Decimal("4.5")), ("✓ Strong Brand Alignment", Decimal("4.25")),
        ("⚠ Acceptable Alignment", Decimal("4.0")), ("✗ Needs Improvement", Decimal("1"))]
    assert (thresholds.target_score, thresholds.flag_below) == (Decimal("4.25"), Decimal("3"))


@pytest.mark.parametrize(("score", "label"), [
    ("5", "✓ Excellent Brand Alignment"), ("4.5", "✓ Excellent Brand Alignment"), ("4.3", "✓ Strong Brand Alignment"),
    ("4.25", "✓ Strong Brand Alignment"), ("4.0", "⚠ Acceptable Alignment"), ("3.99", "✗ Needs Improvement"),
    ("1", "✗ Needs Improvement")])
def test_each_score_gets_the_badge_whose_threshold_it_reaches(score: str, label: str) -> None:
    assert DEFAULT_THRESHOLDS.badge_for(Decimal(score)).label == label


# --- knowledge suites and probes: what is accepted -------------------------------------------------


def test_a_probe_upload_as_a_json_object_carries_category_thresholds() -> None:
    data = encode({"questions": [question("q1"), question("q2", category="Roth vs 401(k)", critical=False)],
                   "critical_categories": {"compliance": 100}})
    suite = load_knowledge_suite(data, "acme-probes.json")
    assert suite.name == "acme-probes.json" and suite.categories == ("compliance", "Roth vs 401(k)")
    assert suite.critical_categories == {"compliance": Decimal(100)}
    assert [q.critical for q in suite.questions] == [True, False]


def test_a_bare_json_list_and_json_lines_give_the_same_questions() -> None:
    from_list = load_knowledge_suite(encode([question("q1"), question("q2")]), "p.json")
    from_lines = load_knowledge_suite(lines(question("q1"), question("q2")), "p.jsonl")
    assert from_list.questions == from_lines.questions


def test_a_json_lines_header_carries_category_thresholds() -> None:
    data = lines({"format_version": 1, "critical_categories": {"compliance": 95.5}}, question())
    assert load_knowledge_suite(data, "p.jsonl").critical_categories == {"compliance": Decimal("95.5")}


def test_difficulty_and_critical_are_optional_and_answers_and_difficulties_ignore_case() -> None:
    q = question(answer=" c ", difficulty="Advanced")
    del q["critical"]
    plain = question("q2")
    del plain["difficulty"]
    suite = load_knowledge_suite(lines(q, plain), "p.jsonl")
    assert [(x.answer, x.difficulty, x.critical) for x in suite.questions] == [("C", "advanced", False),
                                                                              ("A", None, True)]
    assert suite.questions[0].choice("C") == "OCC"


CSV_HEADER = "id,category,difficulty,question,A,B,C,D,answer,critical\n"


def test_a_csv_upload_reads_quoted_cells_yes_no_flags_and_empty_optionals() -> None:
    data = (CSV_HEADER + 'q1,compliance,,"Which rule, if any?",FINRA 2111,SEC 10b-5,Reg BI,None,c,yes\n'
            "q2,products,basic,Roth or traditional?,Roth,Traditional,Both,Neither,A,\n").encode()
    suite = load_knowledge_suite(data, "probes.csv")
    assert [(q.id, q.difficulty, q.question, q.answer, q.critical) for q in suite.questions] == [
        ("q1", None, "Which rule, if any?", "C", True), ("q2", "basic", "Roth or traditional?", "A", False)]
    assert suite.questions[0].choices == ("FINRA 2111", "SEC 10b-5", "Reg BI", "None")


def test_csv_columns_may_come_in_any_order_and_case_and_optional_ones_may_be_left_out() -> None:
    data = b"\xef\xbb\xbfQuestion,Answer,D,C,B,A,Category,ID\r\nWhat?,b,d,c,b,a,misc,x1\r\n"
    q = load_knowledge_suite(data, "upload").questions[0]
    assert (q.id, q.question, q.choices, q.answer, q.difficulty, q.critical) == (
        "x1", "What?", ("a", "b", "c", "d"), "B", None, False)


@pytest.mark.parametrize(("name", "data", "expected"), [
    ("probes.CSV", CSV_HEADER + "q1,c,,Q?,a,b,c,d,A,\n", "csv"),
    ("probes", CSV_HEADER + "q1,c,,Q?,a,b,c,d,A,\n", "csv"),
    ("probes", json.dumps([question()]), "json"),
    ("probes.txt", json.dumps(question()), "json"),
])
def test_the_format_follows_the_file_name_or_else_the_first_character(name: str, data: str, expected: str) -> None:
    assert len(load_knowledge_suite(data.encode(), name).questions) == 1


def test_a_json_file_named_csv_is_read_as_csv_and_fails_on_its_header() -> None:
    assert problems(knowledge("p.csv"), encode([question()]))[0][1].startswith("The CSV header is missing column 'id'")


# --- knowledge suites and probes: each problem, with its place -------------------------------------

Mutation = Callable[[dict[str, Any]], None]
_DELETE = object()


def _set(path: str, value: object) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = doc
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        index = int(last) if isinstance(target, list) else last
        if value is _DELETE:
            del target[index]
        else:
            target[index] = value
    return mutate


Q1 = "questions.1"
SUITE_CASES = [
    (_set(f"{Q1}.answer", _DELETE), "questions[1].answer", "Question #2 (q2) is missing 'answer'"),
    (_set(f"{Q1}.answer", "E"), "questions[1].answer", "Question #2 (q2) has 'answer' 'E', expected one of A, B, C, D"),
    (_set(f"{Q1}.answer", 1), "questions[1].answer",
     "Question #2 (q2) has 'answer' that is a number, expected a string"),
    (_set(f"{Q1}.question", " "), "questions[1].question", "Question #2 (q2) has an empty 'question'"),
    (_set(f"{Q1}.category", _DELETE), "questions[1].category", "Question #2 (q2) is missing 'category'"),
    (_set(f"{Q1}.difficulty", "expert"), "questions[1].difficulty",
     "Question #2 (q2) has 'difficulty' 'expert', expected one of basic, intermediate, advanced"),
    (_set(f"{Q1}.critical", "yes"), "questions[1].critical",
     "Question #2 (q2) has 'critical' that is a string, expected true or false"),
    (_set(f"{Q1}.choices.C", _DELETE), "questions[1].choices.C", "Question #2 (q2) is missing 'choices.C'"),
    (_set(f"{Q1}.choices.D", ""), "questions[1].choices.D", "Question #2 (q2) has an empty 'choices.D'"),
    (_set(f"{Q1}.choices.E", "SIPC"), "questions[1].choices.E",
     "Question #2 (q2) has choice 'E'; only A, B, C and D are allowed"),
    (_set(f"{Q1}.choices.C", " fdic "), "questions[1].choices.C",
     "Question #2 (q2) has the same text for choices 'B' and 'C'"),
    (_set(f"{Q1}.choices", ["FINRA", "FDIC", "OCC", "NCUA"]), "questions[1].choices",
     "Question #2 (q2) has 'choices' that is an array, expected an object"),
    (_set(f"{Q1}.choices", _DELETE), "questions[1].choices", "Question #2 (q2) is missing 'choices'"),
    (_set(f"{Q1}.id", "q1"), "questions[1].id", "Question #2 has duplicate id 'q1' (first used by question #1)"),
    (_set(f"{Q1}.id", ""), "questions[1].id", "Question #2 has an empty 'id'"),
    (_set(f"{Q1}.id", 2), "questions[1].id", "Question #2 has 'id' that is a number, expected a string"),
    (_set(Q1, "q2"), "questions[1]", "Question #2 is not an object (it is a string)"),
    (_set("questions", []), "questions", "The suite has no questions"),
    (_set("questions", {}), "questions", "The suite has 'questions' that is an object, expected an array"),
    (_set("questions", _DELETE), "questions", "The suite is missing 'questions'"),
    (_set("format_version", 2), "format_version",
     "The suite has 'format_version' 2, but this version reads only format_version 1"),
    (_set("critical_categories.compliance", 120), "critical_categories.compliance",
     "The suite has 'critical_categories.compliance' of 120, expected a number from 0 to 100"),
    (_set("critical_categories.compliance", "100%"), "critical_categories.compliance",
     "The suite has 'critical_categories.compliance' that is a string, expected a number from 0 to 100"),
    (_set("critical_categories.complience", 100), "critical_categories.complience",
     "The suite has 'critical_categories.complience', but no question has that category"),
    (_set("critical_categories", ["compliance"]), "critical_categories",
     "The suite has 'critical_categories' that is an array, expected an object"),
]


@pytest.mark.parametrize(("mutate", "place", "message"), SUITE_CASES, ids=[c[2] for c in SUITE_CASES])
def test_each_kind_of_bad_question_is_reported_with_its_exact_place_and_message(
    mutate: Mutation, place: str, message: str
) -> None:
    doc = {"questions": [question("q1"), question("q2")], "critical_categories": {"compliance": 100}}
    mutate(doc)
    assert only_problem(knowledge(), encode(doc)) == (place, message)


def test_every_problem_of_a_file_is_reported_in_file_order() -> None:
    bad = question("q2", answer="Z", difficulty="hard")
    del bad["choices"]["A"]
    assert problems(knowledge(), encode([question("q1"), bad, "oops"])) == [
        ("[1].difficulty", "Question #2 (q2) has 'difficulty' 'hard', expected one of basic, intermediate, advanced"),
        ("[1].choices.A", "Question #2 (q2) is missing 'choices.A'"),
        ("[1].answer", "Question #2 (q2) has 'answer' 'Z', expected one of A, B, C, D"),
        ("[2]", "Question #3 is not an object (it is a string)"),
    ]


def test_json_lines_problems_are_placed_by_line_with_the_column_of_a_syntax_error() -> None:
    broken = json.dumps(question("q2"))[:-1]
    data = f'{json.dumps(question("q1"))}\n\n{broken}\n{json.dumps(question("q3", answer="F"))}\n'.encode()
    assert problems(knowledge("p.jsonl"), data) == [
        (f"line 3, column {len(broken) + 1}",
         f"Line 3 is not valid JSON: Expecting ',' delimiter at column {len(broken) + 1}"),
        ("line 4: answer", "Question #2 (q3) has 'answer' 'F', expected one of A, B, C, D"),
    ]


def test_a_json_lines_file_with_only_a_header_has_no_questions() -> None:
    assert only_problem(knowledge("p.jsonl"), lines({"format_version": 1})) == ("file", "The suite has no questions")


def test_a_bad_json_lines_header_is_reported_on_its_line() -> None:
    data = lines({"format_version": 2, "critical_categories": {"compliance": -1}}, question())
    assert problems(knowledge("p.jsonl"), data) == [
        ("line 1: format_version",
         "The header on line 1 has 'format_version' 2, but this version reads only format_version 1"),
        ("line 1: critical_categories.compliance",
         "The header on line 1 has 'critical_categories.compliance' of -1, expected a number from 0 to 100"),
    ]


@pytest.mark.parametrize(("csv", "place", "message"), [
    ("id,category,question,A,B,C,D\nq1,c,Q?,a,b,c,d\n", "line 1: answer",
     "The CSV header is missing column 'answer' (expected id,category,difficulty,question,A,B,C,D,answer,critical)"),
    ("id,category,question,A,B,C,D,answer,ID\nq1,c,Q?,a,b,c,d,A,q1\n", "line 1: id",
     "The CSV header has column 'id' more than once"),
    (CSV_HEADER + "q1,c,,Q?,a,b,c,d,A,maybe\n", "line 2: critical",
     "Question #1 (q1) has 'critical' 'maybe', expected true or false (or an empty cell)"),
    (CSV_HEADER + "q1,c,easy,Q?,a,b,c,d,A,\n", "line 2: difficulty",
     "Question #1 (q1) has 'difficulty' 'easy', expected one of basic, intermediate, advanced"),
    (CSV_HEADER + "q1,c,,Q?,a,b,,d,A,\n", "line 2: C", "Question #1 (q1) has an empty 'C'"),
    (CSV_HEADER + "q1,c,,Q?,a,b,c,d,,\n", "line 2: answer", "Question #1 (q1) has an empty 'answer'"),
    (CSV_HEADER + "q1,c,,Q?,a,b,c,d,E,\n", "line 2: answer",
     "Question #1 (q1) has 'answer' 'E', expected one of A, B, C, D"),
    (CSV_HEADER + "q1,c,,Q?,a,b,A,d,A,\n", "line 2: C", "Question #1 (q1) has the same text for choices 'A' and 'C'"),
    (CSV_HEADER + "q1,c,,Why, though?,a,b,c,d,A,\n", "line 2",
     "Question #1 (q1) has 11 cells, but the header has 10 columns (a comma inside a cell needs quotes)"),
    (CSV_HEADER + 'q1,c,,"Two\nlines",a,b,c,d,A,\nq1,c,,Q?,a,b,c,d,A,\n', "line 4: id",
     "Question #2 has duplicate id 'q1' (first used by question #1)"),
    (CSV_HEADER, "file", "The suite has no questions"),
    (",,,\n\n", "file", "The CSV file has no header row"),
])
def test_each_kind_of_bad_csv_row_is_reported_at_its_line_in_the_file(csv: str, place: str, message: str) -> None:
    assert only_problem(knowledge("probes.csv"), csv.encode()) == (place, message)


def test_short_csv_rows_count_their_missing_cells_as_empty() -> None:
    assert problems(knowledge("p.csv"), (CSV_HEADER + "q1,c,,Q?,a,b,c\n").encode()) == [
        ("line 2: D", "Question #1 (q1) has an empty 'D'"),
        ("line 2: answer", "Question #1 (q1) has an empty 'answer'"),
    ]


# --- unreadable files ------------------------------------------------------------------------------

SHAPE = "a list of questions or an object with 'questions'"


@pytest.mark.parametrize(("data", "place", "message"), [
    (b'{"questions": [\n  {"id": "q1",,}]}', "line 2, column 15",
     "The file is not valid JSON: Expecting property name enclosed in double quotes at line 2, column 15"),
    (b'[] {}', "line 1, column 4", "The file is not valid JSON: Extra data at line 1, column 4"),
    (b'"hello"', "file", f"The file must be {SHAPE}, not a string"),
    (b"", "file", "The file is empty"),
    (b" \n\t ", "file", "The file is empty"),
    (b'[{"id": "q1",\n "category": "caf\xe9"}]', "line 2, column 18",
     "The file is not UTF-8 text (invalid byte 0xe9 at line 2, column 18)"),
    pytest.param(b"[" * 100_000, "line 1, column 101", "The file cannot be read as JSON: arrays and objects nested"
                 " more than 100 levels deep at line 1, column 101", id="nested-100000-deep"),
    pytest.param(b'[{"id": "q1",\n "answer": ' + b"9" * 5000 + b"}]", "line 2, column 12",
                 "The file cannot be read as JSON: a number with 5,000 digits (at most 4,300) at line 2, column 12",
                 id="a-5000-digit-number"),
    pytest.param(b'[{"id": "q1",\n "answer": "A\\u0000"}]', "line 2, column 14",
                 "At line 2, column 14 the file contains a NUL character (written \\u0000), which text cannot"
                 " contain", id="a-nul-escape"),
])
def test_unreadable_files_get_one_problem_with_line_and_column(data: bytes, place: str, message: str) -> None:
    assert only_problem(knowledge(), data) == (place, message)


def test_a_key_given_twice_is_reported_rather_than_silently_overwritten() -> None:
    text = json.dumps([question()]).replace('"answer": "A"', '"answer": "A", "answer": "B"')
    assert only_problem(knowledge(), text.encode()) == ("[0].answer", "Question #1 (q1) has 'answer' more than once")


def test_a_file_over_5_mib_is_refused_before_it_is_parsed() -> None:
    assert decoding.MAX_SUITE_BYTES == 5 * 1024 * 1024
    assert only_problem(knowledge(), b" " * (6 * 1024 * 1024)) == ("file", "The file is 6 MiB, over the 5 MiB limit")


def test_a_suite_over_2000_questions_is_refused_with_its_count() -> None:
    assert items.MAX_ITEMS == 2_000
    data = encode({"questions": [question(f"q{n}") for n in range(2_001)]})
    assert only_problem(knowledge(), data) == ("questions", "The suite has 2,001 questions, over the limit of 2,000")


def test_a_huge_broken_file_keeps_the_first_100_problems_and_counts_the_rest() -> None:
    data = encode([question(f"q{n}", answer="X", question="") for n in range(300)])
    with pytest.raises(SuiteFormatError) as raised:
        load_knowledge_suite(data, "p.json")
    error = raised.value
    assert len(error.problems) == MAX_PROBLEMS == 100 and error.problem_count == 600
    assert str(error) == "Suite format error: Question #1 (q0) has an empty 'question'"


# --- emotional-intelligence suites -----------------------------------------------------------------


def scenario(sid: str = "s1", **fields: object) -> dict[str, Any]:
    return {"id": sid, "category": "empathy_detection", "difficulty": "easy", "persona": "Anxious Investor",
            "emotional_arc": "anxious to reassured", "topic": "market volatility", "system_prompt": "Be kind.",
            "prompt": "Markets are down.", "reference_notes": "Names the fear.", **fields}


def test_an_ei_suite_may_leave_out_the_system_prompt_and_come_as_a_json_object() -> None:
    plain = scenario("s2", category="Conflict_Handling")
    del plain["system_prompt"]
    suite = load_ei_suite(encode({"scenarios": [scenario(), plain]}), "ei.json")
    assert [(s.system_prompt, s.category) for s in suite.scenarios] == [("Be kind.", "empathy_detection"),
                                                                        ("", "conflict_handling")]


@pytest.mark.parametrize(("change", "place", "message"), [
    ({"category": "empathy"}, "line 2: category",
     f"Scenario #2 (s2) has 'category' 'empathy', expected one of {', '.join(EI_CATEGORIES)}"),
    ({"difficulty": "basic"}, "line 2: difficulty",
     "Scenario #2 (s2) has 'difficulty' 'basic', expected one of easy, medium, hard"),
    ({"reference_notes": None}, "line 2: reference_notes",
     "Scenario #2 (s2) has 'reference_notes' that is null, expected a string"),
    ({"prompt": ""}, "line 2: prompt", "Scenario #2 (s2) has an empty 'prompt'"),
    ({"system_prompt": 3}, "line 2: system_prompt",
     "Scenario #2 (s2) has 'system_prompt' that is a number, expected a string"),
    ({"id": "s1"}, "line 2: id", "Scenario #2 has duplicate id 's1' (first used by scenario #1)"),
])
def test_each_kind_of_bad_scenario_is_reported_with_its_line_and_message(
    change: dict[str, object], place: str, message: str
) -> None:
    data = lines(scenario("s1"), scenario("s2", **change))
    assert only_problem(lambda d: load_ei_suite(d, "ei.jsonl"), data) == (place, message)


def test_a_missing_scenario_field_is_named() -> None:
    bad = scenario("s1")
    del bad["emotional_arc"]
    assert only_problem(lambda d: load_ei_suite(d, "ei.jsonl"), lines(bad)) == (
        "line 1: emotional_arc", "Scenario #1 (s1) is missing 'emotional_arc'")


# --- rubrics ---------------------------------------------------------------------------------------


def custom_rubric() -> dict[str, Any]:
    """FR6.4.2's example: a formal, conservative firm's own voice."""
    traits = ["Conservative tone", "Risk-aware language", "Formal communication style", "Precision", "Compliance"]
    return {"format_version": 1, "name": "Formal firm voice", "characteristics": [
        {"id": re.sub(r"\W+", "_", t.lower()), "name": t, "description": f"{t} throughout",
         "scoring": {"1": "Absent", "5": "Consistent"}} for t in traits]}


def test_a_custom_rubric_of_five_characteristics_without_thresholds_or_prompts_uses_the_default_badges() -> None:
    rubric = load_rubric(encode(custom_rubric()))
    assert [c.id for c in rubric.characteristics] == [
        "conservative_tone", "risk_aware_language", "formal_communication_style", "precision", "compliance"]
    assert rubric.thresholds == DEFAULT_THRESHOLDS and rubric.prompts == ()


def test_a_custom_rubric_may_set_its_own_badges_and_target() -> None:
    doc = custom_rubric()
    doc["thresholds"] = {"badges": [{"label": "Pass", "min_score": 4}, {"label": "Fail", "min_score": 1}],
                         "target_score": 4}
    thresholds = load_rubric(encode(doc)).thresholds
    assert [b.label for b in thresholds.badges] == ["Pass", "Fail"]
    assert (thresholds.target_score, thresholds.flag_below) == (Decimal(4), DEFAULT_THRESHOLDS.flag_below)
    assert thresholds.badge_for(Decimal("3.9")).label == "Fail"


def _rubric_with(mutate: Mutation) -> bytes:
    doc = json.loads(RUBRIC.read_bytes())
    mutate(doc)
    return encode(doc)


def _characteristics(count: int) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        template = doc["characteristics"][0]
        doc["characteristics"] = [{**copy.deepcopy(template), "id": f"c{n}"} for n in range(count)]
    return mutate


C1, BADGES = "characteristics.1", "thresholds.badges"
RUBRIC_CASES = [
    (_characteristics(4), "characteristics", "The rubric has 4 characteristics, expected 5 to 15"),
    (_characteristics(16), "characteristics", "The rubric has 16 characteristics, expected 5 to 15"),
    (_set(f"{C1}.id", "Directness"), "characteristics[1].id",
     "Characteristic #2 (Directness) has 'id' 'Directness', expected lowercase letters, digits and underscores, "
     "starting with a letter"),
    (_set(f"{C1}.id", "warmth_empathy"), "characteristics[1].id",
     "Characteristic #2 has duplicate id 'warmth_empathy' (first used by characteristic #1)"),
    (_set(f"{C1}.description", ""), "characteristics[1].description",
     "Characteristic #2 (directness_clarity) has an empty 'description'"),
    (_set(f"{C1}.scoring.5", _DELETE), "characteristics[1].scoring.5",
     "Characteristic #2 (directness_clarity) is missing 'scoring.5'"),
    (_set(f"{C1}.scoring.6", "Perfect"), "characteristics[1].scoring.6",
     "Characteristic #2 (directness_clarity) has score level '6'; only 1, 2, 3, 4 and 5 are allowed"),
    (_set(f"{C1}.scoring.3", " "), "characteristics[1].scoring.3",
     "Characteristic #2 (directness_clarity) has an empty 'scoring.3'"),
    (_set(f"{C1}.scoring", "1-5"), "characteristics[1].scoring",
     "Characteristic #2 (directness_clarity) has 'scoring' that is a string, expected an object"),
    (_set(f"{BADGES}.1.min_score", 4.5), "thresholds.badges[1].min_score",
     "Badge #2 has 'min_score' 4.5, expected less than badge #1's 4.5 (highest first)"),
    (_set(f"{BADGES}.3.min_score", 2), "thresholds.badges[3].min_score",
     "Badge #4 has 'min_score' 2, but the last badge must start at 1 so that every score gets one"),
    (_set(f"{BADGES}.0.min_score", 6), "thresholds.badges[0].min_score",
     "Badge #1 has 'min_score' of 6, expected a number from 1 to 5"),
    (_set(f"{BADGES}.0.label", _DELETE), "thresholds.badges[0].label", "Badge #1 is missing 'label'"),
    (_set(f"{BADGES}.2", "Acceptable"), "thresholds.badges[2]", "Badge #3 is not an object (it is a string)"),
    (_set(BADGES, []), "thresholds.badges", "The rubric has no badges in 'thresholds.badges'"),
    (_set("thresholds.target_score", 0), "thresholds.target_score",
     "The rubric has 'thresholds.target_score' of 0, expected a number from 1 to 5"),
    (_set("thresholds", 4.25), "thresholds", "The rubric has 'thresholds' that is a number, expected an object"),
    (_set("prompts.4.prompt", ""), "prompts[4].prompt", "Prompt #5 (bv-05) has an empty 'prompt'"),
    (_set("prompts.5.id", "bv-01"), "prompts[5].id", "Prompt #6 has duplicate id 'bv-01' (first used by prompt #1)"),
    (_set("prompts", {}), "prompts", "The rubric has 'prompts' that is an object, expected an array"),
    (_set("format_version", _DELETE), "format_version", "The rubric is missing 'format_version'"),
    (_set("name", ""), "name", "The rubric has an empty 'name'"),
]


@pytest.mark.parametrize(("mutate", "place", "message"), RUBRIC_CASES, ids=[c[2] for c in RUBRIC_CASES])
def test_each_kind_of_bad_rubric_is_reported_with_its_exact_place_and_message(
    mutate: Mutation, place: str, message: str
) -> None:
    assert only_problem(load_rubric, _rubric_with(mutate)) == (place, message)


@pytest.mark.parametrize(("data", "message"), [
    (b"[]", "The file must be a JSON object with 'format_version', 'name' and 'characteristics', not an array"),
    (b'{"format_version": 1}\n{"name": "x"}\n', "The file is not valid JSON: Extra data at line 2, column 1"),
])
def test_a_rubric_must_be_one_json_object(data: bytes, message: str) -> None:
    assert only_problem(load_rubric, data)[1] == message
