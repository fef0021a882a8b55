"""The set-up of bench/reaction_time.py: services and workers, and what the bench observes them by
(EVENTS as it fills, the instant provider's log) or plays to them (an agent's telemetry)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from nats.js import JetStreamContext
from psycopg import sql

from domain.applications import Pipeline
from domain.values import ArtifactRef
from infra import bus, envelope
from infra.embedded import EmbeddedNats, EmbeddedPostgres
from infra.telemetry import Telemetry

ROOT = Path(__file__).resolve().parent.parent
LOCAL_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
WAIT_S = 30.0


def now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- services

def _reachable(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@dataclass
class Services:
    """PostgreSQL (scratch database or embedded), a private nats-server, and the two workers."""

    tmpdir: Path
    database_url: str = ""
    nats_url: str = ""
    where: str = ""
    children: list[subprocess.Popen] = field(default_factory=list)
    _db_name: str = ""
    _pg: EmbeddedPostgres | None = None
    _nats: EmbeddedNats | None = None

    def start(self, force_embedded_pg: bool) -> None:
        if not force_embedded_pg and _reachable("127.0.0.1", 5432):
            try:
                with psycopg.connect(LOCAL_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
                    self._db_name = f"bench_reaction_{uuid.uuid4().hex[:12]}"
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self._db_name)))
                self.database_url = f"postgresql://postgres@127.0.0.1:5432/{self._db_name}"
                self.where = f"PostgreSQL 127.0.0.1:5432, database {self._db_name}"
            except psycopg.OperationalError:
                self._db_name = ""
        if not self.database_url:
            self._pg = EmbeddedPostgres(self.tmpdir / "pg-state")
            self.database_url = self._pg.start()
            self.where = "embedded PostgreSQL"
        self._nats = EmbeddedNats(self.tmpdir / "nats-state")
        self.nats_url = self._nats.start()

    def start_worker(self, module: str, *args: str, **env: str) -> None:
        """`python -m <module> <args>` from the repository root, in its own session."""
        name = module.split(".")[-1]
        log = open(self.tmpdir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        env = {"DATABASE_URL": self.database_url, "NATS_URL": self.nats_url,
               "PIPELINE_STATE_DIR": str(self.tmpdir / "state")} | env
        self.children.append(subprocess.Popen(
            [sys.executable, "-m", module, *args], cwd=ROOT, env=os.environ | env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True))

    def check_workers(self) -> None:
        for child in self.children:
            if child.poll() is not None:
                raise RuntimeError(f"{' '.join(child.args[2:])} exited with {child.returncode}; "
                                   f"see its log in {self.tmpdir}")

    def stop(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if self._nats is not None:
            self._nats.stop()
        if self._db_name:
            with psycopg.connect(LOCAL_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self._db_name)))
        if self._pg is not None:
            self._pg.stop()


# --------------------------------------------------------------------------- observing

@dataclass(frozen=True)
class Seen:
    t: float               # wall clock when the bench received it from EVENTS
    notification_id: int
    event: Any             # the domain event


class EventTap:
    """Every event on EVENTS as it becomes visible there (an ordered push consumer), decoded and
    filed under its job (TrainingJob events by originator, Budget events by their job_id)."""

    def __init__(self, app: Pipeline) -> None:
        self.app = app
        self.by_job: dict[UUID, list[Seen]] = defaultdict(list)
        self.count = 0
        self.arrived = asyncio.Event()

    async def start(self, js: JetStreamContext) -> None:
        await js.subscribe("events.>", cb=self._on_message, ordered_consumer=True)

    async def _on_message(self, msg: Any) -> None:
        t = time.time()
        env = envelope.decode(msg.data)
        event = self.app.mapper.to_domain_event(env.stored_event)
        self.by_job[getattr(event, "job_id", None) or event.originator_id].append(Seen(t, env.notification_id, event))
        self.count += 1
        self.arrived.set()

    async def first(self, job_id: UUID, kind: type, after: int = 0, **fields: Any) -> Seen:
        """The first event of `kind` for the job (with those field values, after that notification)."""
        deadline = time.monotonic() + WAIT_S
        while True:
            for seen in self.by_job.get(job_id, ()):
                if (isinstance(seen.event, kind) and seen.notification_id > after
                        and all(getattr(seen.event, k) == v for k, v in fields.items())):
                    return seen
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind.__qualname__} {fields or ''} for job {job_id} within {WAIT_S:.0f} s")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), left)
            except TimeoutError:
                pass

    async def caught_up(self, total: int) -> None:
        deadline = time.monotonic() + 300
        while self.count < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"EVENTS: {self.count} of {total} events arrived")
            await asyncio.sleep(0.1)


class PodLog:
    """The handlers worker's provider calls and on_event starts (bench/instant_pods.py), read
    back from its JSON-lines file; polled, which costs nothing as every line carries its time."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0
        self.times: dict[tuple[str, str, int], list[float]] = defaultdict(list)

    def _read(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        complete = data[:data.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.splitlines():
            call = json.loads(line)
            self.times[(call["op"], call["job_id"], call["attempt"])].append(call["t"])

    async def time_of(self, op: str, job_id: UUID, attempt: int = 0, after: float = 0.0) -> float:
        """When the worker first did `op` for the job's attempt (0: any) at or after `after`."""
        deadline = time.monotonic() + WAIT_S
        key = (op, str(job_id), attempt)
        while True:
            self._read()
            found = [t for t in self.times.get(key, ()) if t >= after]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {op} of attempt {attempt} of job {job_id} within {WAIT_S:.0f} s")
            await asyncio.sleep(0.005)


class FakeAgent:
    """Publishes on TELEMETRY what the GPU agent of one attempt would (same subject, body, ids)."""

    def __init__(self, js: JetStreamContext, job_id: UUID, attempt: int) -> None:
        self.js, self.job_id, self.attempt = js, str(job_id), attempt
        self.seq, self.nonce = 0, uuid.uuid4().hex[:16]

    async def emit(self, kind: str, data: dict[str, Any]) -> None:
        self.seq += 1
        message = Telemetry(job_id=self.job_id, attempt=self.attempt, seq=self.seq, kind=kind,
                            at=now().isoformat(), data=data)
        await self.js.publish(message.subject, message.model_dump_json().encode(),
                              headers={"Nats-Msg-Id": f"{self.job_id}:{self.attempt}:{self.nonce}:{self.seq}"})

    def checkpoint_ref(self, step: int) -> ArtifactRef:
        """In the job's own bucket, where staging leaves it as it is (no pod reads it here)."""
        name = f"{self.job_id}/attempt-{self.attempt}/checkpoint-step-{step}.tar"
        return ArtifactRef(bus.job_bucket(self.job_id), name, "c" * 64, 1)

    async def training(self, checkpoint_step: int) -> None:
        await self.emit("stage", {"stage": "training", "status": "Training..."})
        await self.emit("checkpoint", {"step": checkpoint_step,
                                       "checkpoint": self.checkpoint_ref(checkpoint_step).as_dict()})

    async def interrupted(self, step: int) -> None:
        """SIGTERM: the emergency checkpoint is announced, then the interruption."""
        ref = self.checkpoint_ref(step).as_dict()
        await self.emit("checkpoint", {"step": step, "checkpoint": ref})
        await self.emit("interrupted", {"reason": "sigterm", "step": step, "emergency_checkpoint": True,
                                        "checkpoint": ref, "checkpoint_step": step})
