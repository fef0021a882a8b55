"""Bounded waits and small process helpers for tests (no bare sleeps)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 20.0, interval: float = 0.05,
             message: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")


async def async_wait_for(predicate: Callable[[], Awaitable[T]], timeout: float = 20.0,
                         interval: float = 0.05, message: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")


def pipeline_process(args: list[str], env: dict[str, str], log_path: Path | None = None):
    """Starts `python -m pipeline ARGS` as a child in its own session (so signals reach only it)."""
    import os
    import subprocess
    import sys

    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args], env=os.environ | env,
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop_process(process, timeout: float = 20.0) -> int:
    import signal
    import subprocess

    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
