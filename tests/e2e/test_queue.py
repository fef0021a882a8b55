"""The queue (FR2.3.2) and provisioning retries (FR3.1.3) through the whole stack."""

import json
import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e import api
from tests.e2e.test_recovery import finished, job_events, stack, topics_of
from tests.e2e.test_up import interrupt, start_up
from tests.helpers import wait_for

pytestmark = pytest.mark.slow
SAMPLE = Path(__file__).parents[2] / "samples" / "financial-advisory.json"


def upload_variant(base: str, name: str) -> str:
    doc = json.loads(SAMPLE.read_bytes())
    doc["name"] = name  # other bytes, so another catalog entry
    reply = api.post(f"{base}/api/files", files={"file": (f"{name}.json", json.dumps(doc).encode())})
    assert reply.status_code == 201, reply.text
    return reply.json()["id"]


def start(base: str, file_id: str, name: str) -> httpx.Response:
    return api.post(f"{base}/api/jobs", json={"name": name, "training_file_id": file_id, "preset": "conservative"})


def test_jobs_beyond_the_running_limit_wait_fifo_and_a_full_queue_refuses_with_the_spec_message(
    tmp_path: Path
) -> None:
    env = stack(tmp_path, PIPELINE_MAX_RUNNING="1", PIPELINE_MAX_QUEUED="1", PIPELINE_AGENT_MAX_STEPS="15")
    process, base = start_up(env, tmp_path / "up.log")
    try:
        files = [upload_variant(base, f"Queue file {i}") for i in range(3)]
        first = start(base, files[0], "First in line").json()["id"]
        wait_for(lambda: api.get(f"{base}/api/jobs/{first}").json().get("status") not in (None, "queued",
                 "configured"), message="the first job to take the slot")
        second = start(base, files[1], "Second in line").json()["id"]
        wait_for(lambda: api.get(f"{base}/api/jobs/{second}").json().get("status") == "queued", message="queued")
        refused = start(base, files[2], "Third in line")
        assert refused.status_code == 409
        assert refused.json()["detail"] == "Queue full (1/1 active jobs). Wait for completion or cancel an active job."
        assert finished(base, first)["status"] == "completed"
        assert finished(base, second)["status"] == "completed"
        first_done = [t for t in topics_of(job_events(env, first))]
        assert "TrainingJob.Completed" in first_done
        second_events = job_events(env, second)
        assert topics_of(second_events).count("TrainingJob.ProvisioningStarted") == 1
    finally:
        assert interrupt(process) == 0


def test_no_capacity_twice_is_retried_until_a_pod_starts(tmp_path: Path) -> None:
    env = stack(tmp_path, PIPELINE_PROVISIONING_RETRY_S="1", PIPELINE_AGENT_MAX_STEPS="6")
    process, base = start_up(env, tmp_path / "up.log")
    try:
        wait_for(lambda: api.post(f"{base}/api/jobs/{uuid.uuid4()}/faults",
                                    json={"action": "no_capacity", "count": 2}).status_code == 200,
                 message="the handlers to answer")
        file_id = wait_for(lambda: api.get(f"{base}/api/files").json(), message="sample")[0]["id"]
        job_id = start(base, file_id, "Waits for a GPU").json()["id"]
        assert finished(base, job_id)["status"] == "completed"
        topics = topics_of(job_events(env, job_id))
        assert topics.count("TrainingJob.ProvisioningFailed") == 2
        assert topics.count("TrainingJob.ProvisioningStarted") == 3 and topics.count("TrainingJob.PodStarted") == 1
    finally:
        assert interrupt(process) == 0


def test_a_gpu_window_without_capacity_ends_with_the_choice_and_a_promoted_job_goes_first(tmp_path: Path) -> None:
    env = stack(tmp_path, PIPELINE_PROVISIONING_RETRY_S="1", PIPELINE_PROVISIONING_WINDOW_S="3",
                PIPELINE_MAX_RUNNING="1", PIPELINE_AGENT_MAX_STEPS="6")
    process, base = start_up(env, tmp_path / "up.log")
    manager, member = api.as_user(base, "carol", "manager"), api.as_user(base, "bob")
    try:
        wait_for(lambda: api.post(f"{base}/api/jobs/{uuid.uuid4()}/faults",
                                    json={"action": "no_capacity", "count": 100}).status_code == 200,
                 message="the handlers to answer")
        files = [upload_variant(base, f"variant-{n}") for n in range(3)]
        waiting = start(base, files[0], "No spot GPU").json()["id"]
        wait_for(lambda: api.get(f"{base}/api/jobs/{waiting}").json().get("status") == "queued_waiting_for_gpu",
                 message="waiting for a GPU")
        second = start(base, files[1], "Queued second").json()["id"]
        third = start(base, files[2], "Queued third, urgent").json()["id"]
        queue = wait_for(lambda: len(q := api.get(f"{base}/api/queue").json()) == 2 and q, message="the queue")
        assert [j["id"] for j in queue] == [second, third]
        assert queue[0]["estimated_start"] < queue[1]["estimated_start"]
        assert api.post(f"{base}/api/jobs/{third}/promote", headers=member).status_code == 403
        assert api.post(f"{base}/api/jobs/{third}/promote", headers=manager).status_code == 200
        wait_for(lambda: [j["id"] for j in api.get(f"{base}/api/queue").json()] == [third, second],
                 message="the promoted job first")
        # The window ends: the owner is asked to switch or cancel (FR3.1.3), and switches.
        wait_for(lambda: "TrainingJob.ProvisioningTimedOut" in topics_of(job_events(env, waiting)), timeout=30,
                 message="the provisioning window to end")
        switched = api.post(f"{base}/api/jobs/{waiting}/gpu", json={"gpu_tier": "on_demand"}, headers=member)
        assert switched.status_code == 200, switched.text
        assert api.post(f"{base}/api/jobs/{waiting}/faults", json={"action": "no_capacity", "count": 0}).is_success
        for job_id in (waiting, third, second):
            assert finished(base, job_id)["status"] == "completed", (tmp_path / "up.log").read_text()[-3000:]
        started = {job_id: next(s["at"]["_data_"] for t, s in job_events(env, job_id) if t == "TrainingJob.PodStarted")
                   for job_id in (waiting, third, second)}
        assert started[waiting] < started[third] < started[second]
        (change,) = [s for t, s in job_events(env, waiting) if t == "TrainingJob.GpuTierChanged"]
        assert change["gpu_tier"] == "on_demand" and change["actor"] == "bob"
    finally:
        assert interrupt(process) == 0
