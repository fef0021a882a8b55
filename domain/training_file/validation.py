"""validate(): every problem in a training file, with its place; load(): the typed file or an error."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from domain.training_file.chat import is_chat, read_chat
from domain.training_file.decoding import Decoded, decode
from domain.training_file.fields import Context, Fields, Place, describe
from domain.training_file.model import (
    FORMAT_VERSION,
    QUALITY_DIMENSIONS,
    QUALITY_MAX,
    QUALITY_MIN,
    Conversation,
    Quality,
    TrainingFile,
    TrainingPair,
)
from domain.training_file.problems import DatasetFormatError, Problem, ProblemLog, ValidationReport

TOP_LEVEL_SHAPE = "a JSON object with 'format_version', 'name' and 'conversations'"


def validate(data: bytes) -> ValidationReport:
    """Every problem (the first MAX_PROBLEMS kept), in file order; the typed file when there are none."""
    log = ProblemLog()
    decoded = decode(data, log)
    if decoded is None:
        return log.report()
    if is_chat(decoded):
        return log.report(read_chat(decoded, log))
    reader = _Reader(log)
    return log.report(reader.json_lines(decoded) if decoded.json_lines else reader.document(decoded.top))


def load(data: bytes) -> TrainingFile:
    """The typed training file; raises DatasetFormatError (carrying the report) if it is not valid."""
    report = validate(data)
    if report.training_file is None:
        raise DatasetFormatError(report)
    return report.training_file


class _Reader:
    """Reads conversations in file order, numbering training pairs across the whole file."""

    def __init__(self, log: ProblemLog) -> None:
        self.log = log
        self.pairs_seen = 0
        self.first_use_of_id: dict[str, int] = {}

    def document(self, top: object) -> TrainingFile | None:
        if not isinstance(top, dict):
            self.log.add(Problem("file", f"The file must be {TOP_LEVEL_SHAPE}, not {describe(top)}"))
            return None
        fields = Fields(top, "The file", Place(), self.log)
        version = self.format_version(fields)
        name = fields.string("name")
        items = fields.array("conversations")
        conversations = self.conversations([(Place(path=f"conversations[{i}]"), v) for i, v in enumerate(items or [])])
        return None if fields.failed or conversations is None else TrainingFile(version, name, conversations)

    def json_lines(self, decoded: Decoded) -> TrainingFile | None:
        version, name, failed = FORMAT_VERSION, None, False
        if decoded.header is not None:
            line, header = decoded.header
            fields = Fields(header, f"The header on line {line}", Place(line), self.log)  # type: ignore[arg-type]
            version = self.format_version(fields)
            name = fields.string("name") if "name" in fields.obj else None
            failed = fields.failed
        conversations = self.conversations([(Place(line), v) for line, v in decoded.lines])
        return None if failed or conversations is None else TrainingFile(version, name, conversations)

    def format_version(self, fields: Fields) -> int:
        value = fields.required("format_version")
        if isinstance(value, int) and not isinstance(value, bool) and value == FORMAT_VERSION:
            return value
        if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            fields.problem("format_version", f"{fields.subject} has 'format_version' {value}, "
                                             f"but this version reads only format_version {FORMAT_VERSION}")
        elif "format_version" in fields.obj:
            fields.wrong_type("format_version", value, f"the number {FORMAT_VERSION}")
        return FORMAT_VERSION

    def conversations(self, items: list[tuple[Place, object]]) -> tuple[Conversation, ...] | None:
        read = [self.conversation(number, place, value) for number, (place, value) in enumerate(items, start=1)]
        return None if any(c is None for c in read) else tuple(c for c in read if c)

    def conversation(self, number: int, place: Place, value: object) -> Conversation | None:
        if not isinstance(value, dict):
            message = f"Conversation #{number} is not an object (it is {describe(value)})"
            self.log.add(Context(conversation_number=number).problem(place, message))
            return None
        raw_id = value.get("id")
        conv_id = raw_id if isinstance(raw_id, str) and raw_id.strip() else None
        subject = f"Conversation #{number} ({conv_id})" if conv_id else f"Conversation #{number}"
        fields = Fields(value, subject, place, self.log, Context(conv_id, number))
        fields.string("id")
        if conv_id is not None:
            self.check_unique(fields, conv_id, number)
        persona, arc, topic = fields.string("persona"), fields.string("emotional_arc"), fields.string("topic")
        quality, reviewed = self.quality(fields), fields.boolean("human_reviewed")
        pairs = self.pairs(fields, conv_id, number)
        if fields.failed or quality is None or pairs is None:
            return None
        return Conversation(conv_id or "", persona, arc, topic, quality, reviewed, pairs)

    def check_unique(self, fields: Fields, conv_id: str, number: int) -> None:
        first = self.first_use_of_id.setdefault(conv_id, number)
        if first != number:
            message = f"Conversation #{number} has duplicate id '{conv_id}' (first used by conversation #{first})"
            fields.problem("id", message)

    def quality(self, conversation: Fields) -> Quality | None:
        raw = conversation.object("quality")
        if raw is None:
            return None
        fields = Fields(raw, conversation.subject, conversation.place.child("quality"), self.log,
                        conversation.context, label_prefix="quality.")
        scores = [fields.score(dimension, QUALITY_MIN, QUALITY_MAX) for dimension in QUALITY_DIMENSIONS]
        return None if fields.failed else Quality(*scores)

    def pairs(self, conversation: Fields, conv_id: str | None, number: int) -> tuple[TrainingPair, ...] | None:
        items = conversation.array("training_pairs")
        if items is None:
            return None
        if not items:
            conversation.problem("training_pairs", f"{conversation.subject} has no training pairs")
            return None
        owner = f"conversation {conv_id}" if conv_id else f"conversation #{number}"
        place = conversation.place.child("training_pairs")
        read = [self.pair(conversation.context, owner, place.item(i), value) for i, value in enumerate(items)]
        return None if any(p is None for p in read) else tuple(p for p in read if p)

    def pair(self, context: Context, owner: str, place: Place, value: object) -> TrainingPair | None:
        self.pairs_seen += 1
        subject = f"Training pair #{self.pairs_seen} ({owner})"
        context = replace(context, pair_number=self.pairs_seen)
        if not isinstance(value, dict):
            self.log.add(context.problem(place, f"{subject} is not an object (it is {describe(value)})"))
            return None
        fields = Fields(value, subject, place, self.log, context)
        pair = TrainingPair(
            system_prompt=fields.string("system_prompt", allow_empty=True),
            user_input=fields.string("user_input"),
            target_response=fields.string("target_response"),
            turn=fields.optional_count("turn"),
            metadata=fields.optional_object("metadata"),
        )
        return None if fields.failed else pair

