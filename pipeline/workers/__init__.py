"""The long-running workers, one process each (`pipeline relay|projections run|handlers run|
notifications run`, or all of them under `pipeline up`): each builds its adapters from settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pipeline.workers.handlers import run_handlers
from pipeline.workers.notifications import run_notifications
from pipeline.workers.projections import run_projections
from pipeline.workers.relay import run_relay

Worker = Callable[..., Awaitable[int | None]]  # the exit status (None: 0)

WORKERS: dict[str, Worker] = {
    "relay": run_relay,
    "projections": run_projections,
    "handlers": run_handlers,
    "notifications": run_notifications,
}

__all__ = ["WORKERS", "Worker"]
