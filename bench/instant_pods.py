"""The handlers worker (`python -m pipeline handlers run`) with pods that start instantly, for
bench/reaction_time.py: what it measures is the control plane's reaction, not a pod's boot.

    BENCH_PODS_LOG=pods.jsonl DATABASE_URL=... NATS_URL=... python -m bench.instant_pods

Every provider call, and the start of Provisioner.on_event for the topics the bench times, is
appended to BENCH_PODS_LOG as one JSON line with its wall-clock time (`time.time()`, comparable
across processes on one machine): {"op", "job_id", "attempt", "pod_id", "t"}. The worker itself is
the real one: pipeline.workers.run_handlers builds its provider from
`handlers.pods.local.LocalProvider`, replaced here before it runs."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from handlers.pods.provider import NoCapacityError, Pod, PodExit

HOURLY_RATE = Decimal("2.49")
EXIT_SIGTERM, EXIT_SIGKILL = 143, -9


class InstantProvider:
    """LocalProvider's interface (pods, fault injection), with pods that are only names: created
    at once, gone at once when terminated (exit 143) or killed (exit -9)."""

    def __init__(self, work_root: Path, threads: int = 1) -> None:
        self.log = open(os.environ["BENCH_PODS_LOG"], "a", buffering=1)  # noqa: SIM115 - process lifetime
        self.running_pods: dict[str, tuple[str, int]] = {}
        self.gone: list[PodExit] = []
        self.no_capacity_left = 0
        self.start_delay_s = 0.0
        self.lock = threading.Lock()

    def create_pod(self, job_id: str, attempt: int, gpu_tier: str, env: dict[str, str]) -> Pod:
        called = time.time()
        with self.lock:
            if self.no_capacity_left > 0:
                self.no_capacity_left -= 1
                raise NoCapacityError("no capacity (injected)")
            pod_id = f"instant-{uuid.uuid4().hex[:12]}"
            self.running_pods[pod_id] = (job_id, attempt)
        self._record("create", pod_id, job_id, attempt, called)
        return Pod(pod_id, HOURLY_RATE, datetime.now(timezone.utc))

    def terminate(self, pod_id: str) -> None:
        self._stop(pod_id, "terminate", EXIT_SIGTERM)

    def preempt(self, pod_id: str) -> None:
        self._stop(pod_id, "preempt", EXIT_SIGTERM)

    def kill(self, pod_id: str) -> None:
        self._stop(pod_id, "kill", EXIT_SIGKILL)

    def no_capacity(self, requests: int) -> None:
        with self.lock:
            self.no_capacity_left = requests

    def exited(self) -> list[PodExit]:
        with self.lock:
            gone, self.gone = self.gone, []
        return gone

    def running(self) -> list[str]:
        with self.lock:
            return list(self.running_pods)

    def reap_orphans(self) -> int:
        return 0

    def stop_all(self) -> None:
        for pod_id in self.running():
            self.kill(pod_id)

    def _stop(self, pod_id: str, op: str, exit_code: int) -> None:
        called = time.time()
        with self.lock:
            if pod_id not in self.running_pods:
                return
            job_id, attempt = self.running_pods.pop(pod_id)
            self.gone.append(PodExit(pod_id, exit_code, datetime.now(timezone.utc)))
        self._record(op, pod_id, job_id, attempt, called)

    def _record(self, op: str, pod_id: str, job_id: str, attempt: int, t: float) -> None:
        line = json.dumps({"op": op, "job_id": job_id, "attempt": attempt, "pod_id": pod_id, "t": t}) + "\n"
        with self.lock:
            self.log.write(line)


TIMED_TOPICS = ("TrainingJob.Queued", "TrainingJob.Interrupted", "TrainingJob.Completed")


def main() -> int:
    """Also records when Provisioner.on_event starts on the topics the bench times (op
    `on_event:<topic>`, attempt 0), which splits a reaction into delivery and handling."""
    import handlers.pods.local
    from handlers.provisioning import Provisioner
    from pipeline.cli import main as pipeline_main

    handlers.pods.local.LocalProvider = InstantProvider  # type: ignore[misc] - read by run_handlers at call time
    on_event = Provisioner.on_event

    def timed_on_event(self: Provisioner, topic: str, job_id: object) -> None:
        if topic in TIMED_TOPICS:
            self.provider._record(f"on_event:{topic}", "", str(job_id), 0, time.time())
        on_event(self, topic, job_id)

    Provisioner.on_event = timed_on_event  # type: ignore[method-assign]
    return pipeline_main(["handlers", "run"])


if __name__ == "__main__":
    raise SystemExit(main())
