"""Replays the event store into read models: one pass over the notification log, each event
decoded once and handed, page by page, to every projection that reads its topic, through the same
`process_batch` the live consumers use. `projections rebuild` and `audit verify` come here."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import psycopg
from eventsourcing.application import Application

from projections.base import Item, Projection, process_batch

PAGE = 5000  # events read and applied at a time: each job's rows are written once a page
END = 2**63 - 1  # the largest notification id


def replay(conn: psycopg.Connection, projections: Sequence[Projection], applications: Mapping[str, Application],
           until: Mapping[tuple[str, str], int] | None = None, progress: Callable[[int], None] | None = None,
           page: int = PAGE) -> dict[str, int]:
    """Applies every stored event of the projections' topics, in notification order, into their
    tables (the caller empties them and owns the transaction). `until` stops a projection at a
    notification id of an application, keyed (projection, application): its live position, for a
    comparison. Returns how many events each projection was given."""
    counts = {p.name: 0 for p in projections}
    read = 0
    for name in dict.fromkeys(a for p in projections for a in p.applications):
        readers = [p for p in projections if name in p.applications]
        app = applications[name]
        topics = sorted({t for p in readers for t in p.topics})
        last = {p.name: (until or {}).get((p.name, name), END) for p in readers}
        wanted = {p.name: frozenset(p.topics) for p in readers}
        start = 1
        while batch := app.recorder.select_notifications(start, page, stop=max(last.values()), topics=topics):
            items = [(n.id, n.topic, app.mapper.to_domain_event(n)) for n in batch]
            for projection in readers:
                own, stop = wanted[projection.name], last[projection.name]
                mine = [(i, event) for i, topic, event in items if topic in own and i <= stop]
                if mine:
                    check(process_batch(conn, projection, name, mine), projection, mine)
                    counts[projection.name] += len(mine)
            read += len(batch)
            start = batch[-1].id + 1
            if progress:
                progress(read)
    return counts


def check(outcomes: Sequence[object], projection: Projection, items: Sequence[Item]) -> None:
    """A replay reads each aggregate's events in order: a gap means the store lost one."""
    for outcome, (notification_id, _) in zip(outcomes, items, strict=True):
        if isinstance(outcome, Exception):
            raise RuntimeError(f"{projection.name}: replay stopped at notification {notification_id}: {outcome}")
