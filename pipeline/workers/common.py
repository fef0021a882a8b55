"""What every worker process shares: stopping on SIGTERM/SIGINT, one quiet FastStream broker, and a
shutdown whose every step runs."""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import Awaitable, Callable

from faststream.nats import NatsBroker
from faststream.nats.security import NatsUserPassword

from infra import bus, db
from infra.leadership import LOST_EXIT_CODE, Leases, instance_name
from infra.settings import Settings

# FastStream logs each task restart and each message at INFO (~30 % of its throughput); we keep
# its warnings and errors.
FASTSTREAM_LOG = logging.getLogger("pipeline.faststream")
FASTSTREAM_LOG.setLevel(logging.WARNING)
# Its connection lines ("Connection broken with …" and its exception, at every reconnect attempt)
# are said once, with a summary at the reconnect, by our own callbacks (infra/bus.py).
FASTSTREAM_LOG.addFilter(lambda record: not str(record.msg).startswith(("Connection broken", "Connection established")))
log = logging.getLogger(__name__)


def stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def quiet_broker(settings: Settings, nats_url: str) -> NatsBroker:
    callbacks = bus.connection_callbacks("broker")
    # The user and password as options, not only in the URLs: a cluster's servers the client learns of
    # get them too (infra/bus.py, `credentials`).
    login = bus.credentials(nats_url)
    security = NatsUserPassword(login["user"], login["password"]) if login else None
    return NatsBroker(bus.servers(bus.shown(nats_url)), security=security, log_level=logging.DEBUG,
                      connect_timeout=int(settings.runtime.connect_timeout_s),
                      max_reconnect_attempts=-1, logger=FASTSTREAM_LOG, error_cb=callbacks.error_cb,
                      reconnected_cb=callbacks.reconnected_cb)


async def close_all(worker: str, *steps: tuple[str, Callable[[], object]]) -> None:
    """A worker's shutdown: every step runs whatever failed before (NATS or PostgreSQL may be
    down), and a failure is one line, never a traceback."""
    for name, close in steps:
        try:
            result = close()
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # noqa: BLE001 - the next steps must run all the same
            log.warning("%s: closing %s failed: %s", worker, name, exc or type(exc).__name__)


def worker_leases(settings: Settings, database_url: str, kind: str, domains: tuple[str, ...] = (),
                  nats_ok: Callable[[], bool] = lambda: True) -> Leases:
    """This process's lease session (infra/leadership.py): its row in worker_instances and the
    domains it may lead."""
    return Leases(database_url, kind, instance_name(settings.runtime.instance), domains, settings.runtime.lease_s,
                  nats_ok)


def halted(stop: asyncio.Event, leases: Leases) -> asyncio.Event:
    """Set once the worker is asked to stop or its lease is lost (then it stops too)."""
    either = asyncio.Event()

    async def watch() -> None:
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(leases.lost.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        either.set()

    either.watcher = asyncio.ensure_future(watch())  # type: ignore[attr-defined] - kept alive with the event
    return either


def exit_code(leases: Leases) -> int:
    """0 when asked to stop; LOST_EXIT_CODE when the lease was lost (the supervisor starts it again)."""
    return LOST_EXIT_CODE if leases.is_lost else 0


def connected(broker: NatsBroker) -> bool:
    try:
        connection = broker.config.connection_state.connection
    except Exception:  # noqa: BLE001 - FastStream raises IncorrectState before the broker connected
        return False
    return bool(connection is not None and connection.is_connected)


async def until_database_answers(worker: str, step: Callable[[], Awaitable[object]], halt: asyncio.Event,
                                 tries: int = 20) -> None:
    """A leader's first step, tried again while PostgreSQL is away (a pool's connections die with a
    server restart; the pool replaces them): the take-over after a restart is one line, not a crash."""
    for attempt in range(1, tries + 1):
        try:
            await step()
            return
        except db.UNAVAILABLE as exc:
            if attempt == tries or halt.is_set():
                raise
            if attempt == 1:
                log.warning("%s: PostgreSQL unavailable, trying again: %s", worker, str(exc).strip().splitlines()[0]
                            if str(exc).strip() else type(exc).__name__)
            await asyncio.sleep(0.5)
