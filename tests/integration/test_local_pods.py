"""The local pod provider with real pods (`python -m gpu_agent` on the CPU): what a pod's process
sees of the control plane's environment, and pods that outlive the handlers process that started
them."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from handlers.pods.local import LocalProvider
from tests.agent_helpers import agent_env, small_training_file, spec, upload
from tests.helpers import wait_for

SECRETS = {"DATABASE_URL": "postgresql://postgres:hunter2@db/pipeline", "PIPELINE_ADMIN_PASSWORD": "admin-secret",
           "PIPELINE_SMTP_PASSWORD": "smtp-secret", "PIPELINE_APPROVAL_SECRET": "approval-secret-0123456789",
           "RUNPOD_API_KEY": "rpa_secret", "PIPELINE_RUNPOD_API_KEY": "rpa_secret2",
           "PIPELINE_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/secret",
           "AWS_SECRET_ACCESS_KEY": "aws-secret", "SOME_SERVICE_TOKEN": "token-secret"}


def pod_processes(pod_id: str) -> dict[int, dict[str, str]]:
    """Every live process of the pod (found by the RUNPOD_POD_ID a pod gets), with its environment."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            raw = (proc / "environ").read_bytes()
        except OSError:
            continue
        env = dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)
        if env.get("RUNPOD_POD_ID") == pod_id:
            found[int(proc.name)] = env
    return found


def agent_of(pod_id: str) -> dict[str, str]:
    def agent() -> dict[str, str] | None:
        for pid, env in pod_processes(pod_id).items():
            if b"gpu_agent" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return env
        return None

    return wait_for(agent, timeout=20, message="the pod's agent process")


@pytest.fixture
def pod_env(nats_server, tmp_path: Path) -> dict[str, str]:
    job_id = str(uuid.uuid4())
    ref = upload(nats_server.url, small_training_file(), tmp_path)
    env = agent_env(job_id, nats_server.url, spec(ref, max_steps=100000), tmp_path / "unused")
    return {k: v for k, v in env.items() if k.startswith(("PIPELINE_", "NATS_"))}


def test_a_local_pod_gets_no_control_plane_secret_only_what_a_process_needs(
    pod_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    provider = LocalProvider(tmp_path / "pods")
    pod = provider.create_pod(pod_env["PIPELINE_JOB_ID"], 1, "spot", pod_env)
    try:
        env = agent_of(pod.pod_id)
        for pid, seen in pod_processes(pod.pod_id).items():
            leaked = {name for name, value in SECRETS.items() if name in seen or value in seen.values()}
            assert leaked == set(), f"process {pid} of the pod sees {sorted(leaked)}"
        assert env["PATH"] == os.environ["PATH"] and env["HOME"] == os.environ["HOME"]
        assert env["NATS_URL"] == pod_env["NATS_URL"] and env["PIPELINE_JOB_ID"] == pod_env["PIPELINE_JOB_ID"]
        assert env["OMP_NUM_THREADS"] == "1"
    finally:
        provider.stop_all()


def agent_pid(pod_id: str) -> int:
    def find() -> int | None:
        return next((pid for pid in pod_processes(pod_id)
                     if b"gpu_agent" in Path(f"/proc/{pid}/cmdline").read_bytes()), None)

    return wait_for(find, timeout=20, message="the pod's agent process")


def blocks_sigterm(pid: int) -> bool:
    """The agent has installed its SIGTERM watcher (it blocks the signal and waits for it)."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return bool(int(status["SigBlk"], 16) & (1 << (15 - 1)))


def test_a_pod_outlives_the_provider_that_started_it_and_the_next_one_adopts_it(
    pod_env: dict[str, str], tmp_path: Path
) -> None:
    first = LocalProvider(tmp_path / "pods")
    pod = first.create_pod(pod_env["PIPELINE_JOB_ID"], 1, "spot", pod_env)
    pid = agent_pid(pod.pod_id)
    second = LocalProvider(tmp_path / "pods")  # the handlers worker restarted: `first` is gone
    try:
        assert second.adopt([pod.pod_id, "local-unknown"]) == [pod.pod_id]
        assert second.reap_orphans() == 0 and second.running() == [pod.pod_id]
        assert agent_pid(pod.pod_id) == pid and second.exited() == []
        wait_for(lambda: blocks_sigterm(pid), timeout=20, message="the agent to handle SIGTERM")
        second.preempt(pod.pod_id)
        (gone,) = wait_for(second.exited, timeout=30, message="the preempted pod's exit")
        assert (gone.pod_id, gone.exit_code) == (pod.pod_id, 143)  # the agent's own exit after SIGTERM
        assert second.running() == []
        wait_for(lambda: pod_processes(pod.pod_id) == {}, timeout=10, message="the pod's processes to end")
    finally:
        second.stop_all()
        first.stop_all()


def test_a_pod_that_died_unwatched_is_reported_with_its_status_and_pods_nobody_adopts_are_reaped(
    pod_env: dict[str, str], tmp_path: Path
) -> None:
    first = LocalProvider(tmp_path / "pods")
    died = first.create_pod(pod_env["PIPELINE_JOB_ID"], 1, "spot", pod_env)
    orphan = first.create_pod(pod_env["PIPELINE_JOB_ID"], 2, "spot", pod_env)
    agent_pid(orphan.pod_id)
    os.kill(agent_pid(died.pod_id), 9)
    second = LocalProvider(tmp_path / "pods")
    try:
        assert second.adopt([died.pod_id]) == [died.pod_id]
        assert second.reap_orphans() == 1
        wait_for(lambda: pod_processes(orphan.pod_id) == {}, timeout=10, message="the orphan pod to end")
        (gone,) = wait_for(second.exited, timeout=10, message="the killed pod's exit")
        assert (gone.pod_id, gone.exit_code) == (died.pod_id, -9)
        assert sorted(p.name for p in (tmp_path / "pods" / "_pods").iterdir()) == []
    finally:
        second.stop_all()
        first.stop_all()
