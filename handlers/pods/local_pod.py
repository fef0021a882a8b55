"""A local pod: its host process (`python -m handlers.pods.local_pod STATE_DIR POD_ID`), which runs
the GPU agent and records the agent's pid and, when it ends, its exit status, and the pod's record
in the provider's state directory. A pod so outlives the handlers process that started it and the
next one adopts it, as a RunPod pod keeps running and tells its status to whoever asks.

Standard library only (and infra/processes.py): a host process starts for every pod."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from infra.processes import Process

STOP_GRACE_S = 5.0  # SIGTERM, then SIGKILL: RunPod gives a spot pod 5 s
AGENT_MODULE = "gpu_agent"  # `python -m gpu_agent`: the pod image's entry point too (docker/agent/Dockerfile)


@dataclass(frozen=True)
class PodRecord:
    """What the provider writes when it starts a pod; the host adds `<pod>.agent` and `<pod>.exit`."""

    pod_id: str
    job_id: str
    attempt: int
    started_at: str
    host: Process

    def save(self, state_dir: Path) -> None:
        _write(state_dir / f"{self.pod_id}.json", asdict(self))

    @classmethod
    def load(cls, state_dir: Path, pod_id: str) -> PodRecord | None:
        try:
            raw = json.loads((state_dir / f"{pod_id}.json").read_text())
            return cls(raw["pod_id"], raw["job_id"], int(raw["attempt"]), raw["started_at"], Process(**raw["host"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @classmethod
    def all(cls, state_dir: Path) -> list[PodRecord]:
        found = (cls.load(state_dir, path.stem) for path in sorted(state_dir.glob("*.json")))
        return [record for record in found if record is not None]

    def agent(self, state_dir: Path) -> Process | None:
        try:
            return Process(**json.loads((state_dir / f"{self.pod_id}.agent").read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def exit_status(self, state_dir: Path) -> tuple[int, datetime] | None:
        """The agent's exit code (negative: the signal that ended it) and when, once it ended."""
        try:
            raw = json.loads((state_dir / f"{self.pod_id}.exit").read_text())
            return int(raw["exit_code"]), datetime.fromisoformat(raw["at"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def forget(self, state_dir: Path) -> None:
        for suffix in (".json", ".agent", ".exit"):
            (state_dir / f"{self.pod_id}{suffix}").unlink(missing_ok=True)


def _write(path: Path, value: dict) -> None:
    """Atomically: a reader never sees half a record."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(value))
    partial.replace(path)


def main(argv: list[str]) -> int:
    state_dir, pod_id = Path(argv[0]), argv[1]
    agent: subprocess.Popen | None = None
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()
        if agent is not None:
            _stop(agent)

    signal.signal(signal.SIGTERM, stop)
    agent = subprocess.Popen([sys.executable, "-m", AGENT_MODULE], stdin=subprocess.DEVNULL)
    _write(state_dir / f"{pod_id}.agent", asdict(Process.of(agent.pid)))
    if stopping.is_set():  # stopped while the agent was being started
        _stop(agent)
    code = agent.wait()
    _write(state_dir / f"{pod_id}.exit", {"exit_code": code, "at": datetime.now(timezone.utc).isoformat()})
    return 0


def _stop(agent: subprocess.Popen) -> None:
    """A pod stop: SIGTERM, then SIGKILL after the grace, kept here so that it completes whoever asked."""
    agent.send_signal(signal.SIGTERM)
    def kill() -> None:
        if agent.poll() is None:
            agent.kill()

    timer = threading.Timer(STOP_GRACE_S, kill)
    timer.daemon = True
    timer.start()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
