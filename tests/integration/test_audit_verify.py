"""`pipeline audit verify`: a history projected live (relay and projections as processes, telemetry on
a real nats-server) verifies clean while the consumers keep running; a tampered live row is
reported and fails the command; the live tables are never written and the scratch schemas go."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from infra.eventstore import EventStore
from tests.factories import eventful_job
from tests.finance_month import POLICY, busy_month
from tests.helpers import pipeline_process, stop_process, wait_for
from tests.live_stack import caught_up, declare, publish, telemetry, training_jobs
from tests.unit.test_pipeline_application import register

LIVE_TABLES = ("jobs", "job_stages", "job_interruptions", "event_log", "training_files", "budgets", "budget_jobs",
               "budget_spend", "job_costs", "job_metrics", "projection_positions")


def verify(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "audit", "verify", *args], env=os.environ | env,
                          capture_output=True, text=True, timeout=180)


def snapshot(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return {t: repr(conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()) for t in LIVE_TABLES}  # noqa: S608


def scratch_schemas(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'audit_verify%'")]


@pytest.fixture
def live(migrated: str, nats_server, tmp_path: Path):
    """A month of jobs and budgets, a catalog file, a job with a NaN loss, two jobs training with
    telemetry, all projected by the live processes (left running)."""
    declare(nats_server.url)
    env = {"DATABASE_URL": migrated, "NATS_URL": nats_server.url}
    store = EventStore.open(migrated, policy=POLICY)
    busy_month(store.app)
    register(store.app)
    job = eventful_job(store.app, name="Preempted then OOM")
    training = training_jobs(store, 2, 60)
    publish(nats_server.url, telemetry(training, range(1, 301)), "t")
    processes = [pipeline_process(["projections", "run"], env, tmp_path / "projections.log"),
                 pipeline_process(["relay"], env, tmp_path / "relay.log")]
    try:
        wait_for(lambda: caught_up(store, migrated, nats_server.url), timeout=60, message="the read models")
        yield env, store, job
    finally:
        for process in processes:
            stop_process(process)
        store.close()


def test_a_live_projected_history_verifies_clean_and_nothing_live_is_touched(live) -> None:
    env, store, _ = live
    before = snapshot(env["DATABASE_URL"])
    result = verify(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified: read models equal a rebuild" in result.stdout
    assert "jobs: 11 row(s), identical" in result.stdout  # 8 of the month, the OOM one, 2 training
    assert "job_metrics: 600 row(s), identical" in result.stdout
    assert snapshot(env["DATABASE_URL"]) == before
    assert scratch_schemas(env["DATABASE_URL"]) == []


def test_tampered_rows_are_reported_table_by_table_and_fail_the_command(live) -> None:
    env, store, job = live
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        conn.execute("UPDATE jobs SET name = 'Tampered name' WHERE id = %s", (job,))
        conn.execute("DELETE FROM event_log WHERE job_id = %s AND topic = 'TrainingJob.NoteAdded'", (job,))
        conn.execute("UPDATE job_metrics SET loss = 0.5 WHERE step = 7")
    result = verify(env, "--limit", "5")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert f"changed id={job}: name: live 'Tampered name', rebuilt 'Preempted then OOM'" in out
    assert "jobs: 11 row(s), 1 live row(s) not in the rebuild, 1 rebuilt row(s) not live" in out
    assert "event_log: 263 row(s), 0 live row(s) not in the rebuild, 1 rebuilt row(s) not live" in out
    assert f"missing from the live table: originator_id={job}, originator_version=4" in out  # the note
    assert "job_metrics: 600 row(s), 2 live row(s) not in the rebuild, 2 rebuilt row(s) not live" in out
    assert out.count(", step=7: loss: live 0.5, rebuilt 0.2857142857142857") == 2
    assert "budgets: 2 row(s), identical" in out and "job_stages: 30 row(s), identical" in out
    assert "FAILED: read models differ from a rebuild" in out
    assert "budgets: " in out and "identical" in out.split("budgets: ")[1].splitlines()[0]
    assert scratch_schemas(env["DATABASE_URL"]) == []


def test_only_the_named_read_models_are_verified(live) -> None:
    env, _, job = live
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        conn.execute("UPDATE job_metrics SET loss = 0.5 WHERE step = 7")
    result = verify(env, "jobs", "event_log")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "job_metrics" not in result.stdout and "projection_positions:" in result.stdout
    assert verify(env, "nonsense").returncode == 2


def test_a_cluster_that_does_not_answer_for_a_moment_is_asked_again_not_reported_as_a_difference(
        nats_server, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a NATS node's restart its consumer leaders may take seconds to answer (the chaos run met a
    `nats: timeout` there): `consumed` asks again until CONSUMER_INFO_PATIENCE_S, then gives up loudly."""
    import asyncio

    import nats.errors
    from nats.js.client import JetStreamContext

    from infra import bus
    from pipeline import verify as verify_module

    async def declared() -> None:
        nc = await bus.connect(nats_server.url, "test")
        try:
            await bus.declare(nc.jetstream())
        finally:
            await nc.close()

    asyncio.run(declared())
    real, failures = JetStreamContext.consumer_info, []

    async def flaky(self: JetStreamContext, *args: object, **kwargs: object) -> object:
        if len(failures) < 3:
            failures.append(1)
            raise nats.errors.TimeoutError
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(JetStreamContext, "consumer_info", flaky)
    assert verify_module.consumed(nats_server.url) == (0, 0)  # the stream's last sequence: nothing in it
    assert len(failures) == 3

    failures.clear()
    monkeypatch.setattr(verify_module, "CONSUMER_INFO_PATIENCE_S", 0.2)

    async def silent(self: JetStreamContext, *args: object, **kwargs: object) -> object:
        raise nats.errors.TimeoutError

    monkeypatch.setattr(JetStreamContext, "consumer_info", silent)
    with pytest.raises(nats.errors.TimeoutError):
        verify_module.consumed(nats_server.url)
