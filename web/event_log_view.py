"""The job's event log (FR2.1.3) as the page's table shows it and as its JSON and CSV exports
write it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from psycopg_pool import AsyncConnectionPool

from projections.event_messages import CATEGORIES
from projections.queries import EventPage, event_page
from web.detail_format import when

CATEGORY_LABELS = {"status": "Status", "metrics": "Metrics", "warning": "Warnings", "error": "Errors"}
EVENT_TYPES = {"status": "Status", "metrics": "Metrics", "warning": "Warning", "error": "Error"}
EXPORT_COLUMNS = ("timestamp", "event_type", "topic", "message", "actor", "payload")


def known_category(category: str) -> str:
    """The category, or "" (every event) when it is not one of the log's."""
    return category if category in CATEGORIES else ""


def event_rows(events: EventPage) -> list[dict[str, Any]]:
    return [{"at": when(e.at), "category": e.category, "type": EVENT_TYPES.get(e.category, e.category),
             "message": e.message, "actor": e.actor, "topic": e.topic.split(".")[-1],
             "payload": json.dumps(e.payload, indent=2, sort_keys=True, default=str)} for e in events.events]


async def every_page(pool: AsyncConnectionPool, job_id: UUID, keyword: str | None,
                     category: str | None) -> AsyncIterator[EventPage]:
    page, pages = 1, 1
    while page <= pages:
        found = await event_page(pool, job_id, keyword, category, page)
        yield found
        page, pages = page + 1, found.pages


async def export_rows(pool: AsyncConnectionPool, job_id: UUID, q: str, category: str) -> list[dict[str, Any]]:
    """The filtered log, every page, one dict of EXPORT_COLUMNS per event."""
    keyword = q.replace("\x00", "").strip()[:200] or None
    return [{"timestamp": e.at.isoformat(), "event_type": e.category, "topic": e.topic, "message": e.message,
             "actor": e.actor, "payload": e.payload}
            async for found in every_page(pool, job_id, keyword, known_category(category) or None)
            for e in found.events]


def as_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2, default=str)


def as_csv(rows: list[dict[str, Any]]) -> str:
    """One line per event, its payload as sorted JSON."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow([*(row[k] or "" for k in EXPORT_COLUMNS[:-1]), json.dumps(row["payload"], default=str,
                                                                                    sort_keys=True)])
    return out.getvalue()
