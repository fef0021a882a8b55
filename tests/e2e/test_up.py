"""`pipeline up` as a user runs it: embedded PostgreSQL and NATS, web on a port, jobs kept."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from infra.embedded import free_port
from tests.e2e import api
from tests.helpers import pipeline_process, wait_for


def healthy(base: str) -> bool:
    try:
        return api.get(f"{base}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def stack_env(tmp_path: Path) -> dict[str, str]:
    return {"PIPELINE_STATE_DIR": str(tmp_path / "state"), "PIPELINE_WEB_PORT": str(free_port()),
            "PIPELINE_AGENT_MAX_STEPS": "3"}


def start_up(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    process = pipeline_process(["up"], env, log)
    base = f"http://127.0.0.1:{env['PIPELINE_WEB_PORT']}"
    try:
        wait_for(lambda: healthy(base) or process.poll() is not None, timeout=90, interval=0.2,
                 message="the stack to become healthy")
        assert process.poll() is None, log.read_text()[-3000:]
    except BaseException:
        if process.poll() is None:  # not healthy in time: stop it, or it outlives the test
            interrupt(process)
        raise
    api.authorize(base, Path(env["PIPELINE_STATE_DIR"]))
    return process, base


def interrupt(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    return process.wait(30)


def test_a_job_created_through_the_api_shows_on_the_page_and_survives_a_restart(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    process, base = start_up(stack_env, tmp_path / "up1.log")
    try:
        files = wait_for(lambda: api.get(f"{base}/api/files").json(), message="the seeded sample file")
        assert [(f["name"], f["status"], f["conversation_count"]) for f in files] == \
            [("Financial advisory - sample", "active", 300)]
        refused = api.post(f"{base}/api/jobs", json={"name": "x", "training_file_id": files[0]["id"]})
        assert refused.status_code == 400 and "between 3 and 100 characters" in refused.json()["detail"]
        created = api.post(f"{base}/api/jobs", json={"name": "Advisor tone v1", "training_file_id": files[0]["id"]})
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        page = wait_for(lambda: (r := api.get(f"{base}/jobs")).status_code == 200
                        and f'data-job-id="{job_id}"' in r.text and "status-configured" not in r.text and r.text,
                        message="the started job on /")
        assert "Advisor tone v1" in page

        in_use = api.post(f"{base}/api/jobs", json={"name": "Second run", "training_file_id": files[0]["id"]})
        assert in_use.status_code == 400 and in_use.json()["detail"] == "Training file is in use by an active job"

        broken = (Path(__file__).parents[2] / "samples" / "broken-missing-target.json").read_bytes()
        upload = api.post(f"{base}/api/files", files={"file": ("broken.json", broken)})
        assert upload.status_code == 201 and upload.json()["status"] == "invalid"
        assert upload.json()["problems"][0]["message"] == \
            "Training pair #4 (conversation conv_abc123) is missing 'target_response'"

        events = subprocess.run([sys.executable, "-m", "pipeline", "events", job_id], env=os.environ | stack_env,
                                capture_output=True, text=True, timeout=60)
        assert events.returncode == 0, events.stderr
        lines = [json.loads(line) for line in events.stdout.splitlines()]
        assert [(e["version"], e["topic"]) for e in lines[:4]] == \
            [(1, "TrainingJob.Created"), (2, "TrainingJob.Configured"), (3, "TrainingJob.SuitesAttached"),
             (4, "TrainingJob.Queued")]  # the shipped probe suites are attached at creation (FR6.1)
        assert lines[1]["preset"] == "balanced" and lines[1]["gpu_tier"] == "spot"

        health = wait_for(lambda: (h := api.get(f"{base}/health").json())["workers"]["projection-jobs"]
                          ["lag_events"]["pipeline"] == 0 and h, message="no lag")
        assert health["database"] == "ok" and health["nats"] == "ok"
        assert health["workers"]["relay"]["lag_events"] == {"pipeline": 0}

        second = pipeline_process(["up"], stack_env)
        assert second.wait(60) == 2  # one stack per state directory
    finally:
        assert interrupt(process) == 0

    process, base = start_up(stack_env, tmp_path / "up2.log")
    try:
        jobs = api.get(f"{base}/api/jobs").json()
        assert [(j["id"], j["name"]) for j in jobs] == [(job_id, "Advisor tone v1")]
        wait_for(lambda: len(api.get(f"{base}/api/files").json()) == 2,  # the sample was not registered twice
                 message="the catalog read model to catch up")
        assert len(api.get(f"{base}/api/files").json()) == 2
    finally:
        assert interrupt(process) == 0


def test_the_rebuild_command_reproduces_the_live_read_model(stack_env: dict[str, str], tmp_path: Path) -> None:
    process, base = start_up(stack_env, tmp_path / "up.log")
    try:
        file_id = wait_for(lambda: api.get(f"{base}/api/files").json(), message="sample")[0]["id"]
        for i in range(3):  # configured, not started: one file serves one active job at a time
            created = api.post(f"{base}/api/jobs", json={"name": f"Rebuild me {i}", "training_file_id": file_id,
                                                          "start": False})
            assert created.status_code == 201, created.text
        before = wait_for(lambda: len(jobs := api.get(f"{base}/api/jobs").json()) == 3
                          and all(j["status"] == "configured" for j in jobs) and jobs, message="3 jobs")
        rebuilt = subprocess.run([sys.executable, "-m", "pipeline", "projections", "rebuild"],
                                 env=os.environ | stack_env, capture_output=True, text=True, timeout=60)
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert "rebuilt jobs from 9 event(s)" in rebuilt.stdout  # created, configured, suites attached
        assert "rebuilt catalog from 1 event(s)" in rebuilt.stdout
        assert api.get(f"{base}/api/jobs").json() == before
    finally:
        assert interrupt(process) == 0


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DATABASE_URL": "definitely not a url"}, "pipeline: error: invalid setting DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none", "NATS_URL": "nats://127.0.0.1:1"},
         "pipeline: error: cannot connect to PostgreSQL"),
        ({"DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres", "NATS_URL": "nats://127.0.0.1:1"},
         "pipeline: error: cannot connect to NATS"),
        ({"PIPELINE_ADMIN_PASSWORD": "hunter2"}, "pipeline: error: invalid setting PIPELINE_ADMIN_PASSWORD: Password"
                                                 " must be at least 12 characters (it has 7)"),
    ],
)
def test_bad_settings_exit_non_zero_with_a_one_line_reason(env: dict[str, str], expected: str, tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pipeline", "up"], capture_output=True, text=True, timeout=60,
                            env=os.environ | env | {"PIPELINE_STATE_DIR": str(tmp_path / "s"),
                                                    "PIPELINE_WEB_PORT": str(free_port())})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), result.stderr
