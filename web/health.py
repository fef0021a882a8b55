"""What /health reports: database, NATS, and how far each worker lags behind the event store."""

from __future__ import annotations

from typing import Any

from nats.aio.client import Client
from nats.js.errors import NotFoundError
from psycopg import AsyncConnection, sql

from infra.bus import EVENTS_STREAM, TELEMETRY_STREAM
from infra.eventstore import APPLICATION_CLASSES
from infra.telemetry import PARTITION_DOMAINS
from projections import metrics
from projections.runner import PROJECTIONS, durable_name


async def collect(conn: AsyncConnection, nc: Client) -> dict[str, Any]:
    report: dict[str, Any] = {"status": "ok", "database": "ok", "nats": "ok", "workers": {}}
    heads = {}
    for cls in APPLICATION_CLASSES:
        table = sql.Identifier(f"{cls.name}_events")
        cur = await conn.execute(sql.SQL("SELECT COALESCE(MAX(notification_id), 0) FROM {}").format(table))
        heads[cls.name] = (await cur.fetchone())[0]
    cur = await conn.execute("SELECT application, notification_id FROM relay_positions")
    relayed = dict(await cur.fetchall())
    report["workers"]["relay"] = {
        "lag_events": {name: head - relayed.get(name, 0) for name, head in heads.items()}}
    cur = await conn.execute("SELECT projection, application, notification_id FROM projection_positions")
    applied: dict[tuple[str, str], int] = {(p, a): n for p, a, n in await cur.fetchall()}
    for projection in PROJECTIONS.values():
        lag = {a: await _unapplied(conn, a, applied.get((projection.name, a), 0), projection.topics)
               for a in projection.applications}
        durable = durable_name(projection)
        report["workers"][durable] = {"lag_events": lag, **await _consumer(nc, durable)}
    # The metric history keeps no position of its own: its consumer's pending count is its lag.
    report["workers"][metrics.DURABLE] = await _consumer(nc, metrics.DURABLE, TELEMETRY_STREAM)
    report["instances"], report["leaders"] = await _instances(conn)
    if not nc.is_connected:
        report["nats"] = "disconnected"
        report["status"] = "degraded"
    return report


async def _unapplied(conn: AsyncConnection, application: str, position: int, topics: tuple[str, ...]) -> int:
    """Stored events of the projection's topics past its position."""
    query = sql.SQL("SELECT count(*) FROM {} WHERE notification_id > %s AND topic = ANY(%s)").format(
        sql.Identifier(f"{application}_events"))
    cur = await conn.execute(query, (position, list(topics)))
    return (await cur.fetchone())[0]


async def _consumer(nc: Client, durable: str, stream: str = EVENTS_STREAM) -> dict[str, Any]:
    if not nc.is_connected:
        return {"consumer": "unknown"}
    try:
        info = await nc.jetstream().consumer_info(stream, durable)
    except NotFoundError:
        return {"consumer": "not started"}
    return {"consumer": "ok", "pending": info.num_pending, "unacknowledged": info.num_ack_pending,
            "redelivered": info.num_redelivered}


# The decision domains of a whole deployment (infra/leadership.py): one leader each.
DOMAINS = ("relay", *PROJECTIONS, "provisioning", *PARTITION_DOMAINS, "notifications-clock")
ALIVE_S = 15.0  # a row not refreshed for this long is an instance gone (heartbeats every ≤ 0.5 s)


async def _instances(conn: AsyncConnection) -> tuple[list[dict[str, Any]], dict[str, str | None]]:
    """Every running instance of every worker (kind, host, pid, what it leads, when last seen) and,
    per decision domain, the instance that leads it (None: no leader now, e.g. during a take-over)."""
    cur = await conn.execute(
        "SELECT instance, kind, host, pid, leads, nats_ok, extract(epoch FROM now() - seen_at)::float8,"
        " extract(epoch FROM now() - started_at)::float8 FROM worker_instances"
        " WHERE seen_at > now() - make_interval(secs => %s) ORDER BY kind, instance", (ALIVE_S,))
    instances = [{"instance": name, "kind": kind, "host": host, "pid": pid, "leads": list(leads), "nats": nats_ok,
                  "seen_s_ago": round(seen, 1), "up_s": round(up, 1)}
                 for name, kind, host, pid, leads, nats_ok, seen, up in await cur.fetchall()]
    leaders: dict[str, str | None] = dict.fromkeys(DOMAINS)
    for instance in instances:
        for domain in instance["leads"]:
            leaders[domain] = instance["instance"]
    return instances, leaders
