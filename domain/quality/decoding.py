"""Bytes to values: UTF-8 text, then one JSON document, JSON Lines (one item a line) or CSV rows."""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from domain.json_text import too_large_or_deep, unstorable_escape
from domain.quality.problems import Problem, ProblemLog

MAX_SUITE_BYTES = 5 * 1024 * 1024


class JsonObject(dict[str, object]):
    """A decoded object that remembers keys given more than once (json keeps the last silently)."""

    repeated: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, object]]) -> JsonObject:
    obj = JsonObject(pairs)
    if len(obj) != len(pairs):
        obj.repeated = tuple(key for key, count in Counter(k for k, _ in pairs).items() if count > 1)
    return obj


# Decimal keeps thresholds exact; NaN/Infinity decode to non-finite Decimals that the readers refuse.
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=Decimal, object_pairs_hook=_object)


@dataclass
class Decoded:
    """A JSON document (`top`), or JSON Lines: the optional header line and the numbered item lines."""

    json_lines: bool
    top: object = None
    header: tuple[int, object] | None = None
    lines: list[tuple[int, object]] = field(default_factory=list)


def text_of(data: bytes, log: ProblemLog) -> str | None:
    """The text of a UTF-8 file within the size limit (a leading byte-order mark dropped), or None."""
    if len(data) > MAX_SUITE_BYTES:
        log.add(Problem(None, None, f"The file is {_mib(len(data))} MiB, over the {_mib(MAX_SUITE_BYTES)} MiB limit"))
        return None
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as error:
        offset = bom + error.start
        line, column = data.count(b"\n", 0, offset) + 1, offset - (data.rfind(b"\n", 0, offset) + 1) + 1
        message = f"The file is not UTF-8 text (invalid byte 0x{data[offset]:02x} at line {line}, column {column})"
        log.add(Problem(line, None, message, column))
        return None
    if not text.strip():
        log.add(Problem(None, None, "The file is empty"))
        return None
    return text


def decode_json(text: str, log: ProblemLog, collection: str, item_key: str) -> Decoded | None:
    """JSON Lines when the first value is a one-line object other than the `collection` wrapper, followed by
    more, or alone but an item (it has `item_key`) or a header; otherwise one document."""
    first = _first_value(text, log)
    if first is None:
        return None
    value, start, end = first
    if (isinstance(value, dict) and collection not in value and "\n" not in text[start:end]
            and (text[end:].strip() or item_key in value or _is_header(value, item_key))):
        return _decode_lines(text, item_key, log)
    return _whole(text, value, end, log)


def decode_document(text: str, log: ProblemLog) -> Decoded | None:
    """Exactly one JSON value (its `top`), or None after logging why not."""
    first = _first_value(text, log)
    return None if first is None else _whole(text, first[0], first[2], log)


def csv_rows(text: str, log: ProblemLog) -> list[tuple[int, list[str]]]:
    """Every record with the file line it starts on (a quoted cell may span lines); blank rows left out."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                rows.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as error:
        log.add(Problem(start, None, f"Line {start} is not valid CSV: {error}"))
    return rows


def _first_value(text: str, log: ProblemLog) -> tuple[object, int, int] | None:
    start = len(text) - len(text.lstrip())
    try:
        value, end = _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError) as error:  # a syntax error, a number too long, nesting too deep
        log.add(_not_json(error, text))
        return None
    found = unstorable_escape(text)  # a NUL character or half a surrogate pair, which no text column holds
    if found is not None:
        log.add(Problem(found.line, None, f"At {found.place} the file contains {found.what}", found.column))
        return None
    return value, start, end


def _whole(text: str, value: object, end: int, log: ProblemLog) -> Decoded | None:
    rest = text[end:]
    if rest.strip():
        log.add(_not_json(json.JSONDecodeError("Extra data", text, end + len(rest) - len(rest.lstrip())), text))
        return None
    return Decoded(json_lines=False, top=value)


def _decode_lines(text: str, item_key: str, log: ProblemLog) -> Decoded:
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
        if not decoded.lines and decoded.header is None and _is_header(value, item_key):
            decoded.header = (number, value)
        else:
            decoded.lines.append((number, value))
    return decoded


def _is_header(value: object, item_key: str) -> bool:
    return isinstance(value, dict) and "format_version" in value and item_key not in value


def _not_json(error: Exception, text: str) -> Problem:
    if isinstance(error, json.JSONDecodeError):
        where = f"line {error.lineno}, column {error.colno}"
        return Problem(error.lineno, None, f"The file is not valid JSON: {error.msg} at {where}", error.colno)
    found = too_large_or_deep(text)  # what the decoder refused without saying where
    if found is None:
        return Problem(None, None, "The file cannot be read as JSON")
    return Problem(found.line, None, f"The file cannot be read as JSON: {found.what} at {found.place}", found.column)


def _line_not_json(number: int, error: Exception, line: str) -> Problem:
    if isinstance(error, json.JSONDecodeError):
        message = f"Line {number} is not valid JSON: {error.msg} at column {error.colno}"
        return Problem(number, None, message, error.colno)
    found = too_large_or_deep(line)
    if found is None:
        return Problem(number, None, f"Line {number} cannot be read as JSON")
    return Problem(number, None, f"Line {number} cannot be read as JSON: {found.what} at column {found.column}",
                   found.column)


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0")
