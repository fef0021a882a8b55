"""A projection worker SIGKILLed while events and telemetry stream in, then restarted: once it has
caught up, every read model equals a rebuild (`pipeline audit verify`); what the dead worker held
comes back after the consumers' ack_wait (10 s), not the minute it used to take."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.eventstore import EventStore
from tests.finance_month import POLICY, busy_month
from tests.helpers import pipeline_process, stop_process, wait_for
from tests.live_stack import (
    caught_up,
    declare,
    live_positions,
    publish,
    store_positions,
    telemetry,
    telemetry_progress,
    training_jobs,
)


def behind(store: EventStore, database_url: str, nats_url: str) -> list[str]:
    """The read models that have started on the latest burst but not finished it."""
    acked, last = telemetry_progress(nats_url)
    live, stored = live_positions(database_url), store_positions(store)
    lagging = [name for name, position in stored.items() if 0 < live.get(name, 0) < position]
    return lagging + (["metrics"] if 0 < acked < last else [])


@pytest.mark.slow
def test_a_projection_worker_killed_mid_stream_ends_equal_to_a_rebuild(migrated: str, nats_server,
                                                                         tmp_path: Path) -> None:
    declare(nats_server.url)
    env = {"DATABASE_URL": migrated, "NATS_URL": nats_server.url}
    store = EventStore.open(migrated, policy=POLICY)
    busy_month(store.app)
    relay = pipeline_process(["relay"], env, tmp_path / "relay.log")
    projections = pipeline_process(["projections", "run"], env, tmp_path / "projections-1.log")
    try:
        first = training_jobs(store, 10, 20, name="Warm-up")
        publish(nats_server.url, telemetry(first, range(1, 51)), "warm")
        wait_for(lambda: caught_up(store, migrated, nats_server.url), timeout=60, message="the warm-up")

        # A burst of 4,000 events and 20,200 telemetry messages; the worker dies inside it.
        burst = training_jobs(store, 40, 100, name="Burst")
        publish(nats_server.url, telemetry(burst, range(1, 501)), "burst")
        lagging = wait_for(lambda: behind(store, migrated, nats_server.url), timeout=60, interval=0.005,
                           message="the worker part-way through the burst")
        projections.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        assert projections.wait(10) == -signal.SIGKILL
        assert not caught_up(store, migrated, nats_server.url), f"killed too late ({lagging})"

        more = training_jobs(store, 5, 30, name="While down")  # events and telemetry go on meanwhile
        publish(nats_server.url, telemetry(more, range(1, 101)), "down")
        projections = pipeline_process(["projections", "run"], env, tmp_path / "projections-2.log")
        wait_for(lambda: caught_up(store, migrated, nats_server.url), timeout=120, message="the restarted worker")
        # The held messages come back after ack_wait (10 s); the events behind them then wait out
        # their out-of-order backoff (under 13 s by then). With the old 60 s it could not be under a minute.
        assert time.monotonic() - killed < 50

        verified = subprocess.run([sys.executable, "-m", "pipeline", "audit", "verify"], env=os.environ | env,
                                  capture_output=True, text=True, timeout=180)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "jobs: 63 row(s), identical" in verified.stdout  # the month's 8, 10 + 40 + 5
        assert "job_metrics: 21000 row(s), identical" in verified.stdout  # 10 × 50 + 40 × 500 + 5 × 100 steps
    finally:
        stop_process(projections)
        stop_process(relay)
        store.close()
