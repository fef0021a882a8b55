"""`pipeline up`: one process tree (web, relay, projections) supervised until Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from infra import bus
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


def supervise(settings: Settings, services: Services) -> int:
    env = os.environ | {"DATABASE_URL": services.database_url, "NATS_URL": services.nats_url}
    if services.nats_auth_dir is not None:
        env["PIPELINE_NATS_AUTH_DIR"] = str(services.nats_auth_dir.resolve())
    children = [Child(name, [sys.executable, "-m", "pipeline", *argv]) for name, argv in WORKERS.items()]
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
        for child in children:
            if child.process is None and now >= child.next_start:
                child.process = subprocess.Popen(child.argv, env=env)
                child.started_at = now
            elif child.process is not None and child.process.poll() is not None:
                _schedule_restart(child, now)
        time.sleep(0.2)
    _stop_all(children)
    return 0


def _schedule_restart(child: Child, now: float) -> None:
    code = child.process.returncode if child.process else None
    if now - child.started_at > 60:
        child.restarts = 0  # it ran a good while: start the backoff afresh
    delay = min(30.0, 0.5 * 2 ** child.restarts)
    log.warning("%s exited with %s; restarting in %.1fs", child.name, code, delay)
    child.restarts += 1
    child.process = None
    child.next_start = now + delay


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
