"""Durable JetStream consumers through FastStream, with explicit acks and a dead-letter path.

Two FastStream defaults are traps here (docs/architecture.md): the default ack policy
(REJECT_ON_ERROR) terminates a failed message forever, and a non-batch pull subscriber handles
the messages of one fetch concurrently, out of order. So we pull in batch mode, handle each batch
in stream order, and ack, nack (with backoff) or dead-letter every message ourselves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, cast

from faststream import AckPolicy
from faststream.nats import ConsumerConfig, JStream, NatsBroker, PullSub
from faststream.nats.annotations import NatsMessage
from faststream.nats.subscriber.usecases import stream_pull_subscriber as _pull_subscriber
from nats.aio.msg import Msg
from psycopg_pool import ConnectionPool

from infra import db
from infra.bus import EVENTS_STREAM
from infra.leadership import NotLeaderError
from infra.logs import Outage

log = logging.getLogger(__name__)

# FastStream 0.7.8's batch pull loop catches nats.errors.TimeoutError, but nats-py 2.16 raises the
# builtin TimeoutError when a fetch finds fewer messages than asked: the loop task then dies with
# the partial batch fetched and unacked (redelivered only after ack_wait), and FastStream restarts
# it. Catching the builtin (the nats error's base class) covers both. See docs/architecture.md.
# (mypy objects to assigning a module's imported class; repointing that name is the whole patch.)
_pull_subscriber.TimeoutError = TimeoutError  # type: ignore[misc, assignment]

BatchHandler = Callable[[Sequence[Any]], list[Exception | None]]
"""Runs in a worker thread; returns, per message in order, None (done) or the exception. With
`with_subjects`, it gets (subject, body) pairs instead of bodies."""


class PoisonMessageError(ValueError):
    """The message can never be processed (malformed); dead-letter it without retrying."""


class RetryLaterError(Exception):
    """The message is fine but cannot be applied yet (an earlier one is missing); retried without
    counting towards dead-lettering."""


# The read models' consumers: after a projections worker dies, what it held comes back after this
# (it was 60 s). Their batches take well under a second; a slower one is kept by in-progress acks.
PROJECTION_ACK_WAIT_S = 10.0

# Failures that say nothing about the message: retried however often it takes (with backoff).
# NotLeaderError: this instance's lease is not confirmed this moment; the leader will take it.
TRANSIENT: tuple[type[Exception], ...] = (RetryLaterError, NotLeaderError, *db.UNAVAILABLE)


def add_consumer(broker: NatsBroker, pool: ConnectionPool, *, durable: str, subject: str,
                 handle: BatchHandler, max_deliver: int, stream: str = EVENTS_STREAM,
                 batch_size: int = 500, max_wait_s: float = 0.05, with_subjects: bool = False,
                 ack_wait_s: float = 60.0) -> None:
    """`ack_wait_s`: how long a delivered message may stay unsettled before JetStream delivers it
    again, which is how long the messages a dead worker held take to come back. A batch still
    being handled is kept from that by in-progress acks (`still_working`). A durable keeps the
    ack_wait it was created with: a changed one applies once it is deleted and made again."""
    database = Outage(log, lost=f"{durable}: PostgreSQL unavailable, messages are retried",
                      back=f"{durable}: PostgreSQL back")

    @broker.subscriber(
        subject, stream=JStream(stream, declare=False), durable=durable,
        pull_sub=PullSub(batch_size=batch_size, timeout=max_wait_s, batch=True),
        ack_policy=AckPolicy.MANUAL, config=ConsumerConfig(ack_wait=ack_wait_s, max_ack_pending=5000),
    )
    async def consume(message: NatsMessage) -> None:
        # FastStream types raw_message as one Msg; a batch subscriber is handed the list of them.
        raw: list[Msg] = list(cast("list[Msg]", message.raw_message))
        items = [(m.subject, m.data) for m in raw] if with_subjects else [m.data for m in raw]
        async with still_working(raw, every_s=ack_wait_s / 3):
            outcomes = await asyncio.to_thread(handle, items)
            for msg, error in zip(raw, outcomes, strict=True):
                await settle(broker, pool, durable, msg, error, max_deliver, database)


@contextlib.asynccontextmanager
async def still_working(messages: Sequence[Msg], every_s: float) -> AsyncIterator[None]:
    """Tells JetStream every `every_s` seconds that the messages are still being worked on (an
    in-progress ack restarts their ack_wait), so that a slow batch is not delivered again while it
    is being handled (nor while it is being settled: a dead-lettering writes to the database)."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                for msg in messages:
                    await msg.in_progress()  # harmless for one already acknowledged
            except Exception as exc:  # noqa: BLE001 - no connection: the settling says so too
                log.info("in-progress acks failed: %s", exc)

    beating = asyncio.create_task(beat())
    try:
        yield
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating


async def settle(broker: NatsBroker, pool: ConnectionPool, durable: str, msg: Msg,
                 error: Exception | None, max_deliver: int, database: Outage | None = None) -> None:
    """`database`: a PostgreSQL outage is one line and a summary, not one line per message."""
    if error is None:
        if database is not None:
            database.recovered()
        await msg.ack()
        return
    delivered = msg.metadata.num_delivered
    if isinstance(error, TRANSIENT) or type(error).__name__ == "ConcurrencyConflictError":
        if isinstance(error, db.UNAVAILABLE) and database is not None:
            database.failed(error)
        else:
            log.info("%s: delivery %d will be retried: %s", durable, delivered, error)
        await msg.nak(delay=min(30.0, 0.1 * 2 ** min(delivered, 9)))
        return
    if isinstance(error, PoisonMessageError) or delivered >= max_deliver:
        await dead_letter(broker, pool, durable, msg, delivered, error)
        await msg.ack()
    else:
        log.warning("%s: delivery %d failed, retrying: %s", durable, delivered, error)
        await msg.nak(delay=min(30.0, 0.1 * 2 ** delivered))


async def dead_letter(broker: NatsBroker, pool: ConnectionPool, durable: str, msg: Msg,
                      delivered: int, exc: Exception) -> None:
    """Records a message given up on: a row in `dead_letters` and a copy on `deadletter.<durable>`."""
    msg_id = (msg.headers or {}).get("Nats-Msg-Id")
    error = f"{type(exc).__name__}: {exc}"[:2000]
    log.error("%s: dead-lettered %s after %d deliveries: %s", durable, msg_id, delivered, error)

    def record() -> None:
        with pool.connection() as conn:
            conn.execute(
                "INSERT INTO dead_letters (consumer, subject, msg_id, deliveries, error, payload)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (durable, msg.subject, msg_id, delivered, error, msg.data),
            )

    await asyncio.to_thread(record)
    await broker.publish(
        msg.data, f"deadletter.{durable}", stream="DEADLETTER",
        headers={"Nats-Msg-Id": f"{durable}:{msg_id}", "Original-Subject": msg.subject,
                 "Error": error.replace("\n", " ")[:500]},
    )
