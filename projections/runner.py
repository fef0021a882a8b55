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

from pipeline import envelope
from pipeline.consumers import PoisonMessageError, add_consumer
from projections import metrics
from projections.base import Projection, process
from projections.budgets import BudgetsProjection
from projections.catalog import CatalogProjection
from projections.event_log import EventLogProjection
from projections.job_costs import JobCostsProjection
from projections.jobs import JobsProjection

# Read models of the event store.
PROJECTIONS: dict[str, Projection] = {
    p.name: p for p in (JobsProjection(), CatalogProjection(), EventLogProjection(), BudgetsProjection(),
                        JobCostsProjection())}
# Every read model `projections run` and `projections rebuild` know: those and the metric history,
# a read model of the TELEMETRY stream (projections/metrics.py).
NAMES: tuple[str, ...] = (*PROJECTIONS, metrics.NAME)


def durable_name(projection: Projection) -> str:
    return f"projection-{projection.name}"


def rebuild(conn: psycopg.Connection, projection: Projection, applications: dict[str, Application],
            progress: Callable[[int], None] | None = None) -> int:
    """Empties the projection's tables and replays the event store through the same `process`
    the live consumer uses, in one transaction: readers see the old or the new table, never half."""
    count = 0
    with conn.transaction():
        for table in projection.tables:
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))
        conn.execute("DELETE FROM projection_positions WHERE projection = %s", (projection.name,))
        for name in projection.applications:
            app = applications[name]
            start = 1
            while batch := app.recorder.select_notifications(start, 1000, topics=projection.topics):
                for notification in batch:
                    process(conn, projection, name, notification.id, app.mapper.to_domain_event(notification))
                count += len(batch)
                start = batch[-1].id + 1
                if progress:
                    progress(count)
    return count


def add_live_projection(broker: NatsBroker, pool: ConnectionPool, projection: Projection,
                        applications: dict[str, Application], max_deliver: int) -> None:
    def apply(conn: psycopg.Connection, body: bytes) -> None:
        try:
            env = envelope.decode(body)
            app = applications[env.application]
        except (ValueError, KeyError) as exc:
            raise PoisonMessageError(str(exc)) from None
        if env.stored_event.topic in projection.topics:  # its subject may carry more (event_log: events.>)
            event = app.mapper.to_domain_event(env.stored_event)
            process(conn, projection, env.application, env.notification_id, event)

    def handle(bodies: Sequence[bytes]) -> list[Exception | None]:
        outcomes: list[Exception | None] = []
        with pool.connection() as conn:
            for body in bodies:
                try:
                    apply(conn, body)
                    outcomes.append(None)
                except Exception as exc:  # noqa: BLE001 - settled per message by the consumer
                    outcomes.append(exc)
        return outcomes

    add_consumer(broker, pool, durable=durable_name(projection), subject=projection.subject,
                 handle=handle, max_deliver=max_deliver)


def add_live(broker: NatsBroker, pool: ConnectionPool, name: str, applications: dict[str, Application],
             max_deliver: int) -> None:
    if name == metrics.NAME:
        metrics.add_live_metrics(broker, pool, max_deliver)
    else:
        add_live_projection(broker, pool, PROJECTIONS[name], applications, max_deliver)


def rebuild_named(conn: psycopg.Connection, name: str, applications: dict[str, Application], nats_url: str,
                  progress: Callable[[int], None] | None = None) -> int:
    """Rebuilds one read model from its source: the event store, or the TELEMETRY stream."""
    if name == metrics.NAME:
        return asyncio.run(metrics.rebuild(conn, nats_url, progress))
    return rebuild(conn, PROJECTIONS[name], applications, progress)
