"""Local pod provider: the GPU agent as a subprocess on this machine's CPU, with the tiny model.
Each pod is a host process (handlers/pods/local_pod.py) recorded in the provider's state directory,
so pods outlive a restart of the handlers worker and the next one adopts them. A pod's process
gets only the pod's environment (what the provisioner passes, as a RunPod pod does) and what a
process needs to run here, never the control plane's settings and secrets.
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
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from domain.gpu import OfflinePrices, PricingTier
from handlers.pods.local_pod import PodRecord
from handlers.pods.provider import NoCapacityError, Pod, PodExit
from infra.processes import Process

# What a process needs from this machine's environment to run Python and torch here; everything
# else (DATABASE_URL, PIPELINE_*, SMTP, approval and RunPod secrets, …) stays with the control plane.
PROCESS_ENV = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP",
    "PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "VIRTUAL_ENV", "CONDA_PREFIX",
    "LD_LIBRARY_PATH", "SSL_CERT_FILE", "SSL_CERT_DIR", "CUDA_VISIBLE_DEVICES", "XDG_CACHE_HOME",
    "HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "TORCH_HOME",
})
PROCESS_ENV_PREFIXES = ("LC_", "OMP_", "MKL_", "OPENBLAS_", "KMP_")


def process_env(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k in PROCESS_ENV or k.startswith(PROCESS_ENV_PREFIXES)}


class LocalProvider:
    """Tracks the pods it started or adopted; reaps (as their parent) the host processes it started."""

    def __init__(self, work_root: Path, threads: int = 1) -> None:
        self.work_root = work_root
        self.state_dir = work_root / "_pods"
        self.threads = threads
        self.pods: dict[str, PodRecord] = {}
        self.children: dict[str, subprocess.Popen] = {}
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
        self.state_dir.mkdir(parents=True, exist_ok=True)
        pod_env = process_env(os.environ) | env | {
            "RUNPOD_POD_ID": pod_id, "PIPELINE_WORK_DIR": str(work), "AGENT_THREADS": str(self.threads),
            "OMP_NUM_THREADS": str(self.threads), "TOKENIZERS_PARALLELISM": "false"}
        started_at = datetime.now(timezone.utc)
        with open(work / "agent.log", "ab") as log:
            host = subprocess.Popen([sys.executable, "-m", "handlers.pods.local_pod", str(self.state_dir), pod_id],
                                    env=pod_env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        record = PodRecord(pod_id, job_id, attempt, started_at.isoformat(), Process.of(host.pid))
        record.save(self.state_dir)
        with self.lock:
            self.pods[pod_id], self.children[pod_id] = record, host
        rate = OfflinePrices().hourly_rate("H100_PCIE_80GB", PricingTier(gpu_tier))
        return Pod(pod_id, Decimal(rate), started_at)

    def terminate(self, pod_id: str) -> None:
        """Like a pod stop: SIGTERM, then SIGKILL after the grace period (kept by the pod's host)."""
        if (record := self.pods.get(pod_id)) is not None:
            record.host.signal(signal.SIGTERM)

    def preempt(self, pod_id: str) -> None:
        self.terminate(pod_id)

    def kill(self, pod_id: str) -> None:
        if (record := self.pods.get(pod_id)) is not None:
            self._signal_agent(record, signal.SIGKILL)

    def freeze(self, pod_id: str) -> None:
        """A host that is lost without its pod dying: the agent stops (SIGSTOP) and goes silent."""
        if (record := self.pods.get(pod_id)) is not None:
            self._signal_agent(record, signal.SIGSTOP)

    def _signal_agent(self, record: PodRecord, signum: int) -> None:
        agent = record.agent(self.state_dir)
        if agent is None or not agent.signal(signum):  # not started yet: the whole pod
            record.host.signal(signum, group=True)

    def no_capacity(self, requests: int) -> None:
        with self.lock:
            self.no_capacity_left = requests

    def exited(self) -> list[PodExit]:
        """Pods that ended, each once, with the agent's exit code and time (code None: the pod's
        host itself died, or the pod ended unwatched without a record of it)."""
        now = datetime.now(timezone.utc)
        gone: list[PodExit] = []
        with self.lock:
            for pod_id, record in list(self.pods.items()):
                child = self.children.get(pod_id)
                if child is not None and child.poll() is None:
                    continue
                status = record.exit_status(self.state_dir)
                if child is None and status is None and record.host.alive():
                    continue
                if status is not None:
                    gone.append(PodExit(pod_id, *status))
                else:  # the host was killed (its signal, if it was our child)
                    gone.append(PodExit(pod_id, child.returncode if child is not None else None, now))
                del self.pods[pod_id]
                self.children.pop(pod_id, None)
                record.forget(self.state_dir)
        return gone

    def running(self) -> list[str]:
        with self.lock:
            return [pod_id for pod_id, record in self.pods.items()
                    if record.host.alive() and record.exit_status(self.state_dir) is None]

    def adopt(self, pod_ids: Iterable[str]) -> list[str]:
        """Pods a previous handlers process started, recorded here: tracked again, whether they still
        run or ended unwatched (then `exited()` reports them, with their exit status when known)."""
        adopted = []
        for pod_id in pod_ids:
            if (record := PodRecord.load(self.state_dir, pod_id)) is not None:
                with self.lock:
                    self.pods.setdefault(pod_id, record)
                adopted.append(pod_id)
        return adopted

    def reap_orphans(self) -> int:
        """Recorded pods nobody tracks (a previous process's, not adopted: their job ended meanwhile,
        or the whole stack is stopping) are killed and forgotten. Returns how many were running."""
        killed = 0
        for record in PodRecord.all(self.state_dir) if self.state_dir.is_dir() else []:
            if record.pod_id in self.pods:
                continue
            if record.host.alive():
                killed += 1
            self._kill_pod(record)
            record.forget(self.state_dir)
        return killed

    def stop_all(self) -> None:
        """Every pod this provider tracks, killed (their ends are reported by `exited()`)."""
        with self.lock:
            records = list(self.pods.values())
        for record in records:
            self._kill_pod(record)

    def _kill_pod(self, record: PodRecord) -> None:
        agent = record.agent(self.state_dir)
        if agent is not None:
            agent.signal(signal.SIGKILL)
        record.host.signal(signal.SIGKILL, group=True)
