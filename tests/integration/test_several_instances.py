"""Several instances of each worker (issue #21): leases on PostgreSQL sessions, a standby taking
over from a killed or frozen leader, read models shared out, notifications delivered once by two
notifiers, a multi-host DATABASE_URL, and a 3-node NATS cluster that loses a node."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from infra import bus, telemetry
from infra.embedded import EmbeddedNatsCluster
from infra.eventstore import EventStore
from infra.leadership import Leases
from projections.runner import PROJECTIONS
from tests.fakes.mail_and_slack import FakeSlack
from tests.helpers import pipeline_process, stop_process, wait_for
from tests.integration.test_notifications import BASE, completed_job
from tests.live_stack import caught_up, declare, training_jobs

LEASE = {"PIPELINE_LEASE_S": "2"}
PARTS = bus.TELEMETRY_PARTS_STREAM


def leaders(database_url: str, kind: str) -> dict[str, tuple[int, list[str]]]:
    """Instance → (pid, the domains it leads), for instances heard from within a second."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT instance, pid, leads FROM worker_instances WHERE kind = %s"
                            " AND seen_at > now() - interval '1 second'", (kind,)).fetchall()
    return {name: (pid, list(leads)) for name, pid, leads in rows}


def leader_of(database_url: str, kind: str, domain: str) -> tuple[str, int] | None:
    return next(((name, pid) for name, (pid, leads) in leaders(database_url, kind).items() if domain in leads), None)


def stream_count(nats_url: str, stream: str = bus.EVENTS_STREAM) -> int:
    async def ask() -> int:
        nc = await bus.connect(nats_url, "test-probe")
        try:
            return (await nc.jetstream().stream_info(stream)).state.messages
        finally:
            await nc.close()

    return asyncio.run(ask())


def stored_count(store: EventStore) -> int:
    return len(store.app.recorder.select_notifications(1, 10**6))


def two(args: list[str], env: dict[str, str], tmp_path: Path, kind: str) -> list:
    return [pipeline_process(args, env | {"PIPELINE_INSTANCE": f"{kind}-{i}"}, tmp_path / f"{kind}-{i}.log")
            for i in (1, 2)]


def test_leases_are_split_between_instances_and_postgresql_frees_those_of_a_silent_one(migrated: str) -> None:
    async def scenario() -> None:
        a = Leases(migrated, "test", "a", ("x", "y"), lease_s=1.0)
        b = Leases(migrated, "test", "b", ("x", "y"), lease_s=1.0)
        stop_a, stop_b = asyncio.Event(), asyncio.Event()
        running_a = asyncio.create_task(a.run(stop_a, first_wait_s=1.0))
        running_b = asyncio.create_task(b.run(stop_b, first_wait_s=1.0))
        try:
            while len(a.held) + len(b.held) < 2:
                await asyncio.sleep(0.05)
            assert len(a.held) == len(b.held) == 1 and a.held != b.held  # started together: one each
            (mine,) = a.held
            assert a.valid(mine) and not b.valid(mine)
            running_a.cancel()  # frozen: its session stays open, silent
            frozen_at = time.monotonic()
            while len(b.held) < 2:
                await asyncio.sleep(0.05)
            took_over = time.monotonic() - frozen_at
            assert 0.9 < took_over < 5.0  # PostgreSQL ended the silent session after the lease
            assert not a.valid(mine)  # its last heartbeat is older than half the lease: it acts no more
        finally:
            stop_b.set()
            await running_b
            a.close()
            b.close()

    asyncio.run(scenario())


def end_session(database_url: str, leases: Leases) -> None:
    """What a PostgreSQL restart does to one lease session: the server ends it."""
    assert leases.conn is not None
    pid = leases.conn.info.backend_pid
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


async def until(predicate, timeout: float = 10.0) -> None:  # noqa: ANN001 - a test helper
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


def test_a_leader_whose_session_ended_leads_again_when_nobody_led_meanwhile(migrated: str) -> None:
    """A database restart costs a leader no restart: its domains are suspended, then taken back."""

    async def scenario() -> None:
        a = Leases(migrated, "test", "a", ("x",), lease_s=1.0)
        stop = asyncio.Event()
        running = asyncio.create_task(a.run(stop, first_wait_s=0))
        try:
            await until(lambda: a.valid("x"))
            taken = a.generations["x"]
            end_session(migrated, a)
            await until(lambda: not a.valid("x"))  # it acts on nothing while it is not sure
            await until(lambda: a.valid("x"))
            assert not a.lost.is_set() and a.generations["x"] == taken + 1
        finally:
            stop.set()
            await running
            a.close()

    asyncio.run(scenario())


def test_a_leader_whose_session_ended_while_another_led_loses_its_lease(migrated: str) -> None:
    async def scenario() -> None:
        a = Leases(migrated, "test", "a", ("x",), lease_s=1.0)
        b = Leases(migrated, "test", "b", ("x",), lease_s=1.0)
        stop_a, stop_b = asyncio.Event(), asyncio.Event()
        running_a = asyncio.create_task(a.run(stop_a, first_wait_s=0))
        await until(lambda: a.valid("x"))
        running_b = asyncio.create_task(b.run(stop_b, first_wait_s=0))
        try:
            running_a.cancel()  # frozen: its session stays open, silent, until PostgreSQL ends it
            await until(lambda: b.valid("x"))
            stop_b.set()
            await running_b
            b.close()  # b led and left: the lock is free again, but a's memory is stale
            running_a = asyncio.create_task(a.run(stop_a))  # a wakes
            await until(lambda: a.lost.is_set())
            assert not a.valid("x")
        finally:
            stop_a.set()
            stop_b.set()
            await asyncio.gather(running_a, running_b, return_exceptions=True)
            a.close()
            b.close()

    asyncio.run(scenario())


def test_a_standby_relay_takes_over_within_seconds_and_every_event_reaches_the_stream_once(
    migrated: str, nats_server, tmp_path: Path
) -> None:
    declare(nats_server.url)
    env = {"DATABASE_URL": migrated, "NATS_URL": nats_server.url, **LEASE}
    store = EventStore.open(migrated, pool_size=1)
    relays = two(["relay"], env, tmp_path, "relay")
    try:
        training_jobs(store, 5, 20)
        leader = wait_for(lambda: leader_of(migrated, "relay", "relay"), timeout=60, message="a relay leader")
        wait_for(lambda: stream_count(nats_server.url) == stored_count(store), timeout=30, message="relayed")
        os.kill(leader[1], signal.SIGKILL)
        killed_at = time.monotonic()
        training_jobs(store, 5, 20)
        successor = wait_for(lambda: (found := leader_of(migrated, "relay", "relay")) and found[0] != leader[0]
                             and found, timeout=20, interval=0.05, message="the standby to lead")
        assert time.monotonic() - killed_at < 5.0
        wait_for(lambda: stream_count(nats_server.url) == stored_count(store), timeout=30, message="relayed after")
        assert successor[0] != leader[0]
    finally:
        store.close()
        for relay in relays:
            stop_process(relay)


def test_a_relay_leader_frozen_past_its_lease_is_replaced_and_stops_when_it_wakes(
    migrated: str, nats_server, tmp_path: Path
) -> None:
    declare(nats_server.url)
    env = {"DATABASE_URL": migrated, "NATS_URL": nats_server.url, **LEASE}
    store = EventStore.open(migrated, pool_size=1)
    relays = two(["relay"], env, tmp_path, "relay")
    try:
        name, pid = wait_for(lambda: leader_of(migrated, "relay", "relay"), timeout=60, message="a relay leader")
        frozen = next(r for r in relays if r.pid == pid)
        os.kill(pid, signal.SIGSTOP)
        training_jobs(store, 5, 20)  # stored while the leader is frozen
        wait_for(lambda: (found := leader_of(migrated, "relay", "relay")) and found[0] != name, timeout=15,
                 interval=0.05, message="the standby to lead")
        wait_for(lambda: stream_count(nats_server.url) == stored_count(store), timeout=30, message="relayed")
        os.kill(pid, signal.SIGCONT)
        assert frozen.wait(20) == 3  # woke without its lease: stopped, for its supervisor to start again
        assert "lost its lease" in (tmp_path / f"{name}.log").read_text()
        training_jobs(store, 2, 5)
        wait_for(lambda: stream_count(nats_server.url) == stored_count(store), timeout=30, message="relayed after")
    finally:
        store.close()
        for relay in relays:
            stop_process(relay)


def test_two_projections_workers_share_the_read_models_and_the_survivor_takes_them_all(
    migrated: str, nats_server, tmp_path: Path
) -> None:
    declare(nats_server.url)
    # A longer lease: instances wait half of it before leading, to see each other and share the work.
    env = {"DATABASE_URL": migrated, "NATS_URL": nats_server.url, "PIPELINE_LEASE_S": "6"}
    store = EventStore.open(migrated, pool_size=1)
    workers = [*two(["projections", "run"], env, tmp_path, "projections"),
               pipeline_process(["relay"], env, tmp_path / "relay.log")]
    try:
        every = set(PROJECTIONS)

        def split() -> dict[str, tuple[int, list[str]]] | None:
            found = leaders(migrated, "projections")
            led = [d for _, leads in found.values() for d in leads]
            return found if len(found) == 2 and sorted(led) == sorted(every) else None

        shared = wait_for(split, timeout=60, message="the read models shared out")
        assert all(leads for _, leads in shared.values())  # started together: each leads some
        training_jobs(store, 5, 20)
        wait_for(lambda: caught_up(store, migrated, nats_server.url), timeout=60, message="read models caught up")
        victim, (pid, _) = next(iter(shared.items()))
        os.kill(pid, signal.SIGKILL)
        survivor = wait_for(lambda: (found := leaders(migrated, "projections")) and len(found) == 1
                            and set(next(iter(found.values()))[1]) == every and found,
                            timeout=20, interval=0.1, message="the survivor to lead every read model")
        assert victim not in survivor
        training_jobs(store, 5, 20)
        wait_for(lambda: caught_up(store, migrated, nats_server.url), timeout=60, message="caught up again")
    finally:
        store.close()
        for worker in workers:
            stop_process(worker)


def test_two_notifiers_share_the_events_and_deliver_each_notification_once(
    migrated: str, nats_server, tmp_path: Path
) -> None:
    declare(nats_server.url)
    slack = FakeSlack().start()
    env = {"DATABASE_URL": migrated, "NATS_URL": nats_server.url, "PIPELINE_PUBLIC_URL": BASE,
           "PIPELINE_SLACK_WEBHOOK_URL": slack.url, **LEASE}
    store = EventStore.open(migrated, pool_size=1)
    workers = [*two(["notifications", "run"], env, tmp_path, "notifications"),
               pipeline_process(["relay"], env, tmp_path / "relay.log")]
    try:
        wait_for(lambda: len(leaders(migrated, "notifications")) == 2, timeout=60, message="both notifiers")
        jobs = [completed_job(store.app) for _ in range(12)]
        wait_for(lambda: len(slack.received) >= len(jobs), timeout=60, message="a Slack post per job")
        time.sleep(1.0)  # a second post, if any, would come now
        posts = [p["text"] for p in slack.received]
        assert sorted(sum(f"/jobs/{job}" in text for text in posts) for job in jobs) == [1] * len(jobs)
        assert len(posts) == len(jobs)
        with psycopg.connect(migrated) as conn:
            sent = conn.execute("SELECT count(*), max(attempts) FROM notification_deliveries"
                                " WHERE channel = 'slack' AND status = 'sent'").fetchone()
        assert sent == (len(jobs), 1)
        clock = [name for name, (_, leads) in leaders(migrated, "notifications").items() if leads]
        assert len(clock) == 1  # the digests' clock runs in one of them
    finally:
        store.close()
        for worker in workers:
            stop_process(worker)
        slack.stop()


async def partitions_of(js, expected: int) -> dict[str, list[tuple[int, int]]]:  # noqa: ANN001 - a JetStream context
    """Job → [(partition, step)] as each partition's consumer reads TELEMETRY_PARTS."""
    deadline = time.monotonic() + 20
    while (await js.stream_info(PARTS)).state.messages < expected:  # sourced from TELEMETRY: shortly after
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    seen: dict[str, list[tuple[int, int]]] = {}
    for partition in range(telemetry.PARTITIONS):
        sub = await js.pull_subscribe(telemetry.partition_subjects(partition), durable=f"test-{partition}",
                                      stream=PARTS)
        while True:
            try:
                batch = await sub.fetch(100, timeout=0.5)
            except TimeoutError:
                break
            for msg in batch:
                job = telemetry.published_subject(msg.subject).split(".")[1]
                seen.setdefault(job, []).append((partition, int(msg.data)))
                await msg.ack()
    return seen


def test_the_telemetry_is_shared_out_by_job_each_in_one_partition_in_order(nats_server) -> None:  # noqa: ANN001
    """The telemetry reactor's partitions (infra/telemetry.py): every job's messages in one, in order."""
    declare(nats_server.url)
    jobs = [str(uuid.uuid4()) for _ in range(16)]

    async def scenario() -> None:
        nc = await bus.connect(nats_server.url, "test-pods")
        js = nc.jetstream()
        try:
            for step in range(1, 6):
                for job in jobs:
                    await js.publish(telemetry.subject(job, "step"), str(step).encode())
            seen = await partitions_of(js, 5 * len(jobs))
            assert sorted(seen) == sorted(jobs)
            for job, found in seen.items():
                assert len({partition for partition, _ in found}) == 1, job
                assert [step for _, step in found] == [1, 2, 3, 4, 5]
            assert len({found[0][0] for found in seen.values()}) > 1  # shared out, not all in one
            assert (await js.stream_info(PARTS)).state.messages == 0  # a work queue: gone once acked
        finally:
            await nc.close()

    asyncio.run(scenario())


def test_the_partitions_start_after_what_the_unpartitioned_reactor_had_handled(nats_server) -> None:  # noqa: ANN001
    """A deployment from before the partitions: they take up where its one durable left off."""

    async def scenario() -> None:
        nc = await bus.connect(nats_server.url, "test-upgrade")
        js = nc.jetstream()
        try:
            await js.add_stream(next(s for s in bus.STREAMS if s.name == bus.TELEMETRY_STREAM))
            old, new = str(uuid.uuid4()), str(uuid.uuid4())
            for step in (1, 2, 3):
                await js.publish(telemetry.subject(old, "step"), str(step).encode())
            sub = await js.pull_subscribe(telemetry.ALL_TELEMETRY, durable=bus.UNPARTITIONED_DURABLE,
                                          stream=bus.TELEMETRY_STREAM)
            first = (await sub.fetch(1, timeout=5))[0]
            await first.ack_sync()  # handled step 1; steps 2 and 3 were still to come
            await bus.declare(js)
            await js.publish(telemetry.subject(new, "step"), b"1")
            seen = await partitions_of(js, 3)
            assert [step for _, step in seen[old]] == [2, 3] and [step for _, step in seen[new]] == [1]
            with pytest.raises(Exception, match="consumer not found"):
                await js.consumer_info(bus.TELEMETRY_STREAM, bus.UNPARTITIONED_DURABLE)
        finally:
            await nc.close()

    asyncio.run(scenario())


def test_a_worker_reaches_postgresql_through_a_multi_host_url(migrated: str, nats_server, tmp_path: Path) -> None:
    if "127.0.0.1:5432" not in migrated:
        pytest.skip("needs PostgreSQL on 127.0.0.1:5432 (the embedded one listens on a unix socket)")
    declare(nats_server.url)
    # The first host refuses connections (a primary that is down); libpq goes on to the next.
    url = migrated.replace("127.0.0.1:5432", "127.0.0.1:1,127.0.0.1:5432") + "?target_session_attrs=read-write"
    store = EventStore.open(url, pool_size=1)
    relay = pipeline_process(["relay"], {"DATABASE_URL": url, "NATS_URL": nats_server.url}, tmp_path / "relay.log")
    try:
        training_jobs(store, 2, 5)
        wait_for(lambda: stream_count(nats_server.url) == stored_count(store), timeout=60, message="relayed")
    finally:
        store.close()
        assert stop_process(relay) == 0, (tmp_path / "relay.log").read_text()[-2000:]


def test_a_three_node_nats_cluster_keeps_every_message_when_a_node_dies(tmp_path: Path) -> None:
    cluster = EmbeddedNatsCluster(tmp_path, 3)
    url = cluster.start()

    async def scenario() -> None:
        nc = await bus.connect(url, "test-client")
        js = nc.jetstream(timeout=5)
        deadline = time.monotonic() + 30
        while True:  # the cluster elects its JetStream leaders first
            try:
                await bus.declare(js, replicas=3)
                break
            except Exception:  # noqa: BLE001 - not ready yet
                assert time.monotonic() < deadline
                await asyncio.sleep(0.5)
        assert (await js.stream_info(bus.EVENTS_STREAM)).config.num_replicas == 3
        assert (await js.stream_info("OBJ_files")).config.num_replicas == 3
        for n in range(20):
            await js.publish(f"events.Test.Happened{n}", b"{}", headers={"Nats-Msg-Id": f"m{n}"})
        connected = nc.connected_url.port if nc.connected_url else None
        victim = next(node for node in cluster.nodes if node.port == connected)
        victim.process.send_signal(signal.SIGKILL)  # the node this client is connected to
        victim.process.wait()
        deadline = time.monotonic() + 30
        n = 20
        while n < 40:  # the client reconnects to another node; a publish may time out meanwhile
            try:
                await js.publish(f"events.Test.Happened{n}", b"{}", headers={"Nats-Msg-Id": f"m{n}"})
                n += 1
            except Exception:  # noqa: BLE001 - failing over
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
        assert nc.connected_url is not None and nc.connected_url.port != connected
        assert (await js.stream_info(bus.EVENTS_STREAM)).state.messages == 40  # each once, none lost
        victim.restart()
        await nc.close()

    try:
        asyncio.run(scenario())
    finally:
        cluster.stop()
