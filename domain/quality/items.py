"""What the suite readers share: numbered items with unique ids, item counts and the format version."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

from domain.quality.fields import Fields, Place, describe
from domain.quality.model import FORMAT_VERSION, MAX_ITEMS
from domain.quality.problems import ProblemLog

T = TypeVar("T")
ItemReader = Callable[[Fields, str | None], T | None]


class Items:
    """Reads one list of objects in file order, numbered from 1 (`Question #4 (fk-tax-004)`), ids unique."""

    def __init__(self, noun: str, log: ProblemLog) -> None:
        self.noun, self.log = noun, log
        self.first_use: dict[str, int] = {}

    def read(self, items: list[tuple[Place, object]], read_one: ItemReader[T]) -> tuple[T, ...] | None:
        read = [self.one(number, place, value, read_one) for number, (place, value) in enumerate(items, start=1)]
        return None if any(item is None for item in read) else tuple(item for item in read if item is not None)

    def one(self, number: int, place: Place, value: object, read_one: ItemReader[T]) -> T | None:
        title = self.noun.capitalize()
        if not isinstance(value, dict):
            self.log.add(place.problem(f"{title} #{number} is not an object (it is {describe(value)})"))
            return None
        raw_id = value.get("id")
        item_id = raw_id.strip() if isinstance(raw_id, str) and raw_id.strip() else None
        fields = Fields(value, f"{title} #{number} ({item_id})" if item_id else f"{title} #{number}", place, self.log)
        fields.string("id")
        if item_id is not None:
            first = self.first_use.setdefault(item_id, number)
            if first != number:
                fields.problem("id", f"{title} #{number} has duplicate id '{item_id}' "
                                     f"(first used by {self.noun} #{first})")
        item = read_one(fields, item_id)
        return None if fields.failed else item


def check_count(log: ProblemLog, place: Place, subject: str, count: int, plural: str, at_least: int = 1) -> bool:
    """At least `at_least` (1: "has no questions") and at most MAX_ITEMS items."""
    if count < at_least:
        log.add(place.problem(f"{subject} has no {plural}"))
        return False
    if count > MAX_ITEMS:
        log.add(place.problem(f"{subject} has {count:,} {plural}, over the limit of {MAX_ITEMS:,}"))
        return False
    return True


def format_version(fields: Fields, required: bool) -> int:
    """FORMAT_VERSION; anything else given is a problem (as is none when `required`)."""
    value = fields.required("format_version") if required else fields.obj.get("format_version", FORMAT_VERSION)
    if isinstance(value, int) and not isinstance(value, bool) and value == FORMAT_VERSION:
        return value
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        fields.problem("format_version", f"{fields.subject} has 'format_version' {value}, "
                                         f"but this version reads only format_version {FORMAT_VERSION}")
    elif "format_version" in fields.obj:
        fields.wrong_type("format_version", value, f"the number {FORMAT_VERSION}")
    return FORMAT_VERSION
