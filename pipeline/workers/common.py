"""What every worker process shares: stopping on SIGTERM/SIGINT, one quiet FastStream broker, and a
shutdown whose every step runs."""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import Callable

from faststream.nats import NatsBroker

from infra import bus
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
    return NatsBroker(nats_url, log_level=logging.DEBUG, connect_timeout=int(settings.runtime.connect_timeout_s),
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
