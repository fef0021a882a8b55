"""`pipeline relay`: the event store → JetStream relay; one instance leads (infra/leadership.py),
the others stand by. A PostgreSQL restart is ridden out: the leader takes its lease back, opens its
position connection again and publishes from the recorded position (JetStream drops what it
published twice)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from nats.aio.client import Client

from infra import bus, db
from infra.eventstore import EventStore
from infra.leadership import Leases
from infra.logs import Outage
from infra.relay import RELAY, Relay
from infra.settings import Settings
from pipeline.workers.common import close_all, exit_code, halted, stop_on_signals, worker_leases

log = logging.getLogger(__name__)

RETRY_S = 0.5  # after PostgreSQL went away under the leader


async def run_relay(settings: Settings, database_url: str, nats_url: str) -> int:
    stop = stop_on_signals()
    store = EventStore.open(database_url, pool_size=2)
    nc = await bus.connect(nats_url, "relay", settings.runtime.connect_timeout_s)
    leases = worker_leases(settings, database_url, "relay", (RELAY,), nats_ok=lambda: nc.is_connected)
    beating = asyncio.create_task(leases.run(stop))
    halt = halted(stop, leases)
    outage = Outage(log, lost="relay: PostgreSQL unavailable; publishing again from the recorded position once it is"
                    " back", back="relay: publishing again")
    try:
        while not halt.is_set() and await leases.wait_for_any(halt, [RELAY]):
            await publish(settings, database_url, store, nc, leases, halt, outage)
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        await close_all("relay", ("NATS", nc.close), ("the lease", leases.close), ("the event store", store.close))
    return exit_code(leases)


async def publish(settings: Settings, database_url: str, store: EventStore, nc: Client, leases: Leases,
                  halt: asyncio.Event, outage: Outage) -> None:
    """As leader, until `halt` or PostgreSQL goes away: its position read on a connection of its own
    opened now (the server may have restarted)."""
    if not outage.ongoing:
        log.info("relay: leader, publishing from the event store")
    conn: psycopg.Connection | None = None
    try:
        conn = await asyncio.to_thread(psycopg.connect, database_url, autocommit=True,
                                       connect_timeout=int(settings.runtime.connect_timeout_s))
        relay = await asyncio.to_thread(Relay, conn, nc.jetstream(publish_async_max_pending=4000), store.applications(),
                                        settings.runtime.relay_batch, settings.faults.control_plane,
                                        lambda: leases.valid(RELAY))
        outage.recovered()
        await relay.run(halt, settings.runtime.relay_idle_poll_s)
    except db.UNAVAILABLE as exc:
        outage.failed(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(halt.wait(), RETRY_S)
    finally:
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
