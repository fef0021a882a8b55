"""Local pod provider: the GPU agent as a subprocess on this machine's CPU, with the tiny model.
Fault injection for tests and demos: preempt (SIGTERM), kill (SIGKILL), freeze (SIGSTOP: a lost
host), no capacity for the next N requests, slow start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from domain.gpu import OfflinePrices, PricingTier
from handlers.pods.provider import NoCapacityError, Pod, PodExit


class LocalProvider:
    def __init__(self, work_root: Path, threads: int = 1) -> None:
        self.work_root = work_root
        self.threads = threads
        self.processes: dict[str, subprocess.Popen] = {}
        self.no_capacity_left = 0
        self.start_delay_s = 0.0
        self.lock = threading.Lock()

    def create_pod(self, job_id: str, attempt: int, gpu_tier: str, env: dict[str, str]) -> Pod:
        with self.lock:  # spot capacity runs out; on-demand is "guaranteed availability" (FR3.1.3)
            if self.no_capacity_left > 0 and gpu_tier == "spot":
                self.no_capacity_left -= 1
                raise NoCapacityError("All H100 spot instances are currently in use. High demand.")
        time.sleep(self.start_delay_s)
        pod_id = f"local-{uuid.uuid4().hex[:12]}"
        work = self.work_root / job_id / f"attempt-{attempt}"
        work.mkdir(parents=True, exist_ok=True)
        pod_env = os.environ | env | {"RUNPOD_POD_ID": pod_id, "PIPELINE_WORK_DIR": str(work),
                                      "AGENT_THREADS": str(self.threads), "OMP_NUM_THREADS": str(self.threads),
                                      "TOKENIZERS_PARALLELISM": "false"}
        log = open(work / "agent.log", "ab")  # noqa: SIM115 - owned by the child
        process = subprocess.Popen([sys.executable, "-m", "gpu_agent"], env=pod_env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        (work / "pod.pid").write_text(str(process.pid))
        with self.lock:
            self.processes[pod_id] = process
        rate = OfflinePrices().hourly_rate("H100_PCIE_80GB", PricingTier(gpu_tier))
        return Pod(pod_id, Decimal(rate), datetime.now(timezone.utc))

    def terminate(self, pod_id: str, grace_s: float = 5.0) -> None:
        """Like a pod stop: SIGTERM, then SIGKILL after the grace period."""
        process = self.processes.get(pod_id)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        threading.Timer(grace_s, lambda: process.poll() is None and process.kill()).start()

    def preempt(self, pod_id: str) -> None:
        self.terminate(pod_id)

    def kill(self, pod_id: str) -> None:
        process = self.processes.get(pod_id)
        if process is not None and process.poll() is None:
            process.kill()

    def freeze(self, pod_id: str) -> None:
        """A host that is lost without its pod dying: the agent stops (SIGSTOP) and goes silent."""
        process = self.processes.get(pod_id)
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGSTOP)

    def no_capacity(self, requests: int) -> None:
        with self.lock:
            self.no_capacity_left = requests

    def exited(self) -> list[PodExit]:
        now = datetime.now(timezone.utc)
        with self.lock:
            done = [(pod_id, p.returncode) for pod_id, p in self.processes.items() if p.poll() is not None]
            for pod_id, _ in done:
                del self.processes[pod_id]
        return [PodExit(pod_id, code, now) for pod_id, code in done]

    def running(self) -> list[str]:
        with self.lock:
            return [pod_id for pod_id, p in self.processes.items() if p.poll() is None]

    def reap_orphans(self) -> int:
        """Agents left by a previous handlers process that died without stopping them (their jobs
        are recovered on new pods): killed, so they do not train on unseen."""
        killed = 0
        for pid_file in self.work_root.glob("*/attempt-*/pod.pid"):
            try:
                pid = int(pid_file.read_text())
                if b"gpu_agent" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
            except (OSError, ValueError):
                pass
            pid_file.unlink(missing_ok=True)
        return killed

    def stop_all(self) -> None:
        for pod_id in self.running():
            self.kill(pod_id)
