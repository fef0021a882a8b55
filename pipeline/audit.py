"""`pipeline audit replay`: the ordered history read from the event store itself (never a read
model), as text, JSON Lines or CSV, streamed page by page."""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TextIO
from uuid import UUID

from eventsourcing.application import Application

from infra.progress import Progress
from projections.event_log import job_of
from projections.event_messages import actor_of
from projections.json import event_payload

FORMATS = ("text", "json", "csv")
COLUMNS = ("notification_id", "at", "aggregate_type", "aggregate_id", "version", "topic", "actor", "payload")


@dataclass(frozen=True)
class Filters:
    """`job_id`: the job's own events and those naming it (budget, catalog); `since` inclusive,
    `until` exclusive, both on the event's own time (`at`)."""

    job_id: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None

    def match(self, event: Any) -> bool:
        when = when_of(event)
        return ((self.job_id is None or job_of(event) == self.job_id)
                and (self.since is None or when >= self.since) and (self.until is None or when < self.until))


def parse_when(text: str) -> datetime:
    """An ISO 8601 date or date-time (argparse type); without a zone it is UTC."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def when_of(event: Any) -> datetime:
    return getattr(event, "at", None) or event.timestamp


def records(app: Application, filters: Filters, progress: Callable[[int], None] | None = None,
            page: int = 500) -> Iterator[dict[str, Any]]:
    """The stored events matching `filters` in notification order, one page in memory at a time;
    `progress` gets the number of events read so far."""
    # A job's id appears (as the transcoder's hex) in the stored JSON of every other event that
    # concerns it: skip the rest undecoded, unless the store compresses or encrypts its events.
    plain_state = app.mapper.compressor is None and app.mapper.cipher is None
    needle = filters.job_id.hex.encode() if filters.job_id and plain_state else b""
    start, read = 1, 0
    while batch := app.recorder.select_notifications(start, page):
        for notification in batch:
            if needle and notification.originator_id != filters.job_id and needle not in notification.state:
                continue
            event = app.mapper.to_domain_event(notification)
            if filters.match(event):
                yield {"notification_id": notification.id, "at": when_of(event).isoformat(),
                       "aggregate_type": notification.topic.partition(".")[0],
                       "aggregate_id": str(notification.originator_id),
                       "version": notification.originator_version, "topic": notification.topic,
                       "actor": actor_of(event), "payload": event_payload(event)}
        read += len(batch)
        start = batch[-1].id + 1
        if progress:
            progress(read)


def write(rows: Iterator[dict[str, Any]], out: TextIO, fmt: str) -> int:
    """Writes one line per event (CSV: after a header); returns how many."""
    writer = csv.writer(out) if fmt == "csv" else None
    if writer:
        writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        payload = json.dumps(row["payload"], ensure_ascii=False, sort_keys=True)
        if writer:
            writer.writerow([*(row[c] for c in COLUMNS[:-1]), payload])
        elif fmt == "json":
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            out.write(f"{row['notification_id']}  {row['at']}  {row['aggregate_type']} {row['aggregate_id']}"
                      f"  v{row['version']}  {row['topic']}  {row['actor'] or '-'}  {payload}\n")
        count += 1
    return count


def replay(app: Application, filters: Filters, fmt: str, out: TextIO) -> int:
    """Writes the matching events to `out`, with a progress line on a terminal (stderr); returns how many."""
    with Progress("replaying") as progress:
        count = write(records(app, filters, progress.update), out, fmt)
    out.flush()
    return count
