"""The web process's clock: aware UTC, the one "now" the pages and their views use."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
