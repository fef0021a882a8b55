"""Jobs that finish whatever the pods do: preemption (SIGTERM), a killed pod (SIGKILL, no event),
cancellation — through the whole stack with local pods."""

import json
from pathlib import Path

import httpx
import psycopg
import pytest

from infra.embedded import free_port
from tests.e2e import api
from tests.e2e.test_up import interrupt, start_up
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


def stack(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"PIPELINE_STATE_DIR": str(tmp_path / "state"), "PIPELINE_WEB_PORT": str(free_port()),
            "PIPELINE_AGENT_MAX_STEPS": "20", "PIPELINE_AGENT_CHECKPOINT_EVERY": "5"} | extra


def job_events(env: dict[str, str], job_id: str) -> list[tuple[str, dict]]:
    url = f"postgresql://postgres@/pipeline?host={Path(env['PIPELINE_STATE_DIR']) / 'pg'}"
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT topic, state FROM pipeline_events WHERE originator_id = %s"
                            " ORDER BY originator_version", (job_id,)).fetchall()
    return [(t, json.loads(s)) for t, s in rows]


def topics_of(events: list[tuple[str, dict]]) -> list[str]:
    return [t for t, _ in events]


def start_job(base: str, name: str) -> str:
    file_id = wait_for(lambda: api.get(f"{base}/api/files").json(), message="sample")[0]["id"]
    created = api.post(f"{base}/api/jobs", json={"name": name, "training_file_id": file_id,
                                                   "preset": "conservative"})
    assert created.status_code == 201, created.text
    return created.json()["id"]


def finished(base: str, job_id: str, timeout: float = 300) -> dict:
    return wait_for(lambda: (j := api.get(f"{base}/api/jobs/{job_id}").json()).get("status") in
                    ("completed", "failed", "cancelled") and j, timeout=timeout, interval=0.5,
                    message="the job to end")


@pytest.mark.parametrize(("fault", "resumed_after"), [("sigterm_at_step:7", 7), ("sigkill_at_step:12", 10)])
def test_an_interrupted_pod_is_replaced_and_the_job_completes_from_its_checkpoint(
    tmp_path: Path, fault: str, resumed_after: int
) -> None:
    env = stack(tmp_path, PIPELINE_AGENT_FAULT=fault)
    process, base = start_up(env, tmp_path / "up.log")
    try:
        job_id = start_job(base, "Survives its pod")
        job = finished(base, job_id)
        assert job["status"] == "completed", (tmp_path / "up.log").read_text()[-3000:]
        wait_for(lambda: topics_of(job_events(env, job_id)).count("TrainingJob.PodStopped") == 2, timeout=30,
                 message="both pods stopped")
        events = job_events(env, job_id)
        topics = [t for t, _ in events]
        assert topics.count("TrainingJob.Interrupted") == 1 and topics.count("TrainingJob.RecoveryStarted") == 1
        assert topics.count("TrainingJob.PodStarted") == 2 and topics.count("TrainingJob.PodStopped") == 2
        (recovery,) = [s for t, s in events if t == "TrainingJob.RecoveryStarted"]
        assert recovery["from_checkpoint"]["_data_"]["name"].endswith(f"checkpoint-step-{resumed_after}.tar")
        (resumed,) = [s for t, s in events if t == "TrainingJob.Resumed"]
        assert float(resumed["downtime_seconds"]["_data_"]) > 0
    finally:
        assert interrupt(process) == 0


def test_cancelling_a_training_job_stops_its_pod_and_settles_its_cost(tmp_path: Path) -> None:
    env = stack(tmp_path, PIPELINE_AGENT_MAX_STEPS="100000")
    process, base = start_up(env, tmp_path / "up.log")
    try:
        job_id = start_job(base, "Cancelled midway")
        wait_for(lambda: api.get(f"{base}/api/jobs/{job_id}").json().get("status") == "training", timeout=120,
                 message="training")
        cancelled = api.post(f"{base}/api/jobs/{job_id}/cancel", json={"reason": "too_expensive", "notes": "test"})
        assert cancelled.status_code == 200, cancelled.text
        wait_for(lambda: "TrainingJob.PodStopped" in [t for t, _ in job_events(env, job_id)], timeout=60,
                 message="the pod stopped within 60 s")
        wait_for(lambda: api.get(f"{base}/api/jobs/{job_id}").json()["status"] == "cancelled",
                 message="the read model to show the cancellation")
        again = api.post(f"{base}/api/jobs/{job_id}/start")
        assert again.status_code == 409  # a cancelled job cannot be resumed
        assert again.json()["detail"] == "This job has already started (status: cancelled)"
        fault = api.post(f"{base}/api/jobs/{job_id}/faults", json={"action": "preempt"})
        assert fault.status_code == 409, fault.text  # not 200 {"ok": true} for a pod that is gone
        assert fault.json()["detail"] == "This job has no running pod (status: cancelled): there is nothing to preempt"
    finally:
        assert interrupt(process) == 0


def test_a_silent_pod_is_caught_by_the_watchdog_and_its_job_recovered(tmp_path: Path) -> None:
    env = stack(tmp_path, PIPELINE_HEARTBEAT_TIMEOUT="10", PIPELINE_AGENT_MAX_STEPS="150")
    process, base = start_up(env, tmp_path / "up.log")
    try:
        job_id = start_job(base, "Lost host")
        wait_for(lambda: "TrainingJob.CheckpointSaved" in topics_of(job_events(env, job_id)), timeout=180,
                 interval=0.2, message="a checkpoint")
        frozen = api.post(f"{base}/api/jobs/{job_id}/faults", json={"action": "freeze"})
        assert frozen.status_code == 200 and frozen.json()["pods"], frozen.text
        job = finished(base, job_id)
        assert job["status"] == "completed", (tmp_path / "up.log").read_text()[-3000:]
        events = job_events(env, job_id)
        (interrupted,) = [s for t, s in events if t == "TrainingJob.Interrupted"]
        assert interrupted["reason"] == "heartbeat lost"
        assert topics_of(events).count("TrainingJob.PodStarted") == 2
    finally:
        assert interrupt(process) == 0
