"""OpenAI's list envelope and cursors: `{"object": "list", "data", "has_more", "first_id", "last_id"}`;
the client asks for the next page with `after=<the last item's id>` and the same other parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from web.openai_api.errors import OpenAIError


def envelope(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more,
            "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}


def uuid_cursor(after: str | None, what: str) -> UUID | None:
    if after is None:
        return None
    try:
        return UUID(after)
    except ValueError:
        raise unknown_cursor(after, what) from None


def numbered_cursor(after: str | None, prefix: str, what: str) -> int | None:
    """`after` of the event and checkpoint lists: `<prefix><notification id>`."""
    if after is None:
        return None
    number = after.removeprefix(prefix)
    if not after.startswith(prefix) or not number.isdigit():
        raise unknown_cursor(after, what)
    return int(number)


def unknown_cursor(after: str, what: str) -> OpenAIError:
    return OpenAIError(400, f"No {what} with id '{after}': 'after' takes the id of the last item of the previous"
                            " page", "after", "invalid_cursor")


def metadata_filter(query: Mapping[str, str]) -> tuple[dict[str, str], bool]:
    """`metadata[k]=v` pairs (all must match), and whether the literal `metadata=null` asked for
    jobs without metadata (the two forms do not combine)."""
    pairs = {key[len("metadata["):-1]: value for key, value in query.items()
             if key.startswith("metadata[") and key.endswith("]")}
    unlabelled = query.get("metadata") == "null"
    if "metadata" in query and not unlabelled:
        raise OpenAIError(400, "Filter by metadata with metadata[key]=value, or metadata=null for jobs without any",
                          "metadata", "invalid_metadata_filter")
    if pairs and unlabelled:
        raise OpenAIError(400, "metadata=null and metadata[key]=value filters cannot be combined", "metadata",
                          "invalid_metadata_filter")
    return pairs, unlabelled
