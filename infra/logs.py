"""Logs that stay readable through an outage: a filter that lets the same message through once per
interval (then says how many it held back), and `Outage`, one line when a dependency goes away and
one summary when it is back ("NATS reconnected after 12.3 s; 41 retries")."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

DIGITS = re.compile(r"\d+")
MAX_KINDS = 1000  # message kinds remembered; beyond, the oldest windows are forgotten


class RateLimit(logging.Filter):
    """Lets a record through when no record of the same kind (logger, level, and message with its
    numbers blanked, so "delivery 3 …" and "delivery 4 …" are one kind while two jobs' ids are not)
    passed in the last `every_s` seconds; the next one through says how many were held back."""

    def __init__(self, every_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every_s, self.clock = every_s, clock
        self.windows: dict[tuple[str, int, str], tuple[float, int]] = {}  # kind → (passed at, held back)
        self.lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, record.levelno, DIGITS.sub("#", record.getMessage()))
        now = self.clock()
        with self.lock:
            passed_at, held = self.windows.get(kind, (now, 0))
            if kind in self.windows and now - passed_at < self.every_s:
                self.windows[kind] = (passed_at, held + 1)
                return False
            self.windows.pop(kind, None)
            if len(self.windows) >= MAX_KINDS:
                del self.windows[next(iter(self.windows))]
            self.windows[kind] = (now, 0)
        if held:
            record.msg, record.args = f"{record.getMessage()} ({held} more like this in {now - passed_at:.0f} s)", None
        return True


class Outage:
    """A dependency of one worker (its NATS connection, PostgreSQL for one step of its loop): the
    first failure is one line, the next ones are counted, and the recovery is one summary."""

    def __init__(self, logger: logging.Logger, lost: str, back: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger, self.lost, self.back, self.clock = logger, lost, back, clock
        self.since: float | None = None
        self.retries = 0

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def failed(self, reason: object) -> None:
        if self.since is None:
            self.since, self.retries = self.clock(), 0
            self.logger.warning("%s: %s", self.lost, reason)
        else:
            self.retries += 1

    def recovered(self) -> None:
        if self.since is None:
            return
        self.logger.warning("%s after %.1f s; %d retries", self.back, self.clock() - self.since, self.retries)
        self.since = None


def quiet_repeats(every_s: float = 30.0) -> None:
    """Every handler of the root logger lets the same message through once per `every_s` (the
    command line's setup: one place for every worker)."""
    limit = RateLimit(every_s)
    for handler in logging.getLogger().handlers:
        handler.addFilter(limit)
