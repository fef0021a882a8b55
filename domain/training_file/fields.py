"""Checks one JSON object's fields, reporting each problem with its subject and place."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from domain.training_file.decoding import JsonObject
from domain.training_file.problems import Problem, ProblemLog

_MISSING = object()


@dataclass(frozen=True)
class Place:
    """Where a value sits: a JSON path, after `line N: ` for JSON Lines."""

    line: int | None = None
    path: str = ""

    def child(self, key: str) -> Place:
        return replace(self, path=f"{self.path}.{key}" if self.path else key)

    def item(self, index: int) -> Place:
        return replace(self, path=f"{self.path}[{index}]")

    @property
    def text(self) -> str:
        if self.line is None:
            return self.path or "file"
        return f"line {self.line}: {self.path}" if self.path else f"line {self.line}"


@dataclass(frozen=True)
class Context:
    """What a problem is about, copied onto each Problem."""

    conversation_id: str | None = None
    conversation_number: int | None = None
    pair_number: int | None = None

    def problem(self, place: Place, message: str) -> Problem:
        return Problem(place.text, message, self.conversation_id, self.conversation_number, self.pair_number)


class Fields:
    """One object under check; `failed` tells whether any of its fields had a problem."""

    def __init__(self, obj: dict[str, object], subject: str, place: Place, log: ProblemLog,
                 context: Context = Context(), label_prefix: str = "") -> None:
        self.obj, self.subject, self.place, self.log = obj, subject, place, log
        self.context, self.label_prefix = context, label_prefix
        self.failed = False
        for key in obj.repeated if isinstance(obj, JsonObject) else ():
            self.problem(key, f"{subject} has '{self.label(key)}' more than once")

    def problem(self, key: str, message: str) -> None:
        self.failed = True
        self.log.add(self.context.problem(self.place.child(key), message))

    def label(self, key: str) -> str:
        return self.label_prefix + key

    def required(self, key: str) -> object:
        value = self.obj.get(key, _MISSING)
        if value is _MISSING:
            self.problem(key, f"{self.subject} is missing '{self.label(key)}'")
        return value

    def wrong_type(self, key: str, value: object, expected: str) -> None:
        self.problem(key, f"{self.subject} has '{self.label(key)}' that is {describe(value)}, expected {expected}")

    def out_of_range(self, key: str, value: object, expected: str) -> None:
        self.problem(key, f"{self.subject} has '{self.label(key)}' of {value}, expected {expected}")

    # string/boolean/score return a placeholder after a problem; callers read `failed`, not it.
    def string(self, key: str, allow_empty: bool = False) -> str:
        value = self.required(key)
        if isinstance(value, str) and (allow_empty or value.strip()):
            return value
        if isinstance(value, str):
            self.problem(key, f"{self.subject} has an empty '{self.label(key)}'")
        elif value is not _MISSING:
            self.wrong_type(key, value, "a string")
        return ""

    def boolean(self, key: str) -> bool:
        value = self.required(key)
        if isinstance(value, bool):
            return value
        if value is not _MISSING:
            self.wrong_type(key, value, "true or false")
        return False

    def score(self, key: str, low: Decimal, high: Decimal) -> Decimal:
        value = self.required(key)
        expected = f"a number from {low} to {high}"
        if value is _MISSING:
            return low
        if not isinstance(value, (int, Decimal)) or isinstance(value, bool):
            self.wrong_type(key, value, expected)
            return low
        number = Decimal(value)
        if not number.is_finite() or not low <= number <= high:
            self.out_of_range(key, value, expected)
            return low
        return number

    def optional_count(self, key: str) -> int | None:
        value = self.obj.get(key)
        expected = "a whole number of 1 or more"
        if value is None:
            return None
        if not isinstance(value, (int, Decimal)) or isinstance(value, bool):
            self.wrong_type(key, value, expected)
            return None
        if not isinstance(value, int) or value < 1:
            self.out_of_range(key, value, expected)
            return None
        return value

    def optional_object(self, key: str) -> dict[str, object] | None:
        value = self.obj.get(key)
        if value is None or isinstance(value, dict):
            return value
        self.wrong_type(key, value, "an object")
        return None

    def array(self, key: str) -> list[object] | None:
        value = self.required(key)
        if isinstance(value, list):
            return value
        if value is not _MISSING:
            self.wrong_type(key, value, "an array")
        return None

    def object(self, key: str) -> dict[str, object] | None:
        value = self.required(key)
        if isinstance(value, dict):
            return value
        if value is not _MISSING:
            self.wrong_type(key, value, "an object")
        return None


def describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, Decimal)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"
