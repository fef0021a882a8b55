"""What every worker process shares: stopping on SIGTERM/SIGINT and one quiet FastStream broker."""

from __future__ import annotations

import asyncio
import logging
import signal

from faststream.nats import NatsBroker

from infra.settings import Settings

# FastStream logs each task restart and each message at INFO (~30 % of its throughput); we keep
# its warnings and errors.
FASTSTREAM_LOG = logging.getLogger("pipeline.faststream")
FASTSTREAM_LOG.setLevel(logging.WARNING)


def stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def quiet_broker(settings: Settings, nats_url: str) -> NatsBroker:
    return NatsBroker(nats_url, log_level=logging.DEBUG, connect_timeout=int(settings.runtime.connect_timeout_s),
                      max_reconnect_attempts=-1, logger=FASTSTREAM_LOG)
