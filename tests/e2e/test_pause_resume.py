"""Pause and resume through the whole stack with local pods (FR2.2.2, #20): paused from the terminal
(`pipeline jobs pause`), the pod saves a checkpoint at the step boundary and ends, nothing runs and
nothing is spent while the job is paused, the job page offers Resume, the `openai` client resumes it,
`pipeline jobs watch` in a terminal follows it to the end, and its adapter is bit for bit the one of
a run that was never paused."""

import io
import json
import tarfile
import time
from pathlib import Path

import pytest
from openai import OpenAI

from tests.e2e import api
from tests.e2e.terminal import client_env, in_terminal, piped, pod_processes
from tests.e2e.test_queue import start, upload_variant
from tests.e2e.test_recovery import finished, job_events, stack, start_job, topics_of
from tests.e2e.test_retries import adapter_weights
from tests.e2e.test_up import interrupt, start_up
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


def spent(base: str, job_id: str) -> str:
    return api.get(f"{base}/api/jobs/{job_id}/detail").json()["job"]["cost_so_far"]


def test_a_paused_job_runs_no_pod_spends_nothing_and_resumes_to_the_uninterrupted_adapter(tmp_path: Path) -> None:
    # Slow steps (attempt 1 only): the pause lands mid-training; the resumed attempt runs at full speed.
    env = stack(tmp_path, PIPELINE_AGENT_MAX_STEPS="60", PIPELINE_AGENT_CHECKPOINT_EVERY="20",
                PIPELINE_AGENT_FAULT="slow_steps:150")
    process, base = start_up(env, tmp_path / "up.log")
    terminal = client_env(base, api._admins[base]["Authorization"], tmp_path / "config")
    try:
        paused = start_job(base, "Paused midway")
        steady = start(base, upload_variant(base, "same-conversations"), "Never paused").json()["id"]
        wait_for(lambda: "TrainingJob.CheckpointSaved" in topics_of(job_events(env, paused)), timeout=240,
                 interval=0.2, message="a first checkpoint")
        code, answer = piped(["jobs", "pause", paused, "--json"], terminal)
        assert (code, answer) == (0, {"id": paused, "status": "pausing"})

        wait_for(lambda: api.get(f"{base}/api/jobs/{paused}").json()["status"] == "paused", timeout=60,
                 interval=0.2, message="paused")
        wait_for(lambda: "TrainingJob.PodStopped" in topics_of(job_events(env, paused)) and not pod_processes(paused),
                 timeout=30, message="its pod gone")
        [pause] = [s for t, s in job_events(env, paused) if t == "TrainingJob.Paused"]
        assert pause["checkpoint_step"] == pause["step"] > 20  # the checkpoint saved at the step it stopped at
        before = spent(base, paused)
        time.sleep(3)
        assert spent(base, paused) == before and not pod_processes(paused)  # the cost clock stopped
        page = api.get(f"{base}/jobs/{paused}", headers={"Accept": "text/html"}).text
        assert 'id="jd-resume"' in page and f"checkpoint at step {pause['step']:,}" in page

        openai = OpenAI(api_key=terminal["PIPELINE_API_TOKEN"], base_url=f"{base}/v1", max_retries=0)
        assert openai.fine_tuning.jobs.retrieve(paused).status == "paused"
        assert openai.fine_tuning.jobs.resume(paused).status == "queued"

        code, shown = in_terminal(["jobs", "watch", paused], terminal)
        assert code == 0, shown
        assert "Paused midway" in shown and "loss " in shown and "ETA" in shown and "✓ Completed" in shown
        assert finished(base, steady)["status"] == "completed"

        topics = topics_of(job_events(env, paused))
        assert topics.count("TrainingJob.PodStarted") == 2 and "TrainingJob.Interrupted" not in topics
        assert [t for t in topics if t in ("TrainingJob.PauseRequested", "TrainingJob.Paused",
                                           "TrainingJob.ResumeRequested")] == [
            "TrainingJob.PauseRequested", "TrainingJob.Paused", "TrainingJob.ResumeRequested"]
        assert adapter_weights(env, paused, tmp_path) == adapter_weights(env, steady, tmp_path)

        code, saved = piped(["jobs", "download", paused, "--output", str(tmp_path / "paused.tar"), "--json"], terminal)
        assert code == 0 and saved["bytes"] == (tmp_path / "paused.tar").stat().st_size
        with tarfile.open(fileobj=io.BytesIO((tmp_path / "paused.tar").read_bytes())) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith("adapter_model.safetensors"))
            assert tar.extractfile(member).read() == adapter_weights(env, steady, tmp_path)
        code, logged = piped(["jobs", "logs", paused, "--json"], terminal)
        assert code == 0 and any(e["message"].startswith("Pause requested by admin") for e in logged)
        assert json.dumps(logged).count("Resumed by admin") == 1
    finally:
        assert interrupt(process) == 0
