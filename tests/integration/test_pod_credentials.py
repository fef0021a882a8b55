"""Per-pod NATS users on a real nats-server: a pod reaches its own job's telemetry subject and
bucket, nothing else; a forged body under its own subject is refused by the telemetry handler."""

import asyncio
import json
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from nats.errors import TimeoutError as NatsTimeoutError

from domain.applications import BudgetPolicy, Pipeline
from handlers.telemetry import ForgedTelemetryError, TelemetryHandler
from infra import bus, natsauth
from infra.embedded import EmbeddedNats
from infra.natsauth import NatsAuthority, nats_accepts
from infra.objectstore import ObjectStore
from tests.factories import queue_sample_job

JOB_A, JOB_B = str(uuid.uuid4()), str(uuid.uuid4())


@pytest.fixture
def server(tmp_path: Path):
    nats = EmbeddedNats(tmp_path / "state", auth=True)
    nats.start()
    yield nats
    nats.stop()


def telemetry_body(job_id: str, seq: int = 1) -> bytes:
    return json.dumps({"job_id": job_id, "attempt": 1, "seq": seq, "kind": "step",
                       "at": datetime.now(timezone.utc).isoformat(), "data": {"step": seq, "loss": 1.0}}).encode()


async def as_pod(url: str, creds: natsauth.PodCredentials):
    # No reconnects: revoking the user cuts this connection, and nats-py's reconnect loop (which
    # max_reconnect_attempts=0 does not stop: 0 means "no limit") can then swallow the loop's
    # shutdown and hang asyncio.run on a loaded machine.
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await bus.connect(bus.shown(url), "test-pod", user=creds.user, password=creds.password,
                           inbox_prefix=creds.inbox_prefix, error_cb=on_error, allow_reconnect=False)
    return nc, errors


def test_a_pod_reaches_its_own_job_and_nothing_else(server: EmbeddedNats, tmp_path: Path) -> None:
    assert not nats_accepts(bus.shown(server.url), "anyone", "guess")
    authority = NatsAuthority(server.auth_dir, server.url)
    source = tmp_path / "file.bin"
    source.write_bytes(b"conversations" * 1000)

    async def scenario() -> None:
        control = await bus.connect(server.url, "control")
        js = control.jetstream()
        await bus.declare(js)
        store = ObjectStore(js)
        refs = {}
        for job in (JOB_A, JOB_B):
            await bus.ensure_job_bucket(js, job)
            refs[job] = await store.put_file(bus.job_bucket(job), "input/file.bin", source)

        creds = await asyncio.to_thread(authority.grant, JOB_A, 1)
        pod, errors = await as_pod(server.url, creds)
        pod_js, pod_store = pod.jetstream(), ObjectStore(pod.jetstream())

        # Its own job: telemetry and objects work.
        await pod_js.publish(f"telemetry.{JOB_A}.step", telemetry_body(JOB_A), timeout=15)
        assert (await pod_store.get_file(refs[JOB_A], tmp_path / "own.bin")).read_bytes() == source.read_bytes()
        await pod_store.put_file(bus.job_bucket(JOB_A), "attempt-1/checkpoint-step-5.tar", source)

        # Another job: telemetry refused by the server, never stored.
        with pytest.raises((NatsTimeoutError, TimeoutError)):
            await pod_js.publish(f"telemetry.{JOB_B}.step", telemetry_body(JOB_B), timeout=1)
        info = await js.stream_info(bus.TELEMETRY_STREAM)
        subjects = [(await js.get_msg(bus.TELEMETRY_STREAM, s)).subject
                    for s in range(info.state.first_seq, info.state.last_seq + 1)]
        assert subjects == [f"telemetry.{JOB_A}.step"]
        # …its objects unreadable and unwritable…
        with pytest.raises(Exception):  # noqa: B017 - denied: a permissions error or a timeout, as the server answers
            await asyncio.wait_for(pod_store.get_file(refs[JOB_B], tmp_path / "theirs.bin"), 2)
        assert not (tmp_path / "theirs.bin").exists()
        with pytest.raises(Exception):  # noqa: B017 - denied: a permissions error or a timeout, as the server answers
            await asyncio.wait_for(pod_store.put_file(bus.job_bucket(JOB_B), "input/file.bin", tmp_path / "own.bin"), 2)
        assert (await store.get_file(refs[JOB_B], tmp_path / "b.bin")).read_bytes() == source.read_bytes()
        # …and nobody else's messages can be read.
        received: list[bytes] = []

        async def collect(msg) -> None:
            received.append(msg.data)

        await pod.subscribe("telemetry.>", cb=collect)
        await pod.flush()
        await control.publish(f"telemetry.{JOB_B}.step", telemetry_body(JOB_B))
        await asyncio.sleep(0.3)
        assert received == []
        assert any("permissions violation" in e.lower() for e in errors), errors

        # Revoked with its pod: the user no longer gets in.
        await asyncio.to_thread(authority.revoke, JOB_A, 1)
        assert not nats_accepts(bus.shown(server.url), creds.user, creds.password)
        assert authority.granted() == {}
        await pod.close()
        await control.close()

    asyncio.run(scenario())


def test_users_survive_a_server_restart_and_a_restarted_worker_keeps_only_active_jobs(server: EmbeddedNats) -> None:
    authority = NatsAuthority(server.auth_dir, server.url)
    kept, dropped = authority.grant(JOB_A, 2), authority.grant(JOB_B, 1)
    server.stop()
    server.start()
    url = bus.shown(server.url)
    assert nats_accepts(url, kept.user, kept.password) and nats_accepts(url, dropped.user, dropped.password)
    authority.retain({JOB_A})
    assert nats_accepts(url, kept.user, kept.password)
    assert not nats_accepts(url, dropped.user, dropped.password)


def test_a_body_naming_another_job_under_a_pods_own_subject_is_refused_and_changes_nothing() -> None:
    app = Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=BudgetPolicy(default_limit=Decimal(5000)))
    victim = queue_sample_job(app)
    before = app.get_job(victim).version
    handler = TelemetryHandler(app)
    with pytest.raises(ForgedTelemetryError):
        handler.handle(f"telemetry.{JOB_A}.step", telemetry_body(str(victim)))
    assert app.get_job(victim).version == before
    assert str(victim) not in handler.heartbeats  # a forgery does not keep another job's pod "alive"
