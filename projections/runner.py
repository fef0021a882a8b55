"""Runs projections: live from JetStream (durable consumers) or rebuilt from their source (the event
store; the TELEMETRY stream for the metric history)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import psycopg
from eventsourcing.application import Application
from faststream.nats import NatsBroker
from psycopg import sql
from psycopg_pool import ConnectionPool

from infra import envelope
from infra.consumers import PROJECTION_ACK_WAIT_S, PoisonMessageError, add_consumer
from infra.leadership import NotLeaderError
from projections import metrics
from projections.base import Item, Projection, process, process_batch
from projections.budgets import BudgetsProjection
from projections.catalog import CatalogProjection
from projections.event_log import EventLogProjection
from projections.job_costs import JobCostsProjection
from projections.jobs import JobsProjection
from projections.replay import replay
from projections.sharing import SharingProjection
from projections.suites import SuitesProjection
from projections.templates import TemplatesProjection

# Read models of the event store.
PROJECTIONS: dict[str, Projection] = {
    p.name: p for p in (JobsProjection(), CatalogProjection(), EventLogProjection(), BudgetsProjection(),
                        JobCostsProjection(), TemplatesProjection(), SharingProjection(), SuitesProjection())}
# Every read model `projections run` and `projections rebuild` know: those and the metric history,
# a read model of the TELEMETRY stream (projections/metrics.py).
NAMES: tuple[str, ...] = (*PROJECTIONS, metrics.NAME)


def durable_name(projection: Projection) -> str:
    return f"projection-{projection.name}"


def rebuild(conn: psycopg.Connection, projection: Projection, applications: dict[str, Application],
            progress: Callable[[int], None] | None = None) -> int:
    """Empties the projection's tables and replays the event store into them (projections/replay.py:
    the live consumer's folds and rows), in one transaction: readers see the old or the new table,
    never half."""
    return rebuild_together(conn, [projection], applications, progress)[projection.name]


def rebuild_all(conn: psycopg.Connection, applications: dict[str, Application],
                progress: Callable[[int], None] | None = None, workers: int | None = None) -> dict[str, int]:
    """Every read model of the event store at once: one pass over the store, one transaction."""
    return rebuild_together(conn, list(PROJECTIONS.values()), applications, progress, workers)


def rebuild_together(conn: psycopg.Connection, projections: Sequence[Projection],
                     applications: dict[str, Application], progress: Callable[[int], None] | None = None,
                     workers: int | None = None) -> dict[str, int]:
    with conn.transaction():
        tables = [t for p in projections for t in p.tables]
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(sql.Identifier(t) for t in tables)))
        conn.execute("DELETE FROM projection_positions WHERE projection = ANY(%s)", ([p.name for p in projections],))
        return replay(conn, projections, applications, progress=progress, workers=workers,
                      every_topic=len(projections) == len(PROJECTIONS))


def add_live_projection(broker: NatsBroker, pool: ConnectionPool, projection: Projection,
                        applications: dict[str, Application], max_deliver: int,
                        may_act: Callable[[], bool] = lambda: True) -> None:
    """`may_act`: whether this instance still leads the projection (infra/leadership.py); while it
    is not sure, its batches are handed back for the leader."""
    def handle(bodies: Sequence[bytes]) -> list[Exception | None]:
        if not may_act():
            return [NotLeaderError(f"{projection.name}: lease not confirmed") for _ in bodies]
        outcomes: list[Exception | None] = [None] * len(bodies)
        batches: dict[str, list[tuple[int, Item]]] = {}  # per application: (place in `bodies`, item)
        for place, body in enumerate(bodies):
            try:
                env = envelope.decode(body)
                app = applications[env.application]
            except (ValueError, KeyError) as exc:
                outcomes[place] = PoisonMessageError(str(exc))
                continue
            if env.stored_event.topic in projection.topics:  # its subject may carry more (event_log: events.>)
                try:
                    event = app.mapper.to_domain_event(env.stored_event)
                except Exception as exc:  # noqa: BLE001 - settled per message by the consumer
                    outcomes[place] = exc
                    continue
                batches.setdefault(env.application, []).append((place, (env.notification_id, event)))
        with pool.connection() as conn:
            for application, placed in batches.items():
                found = apply_batch(conn, projection, application, [item for _, item in placed])
                for (place, _), outcome in zip(placed, found, strict=True):
                    outcomes[place] = outcome
        return outcomes

    add_consumer(broker, pool, durable=durable_name(projection), subject=projection.subject,
                 handle=handle, max_deliver=max_deliver, ack_wait_s=PROJECTION_ACK_WAIT_S)


def apply_batch(conn: psycopg.Connection, projection: Projection, application: str,
                items: Sequence[Item]) -> list[Exception | None]:
    """One transaction for the batch; if it fails, each event on its own, so that only the
    failing ones are retried."""
    try:
        return [outcome if isinstance(outcome, Exception) else None
                for outcome in process_batch(conn, projection, application, items)]
    except Exception:  # noqa: BLE001 - narrowed down below, event by event
        outcomes: list[Exception | None] = []
        for notification_id, event in items:
            try:
                process(conn, projection, application, notification_id, event)
                outcomes.append(None)
            except Exception as exc:  # noqa: BLE001 - settled per message by the consumer
                outcomes.append(exc)
        return outcomes


def add_live(broker: NatsBroker, pool: ConnectionPool, name: str, applications: dict[str, Application],
             max_deliver: int, may_act: Callable[[], bool] = lambda: True) -> None:
    """The metric history's consumer is shared by every instance (its merge does not depend on
    order); an event-store read model's runs where its leader is (`may_act`)."""
    if name == metrics.NAME:
        metrics.add_live_metrics(broker, pool, max_deliver)
    else:
        add_live_projection(broker, pool, PROJECTIONS[name], applications, max_deliver, may_act)


def rebuild_named(conn: psycopg.Connection, name: str, applications: dict[str, Application], nats_url: str,
                  progress: Callable[[int], None] | None = None) -> int:
    """Rebuilds one read model from its source: the event store, or the TELEMETRY stream."""
    if name == metrics.NAME:
        return asyncio.run(metrics.rebuild(conn, nats_url, progress))
    return rebuild(conn, PROJECTIONS[name], applications, progress)
