"""Progress for long CLI work: a live line on a terminal, silence when output is piped."""

from __future__ import annotations

import sys
import time
from types import TracebackType


class Progress:
    def __init__(self, label: str, stream=sys.stderr, unit: str = "events") -> None:
        self.label, self.unit = label, unit
        self.stream = stream
        self.enabled = stream.isatty()
        self.started = time.monotonic()
        self.last_draw = 0.0

    def __enter__(self) -> Progress:
        return self

    def update(self, done: int) -> None:
        now = time.monotonic()
        if self.enabled and now - self.last_draw >= 0.2:
            rate = done / max(now - self.started, 1e-9)
            self.stream.write(f"\r{self.label}: {done:,} {self.unit} ({rate:,.0f}/s)")
            self.stream.flush()
            self.last_draw = now

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()
