"""`pipeline up`: one process tree (web, relay, projections, handlers, notifications, and the
embedded servers it started) supervised until Ctrl-C; then every pod is ended."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from infra import bus
from infra.embedded import EmbeddedNats, EmbeddedPostgres
from infra.runtime import Services
from infra.settings import Settings

log = logging.getLogger("pipeline.up")

WORKERS = {
    "relay": ["relay"],
    "projections": ["projections", "run"],
    "handlers": ["handlers", "run"],
    "notifications": ["notifications", "run"],
    "web": ["web"],
}


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)
    env: dict[str, str] = field(default_factory=dict)  # its own: PIPELINE_INSTANCE, a web port


@dataclass
class Server:
    """An embedded server this stack started: restarted like a worker when it dies, on the same
    data directory and port, so that every client reconnects."""

    server: EmbeddedNats | EmbeddedPostgres
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = 0.0
    down_since: float | None = None

    def check(self, now: float) -> None:
        name = self.server.name
        if self.down_since is None:
            if (how := self.server.ended()) is None:
                return
            self.down_since = now
            log.error("%s %s; restarting in %.1fs", name, how, _backoff(self, now))
        elif now >= self.next_start:
            self.started_at = now  # an attempt counts as a start: the backoff grows while it fails
            try:
                self.server.restart()
            except Exception as exc:  # noqa: BLE001 - tried again with backoff
                log.warning("%s: restart failed (%s); trying again in %.1fs", name, exc, _backoff(self, now))
                return
            log.warning("%s is back after %.1fs down", name, time.monotonic() - self.down_since)
            self.down_since = None


def supervise(settings: Settings, services: Services, instances: int = 1) -> int:
    """`instances`: how many of each worker (`pipeline up --instances N`): leaders and standbys
    (infra/leadership.py); web instance i listens on PIPELINE_WEB_PORT + i - 1."""
    env = os.environ | {"DATABASE_URL": services.database_url, "NATS_URL": services.nats_url,
                        "PIPELINE_NATS_REPLICAS": str(settings.runtime.nats_replicas)}
    if services.nats_auth_dir is not None:
        env["PIPELINE_NATS_AUTH_DIR"] = str(services.nats_auth_dir.resolve())
    children = [child for name, argv in WORKERS.items() for child in _instances(settings, name, argv, instances)]
    servers = [Server(server, started_at=time.monotonic()) for server in services.owned]
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print(f"LoRA Pipeline on http://{settings.web.host}:{settings.web.port}  "
          f"(database {services.database_url}, nats {bus.shown(services.nats_url)}; Ctrl-C stops)", flush=True)
    while not stopping:
        now = time.monotonic()
        for server in servers:
            server.check(now)
        for child in children:
            if child.process is None and now >= child.next_start:
                child.process = subprocess.Popen(child.argv, env=env | child.env)
                child.started_at = now
            elif child.process is not None and child.process.poll() is not None:
                _schedule_restart(child, now)
        time.sleep(0.2)
    _stop_all(children)
    _end_pods(settings)
    return 0


def _instances(settings: Settings, name: str, argv: list[str], count: int) -> list[Child]:
    """A worker's instances, each named (in /health) after this host and its place: `relay-2@host`."""
    if count == 1:
        return [Child(name, [sys.executable, "-m", "pipeline", *argv])]
    host = socket.gethostname()
    return [Child(f"{name}-{i}", [sys.executable, "-m", "pipeline", *argv],
                  env={"PIPELINE_INSTANCE": f"{name}-{i}@{host}"}
                  | ({"PIPELINE_WEB_PORT": str(settings.web.port + i - 1)} if name == "web" else {}))
            for i in range(1, count + 1)]


def _schedule_restart(child: Child, now: float) -> None:
    code = child.process.returncode if child.process else None
    log.warning("%s exited with %s; restarting in %.1fs", child.name, code, _backoff(child, now))
    child.process = None


def _backoff(entry: Child | Server, now: float) -> float:
    """0.5 s doubling to 30 s; afresh after a good while (60 s) of running."""
    if now - entry.started_at > 60:
        entry.restarts = 0
    delay = min(30.0, 0.5 * 2 ** entry.restarts)
    entry.restarts += 1
    entry.next_start = now + delay
    return delay


def _end_pods(settings: Settings) -> None:
    """The stack stops: every pod ends with it, whatever failed before. (A worker that stops on its
    own leaves its pods to the next handlers worker, which adopts them.)"""
    from pipeline.workers.handlers import end_pods  # the pod providers' libraries load only here

    try:
        if ended := end_pods(settings):
            log.info("ended %d pod(s)", ended)
    except Exception as exc:  # noqa: BLE001 - RunPod unreachable, …: said in one line
        log.error("could not end the pods: %s", exc)


def _stop_all(children: list[Child], grace: float = 10.0) -> None:
    running = [c.process for c in children if c.process is not None and c.process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in running:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
