"""Bytes to JSON values: one JSON document, or JSON Lines (one conversation per line)."""

from __future__ import annotations

import codecs
import json
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from domain.json_text import too_large_or_deep, unstorable_escape
from domain.training_file.model import MAX_FILE_BYTES
from domain.training_file.problems import Problem, ProblemLog


class JsonObject(dict[str, object]):
    """A decoded object that remembers keys given more than once (json keeps the last silently)."""

    repeated: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, object]]) -> JsonObject:
    obj = JsonObject(pairs)
    if len(obj) != len(pairs):
        obj.repeated = tuple(key for key, count in Counter(k for k, _ in pairs).items() if count > 1)
    return obj


# Decimal keeps quality scores exact; NaN/Infinity decode to non-finite Decimals that validation refuses.
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=Decimal, object_pairs_hook=_object)


@dataclass
class Decoded:
    """`top` is the document's value; for JSON Lines, the optional header and the numbered lines."""

    json_lines: bool
    top: object = None
    header: tuple[int, object] | None = None
    lines: list[tuple[int, object]] = field(default_factory=list)


def decode(data: bytes, log: ProblemLog) -> Decoded | None:
    if len(data) > MAX_FILE_BYTES:
        log.add(Problem("file", f"The file is {_mib(len(data))} MiB, over the {_mib(MAX_FILE_BYTES)} MiB limit"))
        return None
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as error:
        offset = bom + error.start
        log.add(Problem(f"byte {offset}", f"The file is not UTF-8 text (invalid byte at offset {offset})"))
        return None
    start = len(text) - len(text.lstrip())
    if start == len(text):
        log.add(Problem("file", "The file is empty"))
        return None
    try:
        first, end = _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError) as error:  # a syntax error, a number too long, nesting too deep
        log.add(_not_json(error, text))
        return None
    rest = text[end:]
    if _starts_json_lines(first, text[start:end], rest):
        decoded = _decode_lines(text, log)
    elif rest.strip():
        at = end + len(rest) - len(rest.lstrip())
        log.add(_not_json(json.JSONDecodeError("Extra data", text, at), text))
        return None
    else:
        decoded = Decoded(json_lines=False, top=first)
    return _storable(text, decoded, log)


def _storable(text: str, decoded: Decoded, log: ProblemLog) -> Decoded | None:
    """Strings the catalog could not keep (a NUL character, half a surrogate pair) stop the reading:
    every value of the file may end up in its statistics or in a problem's message."""
    found = unstorable_escape(text)
    if found is None:
        return decoded
    log.add(Problem(found.place, f"At {found.place} the file contains {found.what}"))
    return None


def _starts_json_lines(first: object, first_text: str, rest: str) -> bool:
    if not isinstance(first, dict) or "conversations" in first or "\n" in first_text:
        return False
    return bool(rest.strip()) or "training_pairs" in first or "messages" in first  # one chat line: JSON Lines


def _decode_lines(text: str, log: ProblemLog) -> Decoded:
    decoded = Decoded(json_lines=True)
    # split("\n"), not splitlines(): U+2028 and friends may sit raw inside JSON strings.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = _DECODER.decode(line)
        except (ValueError, RecursionError) as error:
            log.add(_line_not_json(number, error, line))
            continue
        if not decoded.lines and decoded.header is None and _is_header(value):
            decoded.header = (number, value)
        else:
            decoded.lines.append((number, value))
    return decoded


def _is_header(value: object) -> bool:
    return isinstance(value, dict) and "format_version" in value and "training_pairs" not in value


def _not_json(error: Exception, text: str) -> Problem:
    if isinstance(error, json.JSONDecodeError):
        where = f"line {error.lineno}, column {error.colno}"
        return Problem(where, f"The file is not valid JSON: {error.msg} at {where}")
    found = too_large_or_deep(text)  # what the decoder refused without saying where
    if found is None:
        return Problem("file", "The file cannot be read as JSON")
    return Problem(found.place, f"The file cannot be read as JSON: {found.what} at {found.place}")


def _line_not_json(number: int, error: Exception, line: str) -> Problem:
    if isinstance(error, json.JSONDecodeError):
        where = f"line {number}, column {error.colno}"
        return Problem(where, f"Line {number} is not valid JSON: {error.msg} at column {error.colno}")
    found = too_large_or_deep(line)
    if found is None:
        return Problem(f"line {number}", f"Line {number} cannot be read as JSON")
    return Problem(f"line {number}, column {found.column}",
                   f"Line {number} cannot be read as JSON: {found.what} at column {found.column}")


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0")
