"""Multiple-choice suites and domain probes (FR6.3.1, FR6.3.2), from JSON Lines, JSON or CSV."""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType
from typing import cast

from domain.quality.decoding import Decoded, csv_rows, decode_json, text_of
from domain.quality.fields import Fields, Place, describe
from domain.quality.items import Items, check_count, format_version
from domain.quality.model import KNOWLEDGE_DIFFICULTIES, LETTERS, KnowledgeSuite, Question
from domain.quality.problems import Problem, ProblemLog

CSV_COLUMNS = ("id", "category", "difficulty", "question", *LETTERS, "answer", "critical")
CSV_OPTIONAL = ("difficulty", "critical")
CSV_TRUE, CSV_FALSE = ("true", "yes", "1"), ("false", "no", "0", "")
SHAPE = "a list of questions or an object with 'questions'"
SUITE = "The suite"
_CELL_COUNT = "\x00cell count"  # set on a CSV row with more cells than the header has columns


def read_knowledge(data: bytes, name: str, log: ProblemLog) -> KnowledgeSuite | None:
    """CSV when `name` ends in .csv (or, for other names, when the text does not start like JSON)."""
    text = text_of(data, log)
    if text is None:
        return None
    if _is_csv(name, text):
        return _Reader(name, log, csv=True).csv(text)
    decoded = decode_json(text, log, collection="questions", item_key="question")
    if decoded is None:
        return None
    reader = _Reader(name, log)
    return reader.json_lines(decoded) if decoded.json_lines else reader.document(decoded.top)


def _is_csv(name: str, text: str) -> bool:
    suffix = name.lower().rpartition(".")[2] if "." in name else ""
    if suffix in ("csv", "json", "jsonl", "ndjson"):
        return suffix == "csv"
    return text.lstrip()[:1] not in ("{", "[")


class _Reader:
    def __init__(self, name: str, log: ProblemLog, csv: bool = False) -> None:
        self.name, self.log, self.from_csv = name, log, csv
        self.items = Items("question", log)
        self.categories: set[str] = set()

    def document(self, top: object) -> KnowledgeSuite | None:
        if isinstance(top, list):
            return self.suite(Place(), [(Place(path=f"[{i}]"), v) for i, v in enumerate(top)])
        if not isinstance(top, dict):
            self.log.add(Problem(None, None, f"The file must be {SHAPE}, not {describe(top)}"))
            return None
        fields = Fields(top, SUITE, Place(), self.log)
        format_version(fields, required=False)
        items = fields.array("questions")
        thresholds = self.thresholds(fields)
        if items is None:
            return None
        return self.suite(Place(path="questions"), [(Place(path=f"questions[{i}]"), v) for i, v in enumerate(items)],
                          thresholds)

    def json_lines(self, decoded: Decoded) -> KnowledgeSuite | None:
        thresholds = None
        if decoded.header is not None:
            line, header = decoded.header
            fields = Fields(header, f"The header on line {line}", Place(line), self.log)  # type: ignore[arg-type]
            format_version(fields, required=True)
            thresholds = self.thresholds(fields)
        return self.suite(Place(), [(Place(line), value) for line, value in decoded.lines], thresholds)

    def csv(self, text: str) -> KnowledgeSuite | None:
        rows = csv_rows(text, self.log)
        if not rows:
            self.log.add(Problem(None, None, "The CSV file has no header row"))
            return None
        (header_line, header), *records = rows
        columns = self.csv_header(header_line, header)
        if columns is None:
            return None
        return self.suite(Place(), [(Place(line), self.csv_record(columns, cells)) for line, cells in records])

    def suite(self, place: Place, items: list[tuple[Place, object]],
              thresholds: tuple[Fields, dict[str, Decimal]] | None = None) -> KnowledgeSuite | None:
        counted = check_count(self.log, place, SUITE, len(items), "questions")
        questions = self.items.read(items, self.question)
        owner, critical = thresholds or (None, {})
        for category in critical if items else ():
            if owner is not None and category not in self.categories:
                owner.problem(f"critical_categories.{category}", f"{owner.subject} has 'critical_categories."
                                                                 f"{category}', but no question has that category")
        if questions is None or not counted:
            return None
        return KnowledgeSuite(self.name, questions, MappingProxyType(critical))

    def thresholds(self, owner: Fields) -> tuple[Fields, dict[str, Decimal]] | None:
        obj = owner.object("critical_categories", optional=True)
        if obj is None:
            return None
        fields = owner.nested("critical_categories", obj)
        read = {key.strip(): fields.number(key, Decimal(0), Decimal(100)) for key in obj}
        if "" in read:
            fields.problem(None, f"{owner.subject} has an empty category name in 'critical_categories'")
        return owner, {key: value for key, value in read.items() if key and value is not None}

    def question(self, fields: Fields, question_id: str | None) -> Question | None:
        if _CELL_COUNT in fields.obj:  # its cells are shifted: checking them would only add noise
            cells, columns = cast(tuple[int, int], fields.obj[_CELL_COUNT])
            fields.problem(None, f"{fields.subject} has {cells} cells, but the header has {columns} columns "
                                 "(a comma inside a cell needs quotes)")
            return None
        category = fields.string("category").strip()
        self.categories.add(category)
        difficulty = fields.one_of("difficulty", KNOWLEDGE_DIFFICULTIES, optional=True)
        text = fields.string("question").strip()
        choices = self.choices(fields)
        answer = fields.one_of("answer", LETTERS)
        critical = self.critical(fields)
        if choices is None or answer is None:
            return None
        return Question(question_id or "", category, difficulty, text, choices, answer, critical)

    def choices(self, fields: Fields) -> tuple[str, str, str, str] | None:
        source = fields
        if not self.from_csv:
            obj = fields.object("choices")
            if obj is None:
                return None
            source = fields.nested("choices", obj)
            source.only_keys(LETTERS, "choice")
        a, b, c, d = (source.string(letter).strip() for letter in LETTERS)
        first_with: dict[str, str] = {}
        for letter, text in zip(LETTERS, (a, b, c, d), strict=True):
            same = first_with.setdefault(" ".join(text.split()).casefold(), letter)
            if text and same != letter:
                source.problem(letter, f"{fields.subject} has the same text for choices '{same}' and '{letter}'")
        fields.failed |= source.failed
        return None if source.failed else (a, b, c, d)

    def critical(self, fields: Fields) -> bool:
        if not self.from_csv:
            return fields.flag("critical")
        raw = str(fields.obj.get("critical", ""))
        if raw.strip().casefold() not in CSV_TRUE + CSV_FALSE:
            fields.problem("critical", f"{fields.subject} has 'critical' '{raw}', expected true or false "
                                       "(or an empty cell)")
        return raw.strip().casefold() in CSV_TRUE

    def csv_header(self, line: int, cells: list[str]) -> list[str] | None:
        columns = [c.strip().upper() if c.strip().upper() in LETTERS else c.strip().lower() for c in cells]
        before = len(self.log.kept) + self.log.more
        for column in dict.fromkeys(c for c in columns if c and columns.count(c) > 1):
            self.log.add(Problem(line, column, f"The CSV header has column '{column}' more than once"))
        for column in CSV_COLUMNS:
            if column not in columns and column not in CSV_OPTIONAL:
                self.log.add(Problem(line, column, f"The CSV header is missing column '{column}' "
                                                   f"(expected {','.join(CSV_COLUMNS)})"))
        return None if len(self.log.kept) + self.log.more > before else columns

    def csv_record(self, columns: list[str], cells: list[str]) -> dict[str, object]:
        padded = cells + [""] * (len(columns) - len(cells))
        record: dict[str, object] = {column: cell for column, cell in zip(columns, padded, strict=False) if column}
        if len(cells) > len(columns):
            record[_CELL_COUNT] = (len(cells), len(columns))
        return record
