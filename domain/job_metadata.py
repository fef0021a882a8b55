"""Job metadata rules (FR1.3.1, FR8.2.2): name, description, notes, tags, client and project; labels and the
model-name suffix (what OpenAI's fine-tuning API calls `metadata` and `suffix`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date

from domain.text import check_storable

NAME_MIN, NAME_MAX = 3, 100
DESCRIPTION_MAX = 500
NOTE_MAX = 2000
TAGS_MAX = 10
TAG_PATTERN = re.compile(r"^[a-z0-9-]{3,30}$")
LABEL_MAX = 100
# Labels: free key-value pairs on a job (OpenAI's fine-tuning `metadata`, with its limits).
LABELS_MAX, LABEL_KEY_MAX, LABEL_VALUE_MAX = 16, 64, 512
SUFFIX_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
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
    name = check_storable(name, "Job name", InvalidMetadataError).strip()
    if not NAME_MIN <= len(name) <= NAME_MAX:
        raise InvalidMetadataError("Job name must be between 3 and 100 characters")
    return name


def clean_description(text: str | None) -> str:
    text = check_storable(text or "", "Description", InvalidMetadataError).strip()
    if len(text) > DESCRIPTION_MAX:
        raise InvalidMetadataError(f"Description must be at most {DESCRIPTION_MAX} characters (got {len(text)})")
    return text


def clean_note(text: str) -> str:
    text = check_storable(text, "Notes", InvalidMetadataError).strip()
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
    value = check_storable(value or "", what, InvalidMetadataError).strip()
    if len(value) > LABEL_MAX:
        raise InvalidMetadataError(f"{what} must be at most {LABEL_MAX} characters")
    return value or None


def clean_labels(labels: Mapping[str, object] | None) -> dict[str, str]:
    """At most 16 pairs; keys of 1-64 characters, values strings of at most 512."""
    labels = dict(labels or {})
    if len(labels) > LABELS_MAX:
        raise InvalidLabelsError(f"Metadata may hold at most {LABELS_MAX} key-value pairs (got {len(labels)})")
    for key, value in labels.items():
        if not isinstance(key, str) or not key.strip():
            raise InvalidLabelsError("Metadata keys must be non-empty strings")
        if len(key) > LABEL_KEY_MAX:
            raise InvalidLabelsError(f"Metadata key '{key[:20]}…' is longer than {LABEL_KEY_MAX} characters")
        if not isinstance(value, str):
            raise InvalidLabelsError(f"Metadata value of '{key}' must be a string")
        if len(value) > LABEL_VALUE_MAX:
            raise InvalidLabelsError(f"Metadata value of '{key}' is longer than {LABEL_VALUE_MAX} characters"
                                     f" (got {len(value)})")
    return {key: str(value) for key, value in labels.items()}


def clean_suffix(suffix: str | None) -> str | None:
    """The adapter's model-name suffix (OpenAI's `suffix`): 1-64 letters, digits, '.', '_' or '-'."""
    if suffix is None:
        return None
    if not SUFFIX_PATTERN.match(suffix):
        raise InvalidSuffixError("The suffix must be 1 to 64 characters: letters, digits, '.', '_' or '-'")
    return suffix


class InvalidJobError(ValueError):
    """A job command carried an invalid value; nothing was changed."""


class InvalidMetadataError(InvalidJobError):
    """A metadata value breaks a rule; the message is the one shown to the user."""


class InvalidLabelsError(InvalidMetadataError):
    """The labels (OpenAI's `metadata`) break a rule."""


class InvalidSuffixError(InvalidMetadataError):
    """The model-name suffix breaks its rule."""
