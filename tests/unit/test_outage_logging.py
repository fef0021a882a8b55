"""The rate limit on log records and the outage lines (infra/logs.py): a flood becomes a few lines."""

from __future__ import annotations

import asyncio
import logging

import psycopg
import pytest

from infra.consumers import settle
from infra.logs import Outage, RateLimit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(message: str, *args: object, level: int = logging.WARNING, name: str = "worker") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, args, None)


def test_the_same_message_numbers_aside_passes_once_per_interval_and_then_says_how_many_were_held_back() -> None:
    clock = Clock()
    limit = RateLimit(every_s=30, clock=clock)
    passed = [r for n in range(860) if limit.filter(r := record("notifier: delivery %d will be retried: %s", n,
                                                                 "connection refused"))]
    assert len(passed) == 1
    clock.now += 31
    later = record("notifier: delivery %d will be retried: %s", 861, "connection refused")
    assert limit.filter(later)
    assert later.getMessage() == \
        "notifier: delivery 861 will be retried: connection refused (859 more like this in 31 s)"


def test_different_messages_loggers_and_levels_are_not_held_back_by_each_other() -> None:
    limit = RateLimit(every_s=30, clock=Clock())
    job_a = "job 6f1c2a4e-0000-4000-8000-00000000000a: no pod (no capacity)"
    job_b = "job 9b7d3e1f-0000-4000-8000-00000000000b: no pod (no capacity)"
    assert all(limit.filter(r) for r in (record(job_a), record(job_b), record(job_a, name="other"),
                                         record(job_a, level=logging.ERROR)))
    assert not limit.filter(record(job_a))


def test_an_outage_is_one_line_when_it_starts_and_one_summary_when_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    outage = Outage(logging.getLogger("relay"), lost="NATS connection lost", back="NATS reconnected", clock=clock)
    with caplog.at_level(logging.INFO):
        outage.recovered()  # nothing was lost
        for n in range(42):
            outage.failed(f"Connect call failed ({n})")
            clock.now += 0.3
        outage.recovered()
        outage.recovered()
    assert [r.getMessage() for r in caplog.records] == [
        "NATS connection lost: Connect call failed (0)", "NATS reconnected after 12.6 s; 41 retries"]


class Message:
    def __init__(self, delivered: int) -> None:
        self.metadata = type("Metadata", (), {"num_delivered": delivered})()
        self.settled: list[str] = []

    async def ack(self) -> None:
        self.settled.append("ack")

    async def nak(self, delay: float = 0) -> None:
        self.settled.append("nak")


def test_a_consumer_retrying_860_messages_while_postgresql_is_away_says_it_once_and_sums_up(
    caplog: pytest.LogCaptureFixture
) -> None:
    database = Outage(logging.getLogger("infra.consumers"), lost="notifier: PostgreSQL unavailable, messages are "
                      "retried", back="notifier: PostgreSQL back")
    refused = psycopg.OperationalError("connection refused")

    async def outage_then_recovery() -> list[Message]:
        messages = [Message(delivered=n % 9 + 1) for n in range(860)]
        for message in messages:
            await settle(None, None, "notifier", message, refused, 10, database)  # type: ignore[arg-type]
        await settle(None, None, "notifier", messages[0], None, 10, database)  # type: ignore[arg-type]
        return messages

    with caplog.at_level(logging.INFO):
        messages = asyncio.run(outage_then_recovery())
    assert all(m.settled[0] == "nak" for m in messages) and messages[0].settled[-1] == "ack"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and lines[0] == "notifier: PostgreSQL unavailable, messages are retried: connection refused"
    assert lines[1].startswith("notifier: PostgreSQL back after ") and lines[1].endswith("; 859 retries")
