"""Job metadata rules (FR1.3.1, FR8.2.2): name, description, notes, tags, client and project."""

from __future__ import annotations

import re
from datetime import date

NAME_MIN, NAME_MAX = 3, 100
DESCRIPTION_MAX = 500
NOTE_MAX = 2000
TAGS_MAX = 10
TAG_PATTERN = re.compile(r"^[a-z0-9-]{3,30}$")
LABEL_MAX = 100
COMMON_TAGS = ("experiment", "production", "client-delivery", "test", "poc", "research", "optimization",
               "validation", "baseline", "iteration-1", "iteration-2", "high-priority", "low-priority",
               "approved", "needs-review")


def default_name(file_name: str, preset_display_name: str, on: date) -> str:
    """"{training_file_name} - {preset} - {YYYY-MM-DD}", cut to fit the 100-character limit."""
    suffix = f" - {preset_display_name} - {on.isoformat()}"
    return file_name[: NAME_MAX - len(suffix)].rstrip() + suffix


_RETRY_SUFFIX = re.compile(r" \(Retry #\d+\)$")


def retry_name(original: str, retry_number: int) -> str:
    """`"{name} (Retry #N)"` (FR3.3.1): a retry of a retry replaces the suffix; fits 100 characters."""
    suffix = f" (Retry #{retry_number})"
    base = _RETRY_SUFFIX.sub("", original)
    return base[: NAME_MAX - len(suffix)].rstrip() + suffix


def clean_name(name: str) -> str:
    name = name.strip()
    if not NAME_MIN <= len(name) <= NAME_MAX:
        raise InvalidMetadataError("Job name must be between 3 and 100 characters")
    return name


def clean_description(text: str | None) -> str:
    text = (text or "").strip()
    if len(text) > DESCRIPTION_MAX:
        raise InvalidMetadataError(f"Description must be at most {DESCRIPTION_MAX} characters (got {len(text)})")
    return text


def clean_note(text: str) -> str:
    text = text.strip()
    if not text:
        raise InvalidMetadataError("A note must not be empty")
    if len(text) > NOTE_MAX:
        raise InvalidMetadataError(f"Notes must be at most {NOTE_MAX} characters (got {len(text)})")
    return text


def clean_tags(tags: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(t.strip() for t in tags or () if t.strip()))
    if len(cleaned) > TAGS_MAX:
        raise InvalidMetadataError("Maximum 10 tags allowed")
    for tag in cleaned:
        if not TAG_PATTERN.match(tag):
            raise InvalidMetadataError(
                f"Tag '{tag}' must be 3-30 characters: lowercase letters, digits and hyphens only")
    return cleaned


def clean_label(value: str | None, what: str) -> str | None:
    value = (value or "").strip()
    if len(value) > LABEL_MAX:
        raise InvalidMetadataError(f"{what} must be at most {LABEL_MAX} characters")
    return value or None


class InvalidJobError(ValueError):
    """A job command carried an invalid value; nothing was changed."""


class InvalidMetadataError(InvalidJobError):
    """A metadata value breaks a rule; the message is the one shown to the user."""
