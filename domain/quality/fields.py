"""Checks one object's fields (a JSON object or a CSV row), reporting each problem with its place."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal

from domain.quality.decoding import JsonObject
from domain.quality.problems import Problem, ProblemLog

_MISSING = object()


@dataclass(frozen=True)
class Place:
    """Where a value sits: the file's line (JSON Lines, CSV) and a path inside it."""

    line: int | None = None
    path: str = ""

    def child(self, key: str) -> Place:
        return replace(self, path=f"{self.path}.{key}" if self.path else key)

    def item(self, index: int) -> Place:
        return replace(self, path=f"{self.path}[{index}]")

    def problem(self, message: str) -> Problem:
        return Problem(self.line, self.path or None, message)


class Fields:
    """One object under check; `failed` tells whether any of its fields had a problem. Readers return a
    placeholder after a problem, so callers read `failed`, not the value."""

    def __init__(self, obj: dict[str, object], subject: str, place: Place, log: ProblemLog,
                 label_prefix: str = "") -> None:
        self.obj, self.subject, self.place, self.log, self.label_prefix = obj, subject, place, log, label_prefix
        self.failed = False
        for key in obj.repeated if isinstance(obj, JsonObject) else ():
            self.problem(key, f"{subject} has '{self.label(key)}' more than once")

    def nested(self, key: str, obj: dict[str, object]) -> Fields:
        return Fields(obj, self.subject, self.place.child(key), self.log, f"{self.label(key)}.")

    def problem(self, key: str | None, message: str) -> None:
        self.failed = True
        self.log.add((self.place.child(key) if key else self.place).problem(message))

    def label(self, key: str) -> str:
        return self.label_prefix + key

    def required(self, key: str) -> object:
        value = self.obj.get(key, _MISSING)
        if value is _MISSING:
            self.problem(key, f"{self.subject} is missing '{self.label(key)}'")
        return value

    def wrong_type(self, key: str, value: object, expected: str) -> None:
        self.problem(key, f"{self.subject} has '{self.label(key)}' that is {describe(value)}, expected {expected}")

    def string(self, key: str) -> str:
        """A required string that is not empty (only whitespace counts as empty)."""
        value = self.required(key)
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, str):
            self.problem(key, f"{self.subject} has an empty '{self.label(key)}'")
        elif value is not _MISSING:
            self.wrong_type(key, value, "a string")
        return ""

    def optional_string(self, key: str) -> str | None:
        """None when absent, null or empty."""
        value = self.obj.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return self.string(key) or None

    def one_of(self, key: str, allowed: Iterable[str], optional: bool = False) -> str | None:
        """One of `allowed`, compared without case or surrounding spaces; returned as spelt in `allowed`."""
        text = self.optional_string(key) if optional else self.string(key) or None
        if text is None:
            return None
        spelt = {value.casefold(): value for value in allowed}
        found = spelt.get(text.strip().casefold())
        if found is None:
            expected = ", ".join(spelt.values())
            self.problem(key, f"{self.subject} has '{self.label(key)}' '{text}', expected one of {expected}")
        return found

    def flag(self, key: str) -> bool:
        """An optional boolean: absent or null is false."""
        value = self.obj.get(key)
        if value is None or isinstance(value, bool):
            return bool(value)
        self.wrong_type(key, value, "true or false")
        return False

    def number(self, key: str, low: Decimal, high: Decimal, optional: bool = False) -> Decimal | None:
        value = self.obj.get(key, _MISSING) if optional else self.required(key)
        expected = f"a number from {low} to {high}"
        if value is _MISSING or (value is None and optional):
            return None
        if not isinstance(value, (int, Decimal)) or isinstance(value, bool):
            self.wrong_type(key, value, expected)
            return None
        number = Decimal(value)
        if not number.is_finite() or not low <= number <= high:
            self.problem(key, f"{self.subject} has '{self.label(key)}' of {value}, expected {expected}")
            return None
        return number

    def array(self, key: str, optional: bool = False) -> list[object] | None:
        value = self.obj.get(key) if optional else self.required(key)
        if isinstance(value, list) or (value is None and optional):
            return value
        if value is not _MISSING:
            self.wrong_type(key, value, "an array")
        return None

    def object(self, key: str, optional: bool = False) -> dict[str, object] | None:
        value = self.obj.get(key) if optional else self.required(key)
        if isinstance(value, dict) or (value is None and optional):
            return value
        if value is not _MISSING:
            self.wrong_type(key, value, "an object")
        return None

    def only_keys(self, allowed: Iterable[str], what: str) -> None:
        """Refuses keys outside `allowed` (where a stray key means a mistake, such as a choice 'E')."""
        allowed = tuple(allowed)
        for key in self.obj:
            if key not in allowed:
                self.problem(key, f"{self.subject} has {what} '{key}'; only {_listed(allowed)} are allowed")


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


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(values[:-1]) + f" and {values[-1]}" if len(values) > 1 else values[0]
