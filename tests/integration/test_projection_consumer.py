"""The read models' consumers (infra/consumers.py) on a real nats-server: a batch handled for
longer than the consumer's ack_wait is not delivered again meanwhile, even with a second worker
pulling from the same durable, thanks to in-progress acks; without them it would be. (A lone
worker would not see it either way: JetStream redelivers on a pull, and a worker does not pull
while it handles a batch.)"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter

import pytest
from faststream.nats import NatsBroker

from infra import bus, consumers
from tests.live_stack import declare

ACK_WAIT_S = 1.0
HANDLING_S = 3 * ACK_WAIT_S


def slow_first_batch(messages: int, without_in_progress_acks: bool, nats_url: str,
                     monkeypatch: pytest.MonkeyPatch) -> tuple[Counter, int]:
    """Two workers on one durable handle `messages` events, the first batch taking HANDLING_S;
    returns how often each event was handled and how many deliveries JetStream made again."""
    if without_in_progress_acks:
        monkeypatch.setattr(consumers, "still_working", lambda messages, every_s: contextlib.nullcontext())
    seen: Counter = Counter()
    first, slow_done, lock = threading.Event(), threading.Event(), threading.Lock()

    def handle(bodies):
        slow = not first.is_set()
        first.set()
        if slow:
            time.sleep(HANDLING_S)
        with lock:
            seen.update(bodies)
        if slow:
            slow_done.set()
        return [None] * len(bodies)

    async def run() -> int:
        brokers = [NatsBroker(nats_url), NatsBroker(nats_url)]
        for broker in brokers:
            consumers.add_consumer(broker, None, durable="projection-slow", subject="events.Slow.>", handle=handle,
                                   max_deliver=5, ack_wait_s=ACK_WAIT_S)
        nc = await bus.connect(nats_url, "test-publisher")
        try:
            for broker in brokers:
                await broker.start()
            js = nc.jetstream()
            for i in range(messages):
                await js.publish(f"events.Slow.{i}", str(i).encode(), headers={"Nats-Msg-Id": f"slow-{i}"})
            deadline = time.monotonic() + 30
            while (len(seen) < messages or not slow_done.is_set()) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(2 * ACK_WAIT_S)  # time for a late redelivery to show
            info = await js.consumer_info(bus.EVENTS_STREAM, "projection-slow")
            assert info.num_ack_pending == 0
            return info.delivered.consumer_seq - info.delivered.stream_seq  # every delivery counts
        finally:
            for broker in brokers:
                await broker.stop()
            await nc.close()

    return seen, asyncio.run(run())


def test_a_batch_handled_for_longer_than_ack_wait_is_not_delivered_again(nats_server, monkeypatch) -> None:
    declare(nats_server.url)
    seen, redelivered = slow_first_batch(20, False, nats_server.url, monkeypatch)
    assert seen == Counter(str(i).encode() for i in range(20))
    assert redelivered == 0


def test_without_in_progress_acks_the_slow_batch_would_come_again(nats_server, monkeypatch) -> None:
    declare(nats_server.url)
    seen, redelivered = slow_first_batch(20, True, nats_server.url, monkeypatch)
    assert redelivered > 0 and max(seen.values()) > 1
