"""Chaos run (issue #21): a whole deployment on this machine, faults in turn, then checks by code.

    python bench/chaos.py [--rounds 3] [--steps 60] [--jobs 3] [--lease 5] [--conversations N] [--budget S]

`pipeline up --nats-cluster 3 --instances 2` in a scratch state folder: a 3-node NATS cluster (R3
streams), an embedded PostgreSQL (never the machine's own on 127.0.0.1:5432: it is restarted
here), two instances of each worker (relay, projections, handlers, notifications, web), local pods
training the tiny model (`--jobs` at once, kept busy through the faults, with a pod preemption
injected through the API between faults), notifications to a fake Slack webhook.

A reference job trains alongside, never preempted: it must complete on one pod (no control-plane
fault may interrupt a pod), and its adapter is the undisturbed run's. Per round: SIGKILL each
worker instance in turn, SIGKILL one NATS node (`up` brings it back), restart PostgreSQL (fast
shutdown; `up` starts it again), SIGSTOP the relay leader for longer than its lease (then
SIGCONT). After each fault: the time until every decision domain is led again ("led") and until
the system is whole again ("whole": every domain led, /health 200 on a web instance, every
JetStream replica current), and, unless the run is a quick one, until it is at full strength
(every instance running and heard from within 2 s, the killed one restarted, /health 200 on both).

Afterwards, checked by code: the reference completed on one pod; every job completed with the
reference's adapter weights; `pipeline audit verify` clean; every metric step present once; every
budget charge counted once (the budget's charges of a job = its pods' seconds × their rates); one
pod per attempt; every notification delivered once (the fake Slack's posts against the delivery
ledger). Prints a table per fault kind and exits 1 when a check fails (0 when only a recovery
target is missed: it says so).

Every wait is bounded: by its own timeout and by `--budget` for the whole run; one that runs out
raises `PhaseTimeout` naming the phase and what was still missing (an unled domain, a web instance
not answering, a replica behind, a job's status, …), with the tail of `pipeline up`'s log."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

import httpx  # noqa: E402
import psycopg  # noqa: E402

from domain.values import ArtifactRef  # noqa: E402
from infra import bus  # noqa: E402
from infra.embedded import free_port  # noqa: E402
from infra.objectstore import ObjectStore  # noqa: E402
from infra.runtime import running_embedded_nats  # noqa: E402
from tests.fakes.mail_and_slack import FakeSlack  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("relay", "projections", "handlers", "notifications", "web")
INSTANCES = 2
# Domains led by instances heard from since the fault (a dead leader's row is not refreshed).
DOMAINS_LED = ("SELECT unnest(leads) FROM worker_instances"
               " WHERE seen_at > greatest(now() - interval '2 seconds', to_timestamp(%s))")
TARGET_S = 10.0


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


class PhaseTimeout(TimeoutError):
    """A wait of the run ran out: the message names the phase and what was still missing."""


@dataclass
class Clock:
    """The run's phase (for failure messages) and its overall budget: every wait is bounded by its
    own timeout and by what is left of the budget (None: no overall budget)."""

    budget_s: float | None = None
    phase: str = "start"
    started: float = field(default_factory=time.monotonic)

    def left(self, timeout: float) -> float:
        if self.budget_s is None:
            return timeout
        return max(0.0, min(timeout, self.started + self.budget_s - time.monotonic()))

    def spent(self) -> bool:
        return self.budget_s is not None and time.monotonic() >= self.started + self.budget_s


CLOCK = Clock()  # `run()` installs the run's own


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2,
             missing: Callable[[], str] | None = None, tail: Callable[[], str] | None = None) -> Any:
    """`predicate()` until it is true; else PhaseTimeout saying the phase, `what` it waited for and
    `missing()` (what was not there yet), then `tail()` (a log's end)."""
    bound = CLOCK.left(timeout)
    deadline = time.monotonic() + bound
    while True:
        try:
            found = predicate()
        except Exception:  # noqa: BLE001 - a server restarting answers with errors meanwhile
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise PhaseTimeout(timed_out(what, bound, missing, tail))
        time.sleep(interval)


def timed_out(what: str, waited: float, missing: Callable[[], str] | None = None,
              tail: Callable[[], str] | None = None) -> str:
    why = " (the run's budget is spent)" if CLOCK.spent() else ""
    message = f"{CLOCK.phase}: timed out after {waited:.0f} s{why} waiting for {what}"
    for label, describe in (("missing", missing), ("log", tail)):
        if describe is not None:
            try:
                message += f"\n{label}: {describe()}"
            except Exception as exc:  # noqa: BLE001 - describing must not hide the timeout
                message += f"\n{label}: (could not tell: {exc})"
    return message


# --------------------------------------------------------------------------- the stack

@dataclass
class Stack:
    """`pipeline up --nats-cluster 3 --instances 2` with its own state folder and web ports."""

    tmp: Path
    steps: int
    lease_s: float
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    slack: FakeSlack | None = None
    token: str = ""
    watch: Any = None  # a connection kept open for timing take-overs
    full_each: bool = True  # after each fault, wait until every instance is back
    conversations: int | None = None  # of the sample, per training file (None: all)

    @property
    def state(self) -> Path:
        return self.tmp / "state"

    @property
    def bases(self) -> list[str]:
        port = int(self.env["PIPELINE_WEB_PORT"])
        return [f"http://127.0.0.1:{port + i}" for i in range(INSTANCES)]

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@/pipeline?host={self.state / 'pg'}"

    def nats_url(self) -> str:
        url = running_embedded_nats(self.state)
        assert url is not None, "no embedded nats-server runs"
        return url

    def start(self) -> None:
        self.slack = FakeSlack().start()
        port = free_port()
        while not all(_port_free(p) for p in (port, port + 1)):
            port = free_port()
        self.env = os.environ | {
            "PIPELINE_STATE_DIR": str(self.state), "PIPELINE_WEB_PORT": str(port),
            "PIPELINE_ADMIN_PASSWORD": "chaos-admin-password", "PIPELINE_AGENT_MAX_STEPS": str(self.steps),
            "PIPELINE_AGENT_CHECKPOINT_EVERY": str(max(1, self.steps // 4)), "PIPELINE_LEASE_S": str(self.lease_s),
            "PIPELINE_SLACK_WEBHOOK_URL": self.slack.url, "PIPELINE_PUBLIC_URL": "http://pipeline.example",
            "PIPELINE_SEED_SAMPLE": "false"}  # each job gets a training file of its own
        for name in ("DATABASE_URL", "NATS_URL", "PIPELINE_NATS_AUTH_DIR", "PIPELINE_FAULT", "PIPELINE_AGENT_FAULT",
                     "PIPELINE_INSTANCE"):
            self.env.pop(name, None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "up", "--nats-cluster", "3", "--instances", str(INSTANCES)],
            cwd=ROOT, env=self.env, stdout=(self.tmp / "up.log").open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True)
        wait_for(lambda: self.healthy() or self.process.poll() is not None, 240,
                 "/health 200 on the first web instance", tail=self.log_tail)
        if self.process.poll() is not None:
            raise RuntimeError(f"pipeline up exited: {self.log_tail()}")
        wait_for(lambda: len(self.instances()) == len(KINDS) * INSTANCES, 180, "every instance heard from",
                 missing=self.missing_instances, tail=self.log_tail)
        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=10) as conn:
            from web import users

            self.token = users.create_token(conn, "admin", "chaos")
        self.watch = psycopg.connect(self.database_url, autocommit=True, connect_timeout=10)

    def stop(self) -> int | None:
        code = None
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                code = self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                code = self.process.wait(30)
        if self.slack is not None:
            self.slack.stop()
        return code

    def log_tail(self, chars: int = 4000) -> str:
        return (self.tmp / "up.log").read_text(errors="replace")[-chars:]

    # --- reading it -----------------------------------------------------------------------------

    def api(self, method: str, path: str, base: int = 0, **kwargs: Any) -> httpx.Response:
        """A request to web instance `base`, or to the other one when it does not answer (being restarted)."""
        order = [base, *(i for i in range(INSTANCES) if i != base)]
        for i in order:
            try:
                return httpx.request(method, f"{self.bases[i]}{path}", timeout=10,
                                     headers={"Authorization": f"Bearer {self.token}"}, **kwargs)
            except httpx.ConnectError:  # not sent: safe to send to the other instance
                if i == order[-1]:
                    raise
        raise AssertionError("unreachable")

    def healthy(self, base: int = 0) -> bool:
        try:
            return httpx.get(f"{self.bases[base]}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def instances(self, fresh_s: float = 2.0) -> dict[str, dict[str, Any]]:
        """Instance name → its row, for those heard from within `fresh_s`."""
        with psycopg.connect(self.database_url, connect_timeout=2) as conn:
            rows = conn.execute("SELECT instance, kind, pid, leads FROM worker_instances"
                                " WHERE seen_at > now() - make_interval(secs => %s)", (fresh_s,)).fetchall()
        return {name: {"kind": kind, "pid": pid, "leads": leads} for name, kind, pid, leads in rows}

    def missing_instances(self) -> str:
        found = self.instances()
        expected = {f"{kind}-{i}@" for kind in KINDS for i in range(1, INSTANCES + 1)}
        absent = sorted(e.rstrip("@") for e in expected if not any(name.startswith(e) for name in found))
        return f"not heard from within 2 s: {', '.join(absent)} ({len(found)} of {len(expected)} are)" if absent else ""

    def unled(self, conn: psycopg.Connection | None = None, since: float = 0.0) -> set[str]:
        """The decision domains without a leader heard from within 2 s (and since `since`, a wall time)."""
        from web.health import DOMAINS

        if conn is not None:
            return set(DOMAINS) - {row[0] for row in conn.execute(DOMAINS_LED, (since,))}
        with psycopg.connect(self.database_url, connect_timeout=2) as fresh:
            return self.unled(fresh, since)

    def led(self, conn: psycopg.Connection | None = None, since: float = 0.0) -> bool:
        """Every decision domain has a leader heard from within 2 s (and since `since`, a wall time)."""
        return not self.unled(conn, since)

    def replica_problems(self) -> list[str]:
        """What keeps EVENTS, TELEMETRY and TELEMETRY_PARTS from three current replicas (empty: nothing)."""

        async def ask() -> list[str]:
            nc = await bus.connect(self.nats_url(), "chaos-probe", 2, allow_reconnect=False)
            try:
                js, problems = nc.jetstream(timeout=2), []
                for stream in (bus.EVENTS_STREAM, bus.TELEMETRY_STREAM, bus.TELEMETRY_PARTS_STREAM):
                    cluster = (await js.stream_info(stream)).cluster
                    if cluster is None or cluster.leader is None:
                        problems.append(f"{stream} has no leader")
                        continue
                    behind = [r.name for r in cluster.replicas or [] if not r.current or r.offline]
                    if len(cluster.replicas or []) != 2 or behind:
                        problems.append(f"{stream}: {len(cluster.replicas or [])} replicas besides the leader,"
                                        f" behind or offline: {', '.join(behind) or 'none'}")
                return problems
            finally:
                await nc.close()

        return asyncio.run(asyncio.wait_for(ask(), 10))

    def replicas_current(self) -> bool:
        return not self.replica_problems()

    def whole(self) -> bool:
        """Serving and deciding everything again: every domain led, /health 200 (on a web instance),
        every JetStream replica current."""
        return self.led() and any(self.healthy(i) for i in range(INSTANCES)) and self.replicas_current()

    def full_strength(self, restarted: tuple[str, int] | None = None) -> bool:
        """Whole, and every instance running again (the killed one restarted by `up`)."""
        found = self.instances()
        if len(found) != len(KINDS) * INSTANCES:
            return False
        if restarted is not None and found.get(restarted[0], {}).get("pid") in (None, restarted[1]):
            return False
        return all(self.healthy(i) for i in range(INSTANCES)) and self.whole()

    def missing(self, restarted: tuple[str, int] | None = None) -> str:
        """What keeps the system from being whole (and at full strength), in words."""
        parts = []
        for describe in (lambda: f"no leader heard from for {', '.join(sorted(u))}" if (u := self.unled()) else "",
                         lambda: "; ".join(self.replica_problems()),
                         lambda: "" if all(ok := [self.healthy(i) for i in range(INSTANCES)]) else
                         f"/health not 200 on web instance(s) {[i + 1 for i, up in enumerate(ok) if not up]}",
                         self.missing_instances,
                         lambda: f"{restarted[0]} still has its old pid {restarted[1]} or none" if restarted and
                         self.instances().get(restarted[0], {}).get("pid") in (None, restarted[1]) else ""):
            try:
                if text := describe():
                    parts.append(text)
            except Exception as exc:  # noqa: BLE001 - a server down: say so and go on
                parts.append(f"({type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''})")
        return "; ".join(parts)

    def pid_of(self, instance: str) -> int:
        return int(self.instances()[instance]["pid"])

    def leader_of(self, domain: str) -> tuple[str, int]:
        for name, row in self.instances().items():
            if domain in row["leads"]:
                return name, int(row["pid"])
        raise LookupError(f"no leader of {domain}")


def _port_free(port: int) -> bool:
    from infra.embedded import port_is_free

    return port_is_free(port)


# --------------------------------------------------------------------------- jobs

def training_file(stack: Stack, variant: int) -> str:
    """A training file of its own for each job (a file trains one active job at a time): the shipped
    sample's conversations (the first `stack.conversations`, or all), its bytes differing only in
    whitespace, so that every job learns the same."""
    sample = json.loads((ROOT / "samples" / "financial-advisory.json").read_text())
    if stack.conversations is not None:
        sample["conversations"] = sample["conversations"][:stack.conversations]
    body = json.dumps(sample, indent=2) + " " * variant + "\n"
    added = stack.api("POST", "/api/files", files={"file": (f"chaos-{variant:03d}.json", body.encode())})
    if added.status_code not in (200, 201):
        raise RuntimeError(f"uploading a training file: {added.status_code} {added.text}")
    return str(added.json()["id"])


def start_job(stack: Stack, name: str, variant: int) -> str:
    file_id = training_file(stack, variant)
    created = stack.api("POST", "/api/jobs", json={"name": name, "training_file_id": file_id,
                                                   "preset": "conservative"})
    if created.status_code != 201:
        raise RuntimeError(f"creating {name}: {created.status_code} {created.text}")
    return str(created.json()["id"])


def job_statuses(stack: Stack, jobs: list[str]) -> dict[str, str]:
    """Each job's status in the jobs read model."""
    with psycopg.connect(stack.database_url, connect_timeout=2) as conn:
        found = dict(conn.execute("SELECT id::text, status FROM jobs WHERE id = ANY(%s::uuid[])", (jobs,)).fetchall())
    return {job: found.get(job, "not in the read model") for job in jobs}


ENDED = ("completed", "failed", "cancelled")


@dataclass
class Feeder:
    """Keeps `jobs` jobs in flight while the faults run (with `top_up` off, only the first ones),
    and preempts a training pod on request (never the reference's)."""

    stack: Stack
    jobs: int
    top_ups: bool = True
    started: list[str] = field(default_factory=list)
    preempted: int = 0
    last_preempted: dict[str, float] = field(default_factory=dict)  # job → when (its pod may still be stopping)
    preempter: threading.Thread | None = None

    def active(self) -> list[str]:
        return [job for job, status in job_statuses(self.stack, self.started).items() if status not in ENDED]

    def top_up(self) -> None:
        if self.started and not self.top_ups:
            return
        try:
            for _ in range(self.jobs - len(self.active())):
                n = len(self.started) + 1
                self.started.append(start_job(self.stack, f"Chaos job {n:03d}", n))
        except Exception as exc:  # noqa: BLE001 - a fault is under way: the next call tops up
            log(f"  (could not start a job now: {exc})")

    def training(self) -> list[str]:
        with psycopg.connect(self.stack.database_url, connect_timeout=2) as conn:
            rows = conn.execute("SELECT id::text FROM jobs WHERE id = ANY(%s::uuid[]) AND status = 'training'"
                                " AND step > 0", (self.started,)).fetchall()
        return [row[0] for row in rows]

    def preempt_soon(self, timeout: float = 300.0) -> threading.Thread:
        """One preemption for sure, as soon as a chaos job trains, in a thread of its own: the faults
        start meanwhile (pods take a while to boot). `joined_preemption()` waits for it."""

        def first() -> None:
            deadline = time.monotonic() + timeout
            while not self.preempted and time.monotonic() < deadline:
                with contextlib.suppress(Exception):  # a fault under way: the next round of the loop
                    if self.training():
                        self.preempt()
                time.sleep(0.3)

        self.preempter = threading.Thread(target=first, name="preempter", daemon=True)
        self.preempter.start()
        return self.preempter

    def joined_preemption(self, timeout: float = 300.0) -> None:
        if self.preempter is not None:
            self.preempter.join(CLOCK.left(timeout))
        if not self.preempted:
            raise PhaseTimeout(timed_out("a chaos job training, to preempt its pod", timeout,
                                         lambda: str(job_statuses(self.stack, self.started)), self.stack.log_tail))

    def preempt(self) -> bool:
        """SIGTERM to the pod of a training job (the local provider's fault), through the API."""
        training = [job for job in self.training() if time.monotonic() - self.last_preempted.get(job, -1e9) > 30]
        random.shuffle(training)
        for job in training:
            try:
                answer = self.stack.api("POST", f"/api/jobs/{job}/faults", json={"action": "preempt"})
            except httpx.HTTPError as exc:
                log(f"  (preempting {job[:8]}: {exc})")
                continue
            if answer.status_code == 200:
                self.preempted += 1
                self.last_preempted[job] = time.monotonic()
                log(f"  preempted the pod of {job[:8]}")
                return True
            log(f"  (preempting {job[:8]}: {answer.status_code} {answer.text[:120]})")
        return False


# --------------------------------------------------------------------------- faults

@dataclass
class Recovery:
    """Seconds from the fault until every domain was led again, until the system was whole again
    (serving and deciding everything), and until it was at full strength (every instance back)."""

    fault: str
    led_s: float | None
    whole_s: float
    full_s: float


def measure(stack: Stack, fault: str, started: float, restarted: tuple[str, int] | None = None,
            timeout: float = 180.0) -> Recovery:
    """Times the recovery; waits for full strength unless `stack.full_each` is off (a quicker run:
    the next fault comes once the system is whole; full strength is awaited once at the end)."""
    CLOCK.phase = fault
    led_s = whole_s = None
    bound = CLOCK.left(timeout)
    deadline, since = started + bound, time.time() - (time.monotonic() - started)
    watching = stack.watch  # an open connection: the take-over is timed to a few tens of ms
    while led_s is None and time.monotonic() < deadline:
        try:
            if stack.led(watching, since):
                led_s = time.monotonic() - started
        except Exception:  # noqa: BLE001 - PostgreSQL restarting: a fresh connection when it is back
            led_s = None
            try:
                watching = stack.watch = psycopg.connect(stack.database_url, autocommit=True, connect_timeout=1)
            except psycopg.OperationalError:
                pass
        time.sleep(0.02)
    while time.monotonic() < deadline:
        try:
            if whole_s is None and stack.whole():
                whole_s = time.monotonic() - started
            if whole_s is not None and not stack.full_each:
                log(f"  {fault}: led again after {_s(led_s)}, whole after {whole_s:.1f} s")
                return Recovery(fault, led_s, whole_s, float("nan"))
            if whole_s is not None and stack.full_strength(restarted):
                recovery = Recovery(fault, led_s, whole_s, time.monotonic() - started)
                log(f"  {fault}: led again after {_s(recovery.led_s)}, whole after {recovery.whole_s:.1f} s,"
                    f" full strength after {recovery.full_s:.1f} s")
                return recovery
        except Exception:  # noqa: BLE001 - servers restarting answer with errors meanwhile
            pass
        time.sleep(0.1)
    goal = "whole again" if whole_s is None or not stack.full_each else "back to full strength"
    raise PhaseTimeout(timed_out(f"the system to be {goal}", bound, lambda: stack.missing(restarted), stack.log_tail))


def every_instance_of(stack: Stack, kind: str) -> None:
    """Before a fault on a kind, its instances running (a quick run does not wait for a restarted one
    after each fault): a leader's take-over needs a standby."""
    wait_for(lambda: len([r for r in stack.instances().values() if r["kind"] == kind]) == INSTANCES, 240,
             f"every {kind} instance running before the fault", missing=stack.missing_instances, tail=stack.log_tail)


def kill_worker(stack: Stack, instance: str) -> Recovery:
    CLOCK.phase = f"SIGKILL {instance}"
    every_instance_of(stack, instance.split("-")[0])
    pid = stack.pid_of(instance)
    started = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    return measure(stack, f"SIGKILL {instance.split('@')[0]}", started, restarted=(instance, pid))


def kill_nats_node(stack: Stack, node: str = "node-2") -> Recovery:
    CLOCK.phase = f"SIGKILL nats {node}"
    pid = int((stack.state / "nats" / f"nats-{node}.pid").read_text().strip())
    started = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 10, f"nats {node} (pid {pid}) to die", 0.05)
    return measure(stack, f"SIGKILL nats {node}", started)


def restart_postgres(stack: Stack) -> Recovery:
    CLOCK.phase = "restart PostgreSQL"
    pid = int((stack.state / "pg" / "postmaster.pid").read_text().splitlines()[0])
    started = time.monotonic()
    os.kill(pid, signal.SIGINT)  # fast shutdown: sessions end; `up` starts it again
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 30, f"PostgreSQL (pid {pid}) to stop", 0.05)
    return measure(stack, "restart PostgreSQL", started)


def freeze_relay_leader(stack: Stack) -> Recovery:
    CLOCK.phase = f"SIGSTOP relay leader {stack.lease_s + 2:.0f} s"
    every_instance_of(stack, "relay")
    name, pid = wait_for(lambda: stack.leader_of("relay"), 30, "a relay leader to freeze",
                         missing=lambda: stack.missing())
    started = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(lambda: stack.leader_of("relay")[0] != name, stack.lease_s + 30,
                 f"a standby to lead the relay while {name} is frozen", 0.05,
                 missing=lambda: f"relay instances: {relays(stack)}", tail=stack.log_tail)
        took_over = time.monotonic() - started
        time.sleep(max(0.0, stack.lease_s + 2.0 - (time.monotonic() - started)))  # frozen past its lease
    finally:
        os.kill(pid, signal.SIGCONT)
    recovery = measure(stack, f"SIGSTOP relay leader {stack.lease_s + 2:.0f} s", started, restarted=(name, pid))
    recovery.led_s = recovery.whole_s = took_over  # the standby led (and published) while the leader was frozen
    return recovery


def relays(stack: Stack) -> dict[str, dict[str, Any]]:
    return {name: row for name, row in stack.instances(5).items() if row["kind"] == "relay"}


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _s(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.1f} s"  # None, NaN: not measured


def one_round(stack: Stack, feeder: Feeder, round_no: int, every_instance: bool = True) -> list[Recovery]:
    """`every_instance`: SIGKILL each of the ten worker instances; else one of each kind (the relay's
    and provisioning's leaders, an instance of each other kind)."""
    log(f"round {round_no}")
    CLOCK.phase = f"round {round_no}: choosing the instances"
    found: list[Recovery] = []
    instances = sorted(stack.instances())
    if not every_instance:
        picks = {wait_for(lambda d=domain: stack.leader_of(d), 60, f"a leader of {domain}",
                          missing=lambda: stack.missing())[0] for domain in ("relay", "provisioning")}
        host = next(iter(picks)).split("@")[1]
        picks |= {f"{kind}-1@{host}" for kind in KINDS if not any(p.startswith(f"{kind}-") for p in picks)}
        instances = sorted(picks)
    for n, instance in enumerate(instances):
        feeder.top_up()
        if n % 3 == 0:
            feeder.preempt()
        found.append(kill_worker(stack, instance))
    feeder.top_up()
    found.append(kill_nats_node(stack, f"node-{1 + round_no % 3}"))
    feeder.preempt()
    found.append(restart_postgres(stack))
    feeder.top_up()
    found.append(freeze_relay_leader(stack))
    return found


# --------------------------------------------------------------------------- checks

@dataclass
class Checks:
    failures: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str, detail: str = "") -> None:
        (self.passed if ok else self.failures).append(what if ok else f"{what}: {detail}")
        log(f"  {'ok  ' if ok else 'FAIL'} {what}{'' if ok else ': ' + detail}")


def events(conn: psycopg.Connection, topic_like: str) -> list[tuple[str, int, dict]]:
    rows = conn.execute("SELECT originator_id::text, originator_version, state FROM pipeline_events"
                        " WHERE topic LIKE %s ORDER BY notification_id", (topic_like,)).fetchall()
    return [(job, version, json.loads(state)) for job, version, state in rows]


def _data(value: Any) -> Any:
    return value["_data_"] if isinstance(value, dict) and "_data_" in value else value


def adapter_digest(stack: Stack, ref: ArtifactRef) -> str:
    """SHA-256 of the adapter's weights (the tar's own bytes carry file times)."""

    async def fetch() -> bytes:
        nc = await bus.connect(stack.nats_url(), "chaos-check")
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = await ObjectStore(nc.jetstream()).get_file(ref, Path(tmp) / "adapter.tar")
                return path.read_bytes()
        finally:
            await nc.close()

    try:
        body = asyncio.run(asyncio.wait_for(fetch(), CLOCK.left(120)))
    except TimeoutError:
        raise PhaseTimeout(timed_out(f"the adapter {ref.key} from the object store", CLOCK.left(120))) from None
    digest = hashlib.sha256()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            if member.isfile() and member.name.endswith(".safetensors"):
                digest.update(member.name.rsplit("/", 1)[-1].encode())
                digest.update(tar.extractfile(member).read())  # type: ignore[union-attr]
    return digest.hexdigest()


def completed_adapter(conn: psycopg.Connection, job_id: str) -> ArtifactRef | None:
    row = conn.execute("SELECT state FROM pipeline_events WHERE originator_id = %s AND topic = 'TrainingJob.Completed'",
                       (job_id,)).fetchone()
    if row is None:
        return None
    adapter = _data(json.loads(row[0])["adapter"])
    return ArtifactRef(**adapter)


def settled(stack: Stack, jobs: list[str]) -> bool:
    """Every pod of the jobs stopped and each job's reservation released (its last charge is made
    when its last pod stops, after the job completed)."""
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        started = Counter(job for job, _, _ in events(conn, "TrainingJob.PodStarted") if job in jobs)
        stopped = Counter(job for job, _, _ in events(conn, "TrainingJob.PodStopped") if job in jobs)
        released = {str(uuid.UUID(str(_data(s["job_id"])))) for _, _, s in events(conn, "Budget.Released")}
    return started == stopped and set(jobs) <= released


def check_all(stack: Stack, reference_job: str, jobs: list[str], steps: int) -> Checks:
    checks = Checks()
    CLOCK.phase = "checks"
    log("checks")
    everything = [reference_job, *jobs]
    with psycopg.connect(stack.database_url, autocommit=True, connect_timeout=10) as conn:
        statuses = job_statuses(stack, everything)
        not_done = {j[:8]: s for j, s in statuses.items() if s != "completed"}
        checks.check(not not_done, f"all {len(everything)} jobs completed", str(not_done))
        pods = Counter(job for job, _, _ in events(conn, "TrainingJob.PodStarted"))
        ref = completed_adapter(conn, reference_job)
        checks.check(ref is not None and pods[reference_job] == 1,
                     "the reference job completed undisturbed, on one pod",
                     f"status {statuses[reference_job]}, {pods[reference_job]} pods")
        reference = adapter_digest(stack, ref) if ref is not None else ""
        digests = {job: adapter_digest(stack, ref) for job in jobs if (ref := completed_adapter(conn, job))}
        differing = {j[:8]: d[:12] for j, d in digests.items() if d != reference}
        checks.check(bool(reference) and not differing and len(digests) == len(jobs),
                     f"every adapter equals the undisturbed run's ({reference[:12] or 'none'})",
                     f"{differing}, {len(jobs) - len(digests)} without an adapter")
        check_metrics(conn, everything, steps, checks)
        check_spend(conn, everything, checks)
        check_pods(conn, everything, checks)
        check_notifications(conn, stack, everything, checks)
    timeout = CLOCK.left(600)
    try:
        verify = subprocess.run([sys.executable, "-m", "pipeline", "audit", "verify", "--wait", "60"], cwd=ROOT,
                                env=stack.env | {"DATABASE_URL": stack.database_url, "NATS_URL": stack.nats_url()},
                                capture_output=True, text=True, timeout=timeout)
        checks.check(verify.returncode == 0, "pipeline audit verify: no difference",
                     (verify.stdout + verify.stderr)[-2000:])
    except subprocess.TimeoutExpired:
        checks.check(False, "pipeline audit verify: no difference", timed_out("pipeline audit verify", timeout))
    return checks


def check_metrics(conn: psycopg.Connection, jobs: list[str], steps: int, checks: Checks) -> None:
    wrong = {}
    for job in jobs:
        found = [row[0] for row in conn.execute("SELECT step FROM job_metrics WHERE job_id = %s AND loss IS NOT NULL"
                                                " ORDER BY step", (job,))]
        if found != list(range(1, steps + 1)):
            missing = sorted(set(range(1, steps + 1)) - set(found))
            wrong[job[:8]] = f"{len(found)} steps, missing {missing[:5]}, repeated {len(found) - len(set(found))}"
    checks.check(not wrong, f"every job's metric history holds steps 1..{steps} once each", str(wrong))


def check_spend(conn: psycopg.Connection, jobs: list[str], checks: Checks) -> None:
    """The budget's charges of each job (Budget.SpendRecorded) add up to its pods' lifetimes × rates."""
    charged: Counter[str] = Counter()
    for _, _, state in events(conn, "Budget.SpendRecorded"):
        charged[str(uuid.UUID(str(_data(state["job_id"]))))] += Decimal(_data(state["amount"]))
    started = {(job, _data(s["pod_id"])): s for job, _, s in events(conn, "TrainingJob.PodStarted")}
    stopped = {(job, _data(s["pod_id"])): s for job, _, s in events(conn, "TrainingJob.PodStopped")}
    wrong = {}
    for job in jobs:
        ledger: Decimal | None = Decimal(0)
        for (owner, pod), start in started.items():
            if owner != job:
                continue
            stop = stopped.get((owner, pod))
            if stop is None:
                ledger = None
                break
            seconds = (datetime.fromisoformat(_data(stop["at"])) - datetime.fromisoformat(_data(start["at"])))
            assert ledger is not None
            ledger += Decimal(str(seconds.total_seconds())) * Decimal(_data(start["hourly_rate"])) / 3600
        if ledger is None:
            wrong[job[:8]] = "a pod never stopped"
        elif abs(ledger - charged[job]) > Decimal("0.000001"):
            wrong[job[:8]] = f"charged {charged[job]} for {ledger:.6f} of pod time"
    checks.check(not wrong, "every job's budget charges = its pod-seconds × rate, counted once", str(wrong))


def check_pods(conn: psycopg.Connection, jobs: list[str], checks: Checks) -> None:
    per_attempt = Counter((job, _data(s["attempt"])) for job, _, s in events(conn, "TrainingJob.PodStarted")
                          if job in jobs)
    provisioned = Counter((job, _data(s["attempt"])) for job, _, s in events(conn, "TrainingJob.ProvisioningStarted")
                          if job in jobs)
    twice = {f"{j[:8]}#{a}": n for (j, a), n in (per_attempt + provisioned).items() if n > 2
             or per_attempt[(j, a)] > 1 or provisioned[(j, a)] > 1}
    checks.check(not twice, f"one pod per attempt ({sum(per_attempt.values())} pods for {len(jobs)} jobs)",
                 str(twice))


def check_notifications(conn: psycopg.Connection, stack: Stack, jobs: list[str], checks: Checks) -> None:
    assert stack.slack is not None
    posts = [p["text"] for p in stack.slack.received]
    completions = Counter(job for job in jobs for text in posts if job in text and "completed" in text.lower())
    sent = conn.execute("SELECT count(*) FROM notification_deliveries WHERE channel = 'slack' AND status = 'sent'"
                        ).fetchone()[0]
    pending = conn.execute("SELECT count(*) FROM notification_deliveries WHERE status = 'pending'").fetchone()[0]
    wrong = {j[:8]: completions[j] for j in jobs if completions[j] != 1}
    checks.check(not wrong and len(posts) == sent and pending == 0,
                 f"every notification delivered once ({len(posts)} Slack posts, {sent} sent in the ledger)",
                 f"completion posts per job {wrong}, posts {len(posts)} vs ledger {sent}, pending {pending}")


# --------------------------------------------------------------------------- the run

@dataclass
class Report:
    recoveries: list[Recovery]
    checks: Checks
    preempted: int
    jobs: int

    def table(self) -> str:
        by_kind: dict[str, list[Recovery]] = {}
        for r in self.recoveries:
            kind = r.fault.split(" ")[0] + " " + r.fault.split(" ")[1].split("-")[0]
            by_kind.setdefault(kind, []).append(r)
        lines = [f"{'fault':32s} {'n':>3} {'led p50':>8} {'whole p50':>10} {'whole p99':>10} {'full p50':>9}"
                 f" {'full max':>9}"]
        for kind, found in by_kind.items():
            whole = sorted(r.whole_s for r in found)
            full = sorted(r.full_s for r in found if r.full_s == r.full_s) or [float("nan")]  # NaN: not awaited
            led = sorted(r.led_s for r in found if r.led_s is not None)
            lines.append(f"{kind:32s} {len(found):>3} {_s(statistics.median(led) if led else None):>8}"
                         f" {statistics.median(whole):>8.1f} s {percentile(whole, 0.99):>8.1f} s"
                         f" {_s(statistics.median(full)):>9} {_s(full[-1]):>9}")
        losses = sorted(r.whole_s for r in self.recoveries if not r.fault.startswith(("restart", "SIGSTOP")))
        p99 = percentile(losses, 0.99)
        lines.append(f"worker or NATS node loss, p99 whole again: {p99:.1f} s (target < {TARGET_S:.0f} s):"
                     f" {'PASS' if p99 < TARGET_S else 'FAIL'}")
        return "\n".join(lines)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run(tmp: Path, rounds: int = 1, steps: int = 60, jobs: int = 3, lease_s: float = 5.0,
        every_instance: bool = True, full_each: bool = True, conversations: int | None = None,
        top_ups: bool = True, budget_s: float | None = None) -> Report:
    """`conversations`: of the sample, per training file (fewer: quicker pods); `top_ups` off: only
    the first `jobs` jobs (and the reference) train; `budget_s`: for the whole run, every wait
    included (PhaseTimeout when it is spent)."""
    global CLOCK
    CLOCK = Clock(budget_s)
    stack = Stack(tmp, steps, lease_s, full_each=full_each, conversations=conversations)
    try:
        stack.start()
        CLOCK.phase = "the jobs"
        log(f"stack up: {' '.join(stack.bases)}; load average {os.getloadavg()[0]:.1f}")
        reference_job = start_job(stack, "Undisturbed reference", 0)
        feeder = Feeder(stack, jobs, top_ups)
        feeder.top_up()
        feeder.preempt_soon()
        recoveries = [r for n in range(1, rounds + 1) for r in one_round(stack, feeder, n, every_instance)]
        CLOCK.phase = "the first preemption"
        feeder.joined_preemption()
        CLOCK.phase = "after the faults"
        wait_for(stack.full_strength, 300, "every instance back", missing=stack.missing, tail=stack.log_tail)
        log("faults done; waiting for every job to end")
        everything = [reference_job, *feeder.started]
        wait_for(lambda: all(s in ENDED for s in job_statuses(stack, everything).values()), 900, "every job to end",
                 1.0, missing=lambda: str({j[:8]: s for j, s in job_statuses(stack, everything).items()
                                           if s not in ENDED}), tail=stack.log_tail)
        wait_for(lambda: settled(stack, everything), 300, "every pod stopped and every job's budget settled", 1.0,
                 tail=stack.log_tail)
        time.sleep(2.0)  # the last deliveries
        checks = check_all(stack, reference_job, feeder.started, steps)
        return Report(recoveries, checks, feeder.preempted, len(everything))
    finally:
        code = stack.stop()
        log(f"pipeline up stopped with {code} ({time.monotonic() - CLOCK.started:.0f} s in all)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=60, help="training steps per job (60)")
    parser.add_argument("--jobs", type=int, default=3, help="jobs in flight during the faults (3)")
    parser.add_argument("--lease", type=float, default=5.0, help="PIPELINE_LEASE_S (5)")
    parser.add_argument("--conversations", type=int, default=None,
                        help="conversations of the sample per training file (all 300; fewer: quicker pods, >= 50)")
    parser.add_argument("--budget", type=float, default=None, help="seconds for the whole run (none)")
    parser.add_argument("--quick", action="store_true",
                        help="one SIGKILL per worker kind, the next fault once the system is whole (as the test)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="chaos-"))
    log(f"scratch folder {tmp}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    report = run(tmp, args.rounds, args.steps, args.jobs, args.lease, every_instance=not args.quick,
                 full_each=not args.quick, conversations=args.conversations, budget_s=args.budget)
    print(f"\n{report.jobs} jobs, {report.preempted} pod preemptions injected, {len(report.recoveries)} faults")
    print(report.table())
    print(f"checks: {len(report.checks.passed)} passed, {len(report.checks.failures)} failed")
    for failure in report.checks.failures:
        print(f"  FAIL {failure}")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if not args.keep and not report.checks.failures:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if report.checks.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
