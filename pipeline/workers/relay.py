"""`pipeline relay`: the event store → JetStream relay, one leader per deployment."""

from __future__ import annotations

import logging

import psycopg

from infra import bus
from infra.eventstore import EventStore
from infra.relay import RELAY_LOCK_KEY, Relay, acquire_leadership
from infra.settings import Settings
from pipeline.workers.common import close_all, stop_on_signals

log = logging.getLogger(__name__)


async def run_relay(settings: Settings, database_url: str, nats_url: str) -> None:
    stop = stop_on_signals()
    store = EventStore.open(database_url, pool_size=2)
    conn = psycopg.connect(database_url, autocommit=True)
    nc = await bus.connect(nats_url, "relay", settings.runtime.connect_timeout_s)
    try:
        if await acquire_leadership(conn, stop, RELAY_LOCK_KEY):
            log.info("relay: leader, publishing from the event store")
            relay = Relay(conn, nc.jetstream(publish_async_max_pending=4000), store.applications(),
                          settings.runtime.relay_batch, settings.faults.control_plane)
            await relay.run(stop, settings.runtime.relay_idle_poll_s)
    finally:
        await close_all("relay", ("NATS", nc.close), ("the position connection", conn.close),
                        ("the event store", store.close))
