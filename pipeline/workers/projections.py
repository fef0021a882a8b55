"""`pipeline projections run`: the read models' live consumers. Each event-store read model is
led by one instance (its events applied in order by one consumer), the instances sharing them out
(infra/leadership.py); the metric history's consumer runs in every instance, which share its
messages (its merge does not depend on their order)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from faststream.nats import NatsBroker
from psycopg_pool import ConnectionPool

from infra import bus
from infra.eventstore import EventStore
from infra.settings import Settings
from pipeline.workers.common import (
    close_all,
    connected,
    exit_code,
    halted,
    quiet_broker,
    stop_on_signals,
    worker_leases,
)
from projections import metrics
from projections.runner import NAMES, add_live

log = logging.getLogger(__name__)


async def run_projections(settings: Settings, database_url: str, nats_url: str,
                          names: list[str] | None = None) -> int:
    stop = stop_on_signals()
    wanted = list(names or NAMES)
    store = EventStore.open(database_url, pool_size=2)
    applications = {app.name: app for app in store.applications()}
    pool = ConnectionPool(database_url, min_size=1, max_size=4, open=True)
    brokers: list[NatsBroker] = []
    led = tuple(name for name in wanted if name != metrics.NAME)
    leases = worker_leases(settings, database_url, "projections", led,
                           nats_ok=lambda: all(connected(b) for b in brokers))
    beating = asyncio.create_task(leases.run(stop))
    halt = halted(stop, leases)
    max_deliver = settings.runtime.consumer_max_deliver

    async def start(names: list[str]) -> None:
        broker = quiet_broker(settings, nats_url)
        for name in names:
            add_live(broker, pool, name, applications, max_deliver, may_act=lambda name=name: leases.valid(name))
        bus.probe(nats_url, settings.runtime.connect_timeout_s)
        await broker.start()
        brokers.append(broker)
        log.info("projections: consuming %s", ", ".join(names))

    try:
        # One broker (one connection) for the metric history and what this instance leads from its start.
        running = await leases.wait_for_any(halt, led, timeout=leases.lease_s + 2) if led else set()
        first = sorted(running) + ([metrics.NAME] if metrics.NAME in wanted else [])
        if first:
            await start(first)
        while not halt.is_set() and running != set(led):
            taken = await leases.wait_for_any(halt, set(led) - running)
            if taken:
                await start(sorted(taken))
                running |= taken
        await halt.wait()
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        await close_all("projections", *(("a broker", broker.stop) for broker in brokers), ("the pool", pool.close),
                        ("the lease", leases.close), ("the event store", store.close))
    return exit_code(leases)
