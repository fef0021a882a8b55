"""Small helpers that HTML form handlers share."""

from __future__ import annotations

from urllib.parse import quote_plus

from litestar.response import Redirect


def redirect_with(path: str, **message: str) -> Redirect:
    """303 to `path` with `error` / `notice` messages in the query (shown by the base layout)."""
    query = "&".join(f"{k}={quote_plus(v[:500])}" for k, v in message.items() if v)
    separator = "&" if "?" in path else "?"
    return Redirect(f"{path}{separator}{query}" if query else path, status_code=303)


def split_tags(text: str) -> list[str]:
    return [t for t in text.replace(",", " ").split() if t]
