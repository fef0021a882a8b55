"""What every route refuses before it runs, each with its place: text that cannot be kept (a NUL
character, half a surrogate pair) in the path, the query, a form or a JSON body, and a JSON body
that cannot be read (syntax, a number of more than 4,300 digits, nesting too deep), by line and
column. Decoders and PostgreSQL would otherwise answer in their own terms, or not at all."""

from __future__ import annotations

import re
from typing import Any

from litestar import Request, Response
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import SerializationException
from litestar.params import BodyKwarg

from domain.json_text import MAX_DIGITS, place_of, too_large_or_deep, unstorable_escape
from domain.text import unstorable
from web.errors import refusal

_BYTE = re.compile(r"\s*\(byte (\d+)\)$")


async def refuse_unusable_input(request: Request) -> Response | None:
    """A 400 answer (JSON, or the error page for a browser) naming the first unusable value; None when all is well."""
    problem = _in_parameters(request) or await _in_form(request) or await _in_json_body(request)
    return refusal(request, 400, problem, "Invalid input") if problem else None


def _in_parameters(request: Request) -> str | None:
    for name, value in request.path_params.items():
        if isinstance(value, str) and (reason := unstorable(value)):
            return f"The address part {name} {reason}: remove it"
    for name, value in request.query_params.multi_items():
        if isinstance(value, str) and (reason := unstorable(value)):
            return f"The query parameter {name} {reason}: remove it"
        digits = len(value.strip().lstrip("+-")) if isinstance(value, str) else 0
        if digits > MAX_DIGITS and value.strip().lstrip("+-").isdigit():  # the decoder would say "out of range"
            return f"The query parameter {name} is a number with {digits:,} digits (at most {MAX_DIGITS:,})"
    return None


async def _in_form(request: Request) -> str | None:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith((RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART)):
        return None
    for name, value in (await request.form()).multi_items():
        text = value.filename if isinstance(value, UploadFile) else value
        if isinstance(text, str) and (reason := unstorable(text)):
            what = "The name of the file in" if isinstance(value, UploadFile) else "The field"
            return f"{what} {name} {reason}: remove it"
    return None


async def _in_json_body(request: Request) -> str | None:
    if not _takes_json(request) or not await request.body():
        return None
    try:
        value = await request.json()
    except (SerializationException, RecursionError) as error:
        return unreadable_json(await request.body(), error)
    return unstorable_in(value)


def _takes_json(request: Request) -> bool:
    data = request.route_handler.parsed_data_field
    if data is None:
        return False
    kwarg = data.kwarg_definition
    return not isinstance(kwarg, BodyKwarg) or kwarg.media_type in (RequestEncodingType.JSON, None)


def unreadable_json(body: bytes, error: BaseException) -> str:
    """Why the decoder refused `body`, in the caller's terms, with the line and column."""
    text = body.decode("utf-8", errors="replace")
    found = too_large_or_deep(text, float_range=True)
    reason = str(error).removeprefix("JSON is malformed: ")
    if found is None and "truncated" in reason:
        found = unstorable_escape(text)  # msgspec says "truncated" for half a surrogate pair too
        if found is None:
            line, column = place_of(text, len(text))
            return f"The request body is not valid JSON: it ends at line {line}, column {column} before its JSON does"
    if found is not None:
        return f"The request body cannot be read as JSON: {found.what} at {found.place}"
    byte = _BYTE.search(reason)
    if byte is None or isinstance(error, RecursionError):
        return "The request body is not valid JSON"
    line, column = place_of(text, len(body[:int(byte.group(1))].decode("utf-8", errors="replace")))
    return f"The request body is not valid JSON: {reason[:byte.start()]} at line {line}, column {column}"


def unstorable_in(value: Any) -> str | None:
    """The first string (or key) in a decoded JSON value that cannot be kept, named by its path."""
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, str):
            if reason := unstorable(item):
                return f"{path or 'The request body'} {reason}: remove it"
        elif isinstance(item, dict):
            for key, inner in reversed(item.items()):
                if reason := unstorable(str(key)):
                    return f"A key in {path or 'the request body'} {reason}: remove it"
                pending.append((f"{path}.{key}" if path else str(key), inner))
        elif isinstance(item, list):
            pending.extend((f"{path}[{i}]", inner) for i, inner in reversed(list(enumerate(item))))
    return None
