"""SIGTERM (spot preemption: ~5 s before SIGKILL) handled in a watcher thread.

A Python signal handler runs only between bytecodes of the main thread, which can be 8-10 s late
during a long backward pass. So SIGTERM is blocked in every thread (before torch starts its
threads) and a watcher thread takes it with `sigwait`: it asks the training loop to checkpoint and
stop at the next step boundary, and if that does not finish within the grace period it reports
the interruption itself and exits at once."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable


class SigtermWatcher:
    def __init__(self, grace_s: float = 4.0) -> None:
        self.grace_s = grace_s
        self.requested = threading.Event()
        self.finished = threading.Event()
        self.on_timeout: Callable[[], None] = lambda: None

    def install(self) -> SigtermWatcher:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        threading.Thread(target=self._watch, name="sigterm-watcher", daemon=True).start()
        return self

    def _watch(self) -> None:
        signal.sigwait({signal.SIGTERM})
        self.requested.set()
        if not self.finished.wait(self.grace_s):
            self.on_timeout()
            os._exit(143)
