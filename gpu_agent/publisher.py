"""Telemetry publisher: an in-order spool re-sent until JetStream acknowledges every message.

The wire form is `infra.telemetry.Telemetry`. The training thread calls `emit()` (cheap, never
blocks on the network). A background thread runs
an asyncio loop that publishes the spool in windows with `publish_async` and stable `Nats-Msg-Id`s;
a window that is not fully acknowledged (outage, timeout) is re-sent whole, and JetStream drops the
copies it already has. Nothing is lost while the process lives; nothing is counted twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import datetime, timezone
from typing import Any, TypeVar

from nats.aio.client import Client

from gpu_agent.config import AgentConfig
from infra import bus
from infra.telemetry import subject

log = logging.getLogger(__name__)
T = TypeVar("T")
WINDOW = 256
BATCH_WAIT_S = 0.1


class Publisher:
    def __init__(self, config: AgentConfig, ack_timeout_s: float = 5.0) -> None:
        self.config = config
        self.ack_timeout_s = ack_timeout_s
        self.pending: deque[tuple[int, str, str, dict[str, Any]]] = deque()
        self.seq = 0
        self.acked = 0
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.wakeup = asyncio.Event()
        self.nc: Client | None = None
        self.stopping = False
        self.drain: Any = None
        self.thread = threading.Thread(target=self.loop.run_forever, name="telemetry", daemon=True)

    def start(self, connect_timeout_s: float = 10.0) -> None:
        self.thread.start()
        self.nc = self.call(bus.connect(self.config.nats_url, f"agent-{self.config.job_id}", connect_timeout_s,
                                        reconnect_time_wait=0.5, **self.config.nats_options),
                            connect_timeout_s + 5)
        self.drain = asyncio.run_coroutine_threadsafe(self._drain_forever(), self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Runs a coroutine on the publisher's loop (object-store transfers use its connection)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call_retrying(self, make: Callable[[], Coroutine[Any, Any, T]], what: str,
                      give_up_after_s: float = 600.0) -> T:
        """`call()`, retried with backoff while NATS is unreachable (an object-store transfer
        during an outage waits for the server to come back instead of failing the job)."""
        deadline, delay = time.monotonic() + give_up_after_s, 0.2
        while True:
            try:
                return self.call(make(), timeout=max(30.0, give_up_after_s))
            except Exception as exc:  # noqa: BLE001 - retried until the deadline, then raised
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("%s failed (%s); retrying in %.1fs", what, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def emit(self, kind: str, data: dict[str, Any]) -> int:
        """Queues a message; returns its sequence number. Step messages are sent in batches (the
        sender wakes every `BATCH_WAIT_S` or when a window is full) to stay off the training
        thread's back; other kinds wake it at once."""
        with self.lock:
            self.seq += 1
            self.pending.append((self.seq, kind, datetime.now(timezone.utc).isoformat(), data))
            urgent = kind not in ("step", "heartbeat") or len(self.pending) >= WINDOW
        if urgent:
            self.loop.call_soon_threadsafe(self.wakeup.set)
        return self.seq

    def flush(self, timeout: float) -> bool:
        """Waits until JetStream acknowledged everything emitted so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not self.pending:
                    return True
            time.sleep(0.01)
        return False

    def close(self, timeout: float = 5.0) -> None:
        self.stopping = True
        if self.drain is not None:
            self.drain.cancel()
        if self.nc is not None:
            try:
                self.call(self.nc.close(), timeout)
            except Exception:  # noqa: BLE001 - closing on the way out: nothing left to do
                pass
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout)

    async def _drain_forever(self) -> None:
        js = self.nc.jetstream(publish_async_max_pending=WINDOW * 2)
        backoff = 0.1
        while not self.stopping:
            with self.lock:
                window = [self.pending[i] for i in range(min(WINDOW, len(self.pending)))]
            if not window:
                self.wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), BATCH_WAIT_S)
                continue
            try:
                await self._publish(js, window)
            except Exception as exc:  # noqa: BLE001 - any failure: the same window again, later
                log.warning("telemetry: %d message(s) not acknowledged (%s); re-sending", len(window), exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.1
            with self.lock:
                for _ in window:
                    self.pending.popleft()
                self.acked += len(window)

    async def _publish(self, js, window: list[tuple[int, str, str, dict[str, Any]]]) -> None:
        job, attempt = self.config.job_id, self.config.attempt
        futures = []
        for seq, kind, at, data in window:
            body = json.dumps({"job_id": job, "attempt": attempt, "seq": seq, "kind": kind, "at": at, "data": data})
            msg_id = f"{job}:{attempt}:{self.config.pod_nonce}:{seq}"
            futures.append(await js.publish_async(subject(job, kind), body.encode(), headers={"Nats-Msg-Id": msg_id}))
        await asyncio.wait_for(asyncio.gather(*futures), self.ack_timeout_s)
