"""`pipeline up` heals itself: local pods outlive a restart of the handlers worker and are adopted,
a stack shutdown ends every pod whatever failed before, and the embedded servers are restarted
after they die."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e import api
from tests.e2e.test_recovery import finished, job_events, stack, start_job, topics_of
from tests.e2e.test_up import healthy, interrupt, start_up
from tests.helpers import wait_for


def child_pids(parent: int) -> dict[int, str]:
    """The live children of a process, with their command lines."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent and fields[0] != "Z":
                found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
    return found


def handlers_worker(up: subprocess.Popen) -> int:
    def find() -> int | None:
        return next((pid for pid, cmd in child_pids(up.pid).items() if "pipeline handlers run" in cmd), None)

    return wait_for(find, timeout=30, message="the handlers worker")


def pod_records(env: dict[str, str]) -> list[dict]:
    records = Path(env["PIPELINE_STATE_DIR"]) / "pods" / "_pods"
    return [json.loads(p.read_text()) for p in sorted(records.glob("*.json"))] if records.is_dir() else []


def agent_processes(env: dict[str, str]) -> list[int]:
    """gpu_agent processes of this stack's pods (found by their work directory)."""
    pods = str(Path(env["PIPELINE_STATE_DIR"]).resolve() / "pods")
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if b"gpu_agent" in (proc / "cmdline").read_bytes() and pods.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def progress_steps(env: dict[str, str], job_id: str) -> list[int]:
    return [s["step"] for t, s in job_events(env, job_id) if t == "TrainingJob.ProgressRecorded"]


@pytest.mark.slow
def test_local_pods_outlive_a_restart_of_the_handlers_worker_and_are_adopted(tmp_path: Path) -> None:
    env = stack(tmp_path, PIPELINE_AGENT_MAX_STEPS="600", PIPELINE_AGENT_CHECKPOINT_EVERY="200")
    process, base = start_up(env, tmp_path / "up.log")
    try:
        job_id = start_job(base, "Outlives its handlers")
        wait_for(lambda: progress_steps(env, job_id), timeout=180, interval=0.2, message="training progress")
        (agent,) = agent_processes(env)
        for sig in (signal.SIGKILL, signal.SIGTERM):  # a crash, then a `kill`: the supervisor restarts it
            worker = handlers_worker(process)
            os.kill(worker, sig)
            wait_for(lambda w=worker: handlers_worker(process) != w, timeout=30, message="a new handlers worker")
            seen = len(progress_steps(env, job_id))
            wait_for(lambda n=seen: len(progress_steps(env, job_id)) > n, timeout=60, interval=0.2,
                     message="progress recorded by the new worker")
            assert agent_processes(env) == [agent]
        job = finished(base, job_id)
        assert job["status"] == "completed", (tmp_path / "up.log").read_text()[-3000:]
        wait_for(lambda: "TrainingJob.PodStopped" in topics_of(job_events(env, job_id)), timeout=30,
                 message="the pod's stop recorded")
        topics = topics_of(job_events(env, job_id))
        assert topics.count("TrainingJob.PodStarted") == 1 and topics.count("TrainingJob.PodStopped") == 1
        assert "TrainingJob.Interrupted" not in topics and "TrainingJob.RecoveryStarted" not in topics
        assert pod_records(env) == []
    finally:
        assert interrupt(process) == 0


@pytest.mark.slow
def test_stopping_the_stack_while_nats_and_postgresql_are_down_ends_every_pod(tmp_path: Path) -> None:
    env = stack(tmp_path, PIPELINE_AGENT_MAX_STEPS="100000")
    log = tmp_path / "up.log"
    process, base = start_up(env, log)
    try:
        job_id = start_job(base, "Ends with the stack")
        wait_for(lambda: progress_steps(env, job_id), timeout=180, interval=0.2, message="training progress")
        assert len(agent_processes(env)) == 1 and len(pod_records(env)) == 1
        servers = [server_pid(env, "nats"), server_pid(env, "pg")]
        process.send_signal(signal.SIGSTOP)  # so that it cannot restart them before it is told to stop
        for pid in servers:
            os.kill(pid, signal.SIGKILL)
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGCONT)
        assert process.wait(60) == 0
        assert agent_processes(env) == [] and pod_records(env) == []
        text = log.read_text(errors="replace")
        assert "ended 1 pod(s)" in text and "Traceback" not in text, text[-5000:]
    finally:
        process.send_signal(signal.SIGCONT)
        interrupt(process)


def server_pid(env: dict[str, str], server: str) -> int:
    state = Path(env["PIPELINE_STATE_DIR"])
    pid_file = state / "nats" / "nats.pid" if server == "nats" else state / "pg" / "postmaster.pid"
    return int(pid_file.read_text().split()[0])


def log_lines(log: Path, *words: str) -> list[str]:
    return [line for line in log.read_text(errors="replace").splitlines() if all(w in line for w in words)]


@pytest.mark.slow
def test_the_embedded_nats_server_and_postgresql_are_restarted_after_they_die(tmp_path: Path) -> None:
    env = stack(tmp_path)
    log = tmp_path / "up.log"
    process, base = start_up(env, log)
    try:
        # the sample is seeded and projected before anything dies, so its row must outlive both deaths
        wait_for(lambda: api.get(f"{base}/api/files").json(), timeout=60, message="the seeded sample")
        for server, name in (("nats", "nats-server"), ("pg", "PostgreSQL")):
            dead = server_pid(env, server)
            os.kill(dead, signal.SIGKILL)
            # The supervisor notices (a /health probe may miss the outage: the web's pool waits up to 5 s for a
            # connection, and a restarted server can be back within that)
            wait_for(lambda n=name: log_lines(log, n, "killed by SIGKILL"), timeout=30, interval=0.1,
                     message=f"the supervisor to notice {name} died")
            wait_for(lambda n=name: log_lines(log, n, "is back") and healthy(base), timeout=60, interval=0.2,
                     message=f"{name} back and /health after it died")
            assert server_pid(env, server) != dead
            (died,) = log_lines(log, name, "killed by SIGKILL")
            assert "restarting" in died
            assert len(log_lines(log, name, "is back")) == 1
        files = api.get(f"{base}/api/files")
        assert files.status_code == 200 and files.json()
        assert "Traceback" not in log.read_text(errors="replace")
    finally:
        assert interrupt(process) == 0
