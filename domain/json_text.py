"""Where JSON text goes past what can be read or kept, with its line and column: a number of more
than 4,300 digits, arrays and objects nested too deeply, a NUL character or half of a surrogate
pair written as a `\\u` escape. Decoders refuse the first two without a place (Python's json names
`sys.set_int_max_str_digits()`, msgspec says "Integer value out of range") and accept the last two,
which no text column can hold; the training-file validator and the web's JSON bodies both ask here."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_DIGITS = 4300  # Python's default limit on the digits of an integer read from text
NESTING_SHOWN = 100  # a document nested too deeply to read is shown where it first goes past this depth

# A string (skipped whole), a number (integer part, fraction, exponent), an opening or a closing bracket.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|(-?\d+)(\.\d+)?([eE][-+]?\d+)?|([\[{])|([\]}])', re.S)
# A NUL, or half of a surrogate pair: a high half not followed by a low one, a low half not after a high one.
_HIGH, _LOW = r"\\u[dD][89abAB][0-9a-fA-F]{2}", r"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
# Each begins with its backslash, so the engine skips to backslashes (a leading lookbehind would run everywhere).
_BAD_ESCAPE = re.compile(rf"\\(?:u0000|{_HIGH[2:]}(?!{_LOW})|(?<!{_HIGH}\\){_LOW[2:]})")


@dataclass(frozen=True)
class TextProblem:
    """What is wrong (`what`, a phrase: "a number with 5,000 digits (at most 4,300)") and where."""

    line: int
    column: int
    what: str

    @property
    def place(self) -> str:
        return f"line {self.line}, column {self.column}"


def place_of(text: str, offset: int) -> tuple[int, int]:
    """(line, column) of a character offset, both from 1, as Python's json counts them."""
    return text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)


def too_large_or_deep(text: str, *, float_range: bool = False) -> TextProblem | None:
    """The first number of more than MAX_DIGITS digits (with `float_range`, also the first beyond a
    float's range, for decoders that read numbers as floats) or the first array or object opened
    more than NESTING_SHOWN levels deep, in text order. Scans token by token: call it once a decoder
    has refused the text, not before."""
    depth = 0
    for token in _TOKEN.finditer(text):
        integer, fraction, exponent, opening, closing = token.groups()
        if opening:
            depth += 1
            if depth > NESTING_SHOWN:
                return _at(text, token.start(), f"arrays and objects nested more than {NESTING_SHOWN} levels deep")
        elif closing:
            depth = max(0, depth - 1)
        elif integer:
            digits = len(integer.lstrip("-"))
            if digits > MAX_DIGITS and not fraction and not exponent:
                return _at(text, token.start(), f"a number with {digits:,} digits (at most {MAX_DIGITS:,})")
            if float_range and float(token.group()) in (float("inf"), float("-inf")):
                shown = token.group() if len(token.group()) <= 24 else token.group()[:20] + "…"
                return _at(text, token.start(), f"the number {shown}, too large to read (at most about 1.8e308)")
    return None


def unstorable_escape(text: str) -> TextProblem | None:
    """The first `\\u0000` (a NUL character) or `\\uD800`-`\\uDFFF` that is not one half of a pair
    (a lone surrogate, not a character) written in the strings of decoded JSON text. One regular
    expression finds them (0.02 s for 31 MB; files write emoji as pairs by the hundred thousand)."""
    for found in _BAD_ESCAPE.finditer(text):
        if _escaped(text, found.start()):
            continue  # "\\u0000": a backslash, then the letters u0000
        if found.group() == "\\u0000":
            return _at(text, found.start(), "a NUL character (written \\u0000), which text cannot contain")
        return _at(text, found.start(), f"{found.group()}, half of a surrogate pair, which is not a character")
    return None


def _escaped(text: str, backslash: int) -> bool:
    """Whether the backslash at `backslash` is itself escaped (an odd run of backslashes before it)."""
    run = 0
    while backslash - run - 1 >= 0 and text[backslash - run - 1] == "\\":
        run += 1
    return run % 2 == 1


def _at(text: str, offset: int, what: str) -> TextProblem:
    return TextProblem(*place_of(text, offset), what)
