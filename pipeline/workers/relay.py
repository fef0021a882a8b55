"""`pipeline relay`: the event store → JetStream relay; one instance leads (infra/leadership.py),
the others stand by."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg

from infra import bus, db
from infra.eventstore import EventStore
from infra.leadership import LOST_EXIT_CODE
from infra.relay import RELAY, Relay
from infra.settings import Settings
from pipeline.workers.common import close_all, exit_code, halted, stop_on_signals, worker_leases

log = logging.getLogger(__name__)


async def run_relay(settings: Settings, database_url: str, nats_url: str) -> int:
    stop = stop_on_signals()
    store = EventStore.open(database_url, pool_size=2)
    nc = await bus.connect(nats_url, "relay", settings.runtime.connect_timeout_s)
    leases = worker_leases(settings, database_url, "relay", (RELAY,), nats_ok=lambda: nc.is_connected)
    beating = asyncio.create_task(leases.run(stop))
    conn: psycopg.Connection | None = None
    code = 0
    try:
        if await leases.wait_for_any(stop, [RELAY]):
            log.info("relay: leader, publishing from the event store")
            try:  # its position, read on a connection of its own opened now (the server may have restarted)
                conn = psycopg.connect(database_url, autocommit=True)
                relay = Relay(conn, nc.jetstream(publish_async_max_pending=4000), store.applications(),
                              settings.runtime.relay_batch, settings.faults.control_plane,
                              may_act=lambda: leases.valid(RELAY))
                await relay.run(halted(stop, leases), settings.runtime.relay_idle_poll_s)
            except db.UNAVAILABLE as exc:  # its lease session went with the server: a standby (or it, restarted) leads
                log.error("relay: PostgreSQL unavailable (%s); stopping so that the next leader resumes",
                          str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
                code = LOST_EXIT_CODE
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        await close_all("relay", ("NATS", nc.close), ("the lease", leases.close),
                        ("the position connection", conn.close if conn is not None else lambda: None),
                        ("the event store", store.close))
    return code or exit_code(leases)
