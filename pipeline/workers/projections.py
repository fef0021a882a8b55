"""`pipeline projections run`: the read models' live consumers, one leader per deployment."""

from __future__ import annotations

import logging

import psycopg
from psycopg_pool import ConnectionPool

from infra import bus
from infra.eventstore import EventStore
from infra.relay import acquire_leadership
from infra.settings import Settings
from pipeline.workers.common import close_all, quiet_broker, stop_on_signals
from projections.runner import NAMES, add_live

log = logging.getLogger(__name__)

PROJECTIONS_LOCK_KEY = 7_305_101_903


async def run_projections(settings: Settings, database_url: str, nats_url: str,
                          names: list[str] | None = None) -> None:
    stop = stop_on_signals()
    store = EventStore.open(database_url, pool_size=2)
    applications = {app.name: app for app in store.applications()}
    pool = ConnectionPool(database_url, min_size=1, max_size=4, open=True)
    lock_conn = psycopg.connect(database_url, autocommit=True)
    broker = quiet_broker(settings, nats_url)
    for name in names or NAMES:
        add_live(broker, pool, name, applications, settings.runtime.consumer_max_deliver)
    try:
        if await acquire_leadership(lock_conn, stop, PROJECTIONS_LOCK_KEY):
            bus.probe(nats_url, settings.runtime.connect_timeout_s)
            await broker.start()
            log.info("projections: consuming %s", ", ".join(names or NAMES))
            await stop.wait()
    finally:
        await close_all("projections", ("the broker", broker.stop), ("the pool", pool.close),
                        ("the lock connection", lock_conn.close), ("the event store", store.close))
