"""Runs projections: live from JetStream (durable consumers) or rebuilt from the event store."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import psycopg
from eventsourcing.application import Application
from faststream.nats import NatsBroker
from psycopg import sql
from psycopg_pool import ConnectionPool

from pipeline import envelope
from pipeline.consumers import PoisonMessageError, add_consumer
from projections.base import Projection, process
from projections.catalog import CatalogProjection
from projections.jobs import JobsProjection

PROJECTIONS: dict[str, Projection] = {p.name: p for p in (JobsProjection(), CatalogProjection())}


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
