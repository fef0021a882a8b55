"""What text the pipeline can keep: no NUL character (PostgreSQL text and jsonb cannot hold one) and
no half of a UTF-16 surrogate pair (not a character, so not UTF-8). One rule for every input."""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def unstorable(text: str) -> str | None:
    """Why `text` cannot be kept, in the user's terms with the character's position; None when it can."""
    at = text.find("\x00")
    if at >= 0:
        return f"contains a NUL character (U+0000) at character {at + 1}"
    found = _SURROGATE.search(text)
    if found:
        return (f"contains half of a character (the lone surrogate U+{ord(found.group()):04X})"
                f" at character {found.start() + 1}")
    return None


def check_storable(text: str, what: str, error: type[Exception] = ValueError) -> str:
    """`text` unchanged, or `error` saying what is wrong with `what` (a field's name) and where."""
    reason = unstorable(text)
    if reason:
        raise error(f"{what} {reason}: remove it")
    return text
