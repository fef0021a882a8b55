"""Queue → completed through the whole stack: web, event store, relay, provisioning reactor, the
GPU agent on a local pod (tiny model, CPU), telemetry reactor, read model, budget."""

import json
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from infra.embedded import free_port
from tests.e2e import api
from tests.e2e.test_up import interrupt, start_up
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def stack_env(tmp_path: Path) -> dict[str, str]:
    return {"PIPELINE_STATE_DIR": str(tmp_path / "state"), "PIPELINE_WEB_PORT": str(free_port()),
            "PIPELINE_AGENT_MAX_STEPS": "12", "PIPELINE_AGENT_CHECKPOINT_EVERY": "5"}


def stored_events(state: Path) -> list[tuple[str, dict]]:
    url = f"postgresql://postgres@/pipeline?host={state / 'pg'}"
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT topic, state FROM pipeline_events ORDER BY notification_id").fetchall()
    return [(topic, json.loads(state)) for topic, state in rows]


def test_a_queued_job_trains_on_a_local_pod_to_completed_with_adapter_cost_charge_and_release(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    process, base = start_up(stack_env, tmp_path / "up.log")
    try:
        file_id = wait_for(lambda: api.get(f"{base}/api/files").json(), message="sample")[0]["id"]
        created = api.post(f"{base}/api/jobs", json={"name": "First real run", "training_file_id": file_id,
                                                       "preset": "conservative"})
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        job = wait_for(lambda: (j := api.get(f"{base}/api/jobs/{job_id}").json()).get("status") in
                       ("completed", "failed") and j, timeout=240, interval=0.5, message="the job to finish")
        agent_logs = "".join(p.read_text()[-3000:]
                             for p in Path(stack_env["PIPELINE_STATE_DIR"]).glob("pods/*/*/agent.log"))
        assert job["status"] == "completed", (tmp_path / "up.log").read_text()[-3000:] + agent_logs
        state = Path(stack_env["PIPELINE_STATE_DIR"])
        wait_for(lambda: "Budget.Released" in [t for t, _ in stored_events(state)], timeout=30,
                 message="the reservation released")
        events = stored_events(state)
        job_topics = [t for t, s in events if t.startswith("TrainingJob.")]
        for expected in ("TrainingJob.Queued", "TrainingJob.ProvisioningStarted", "TrainingJob.PodStarted",
                         "TrainingJob.StageChanged", "TrainingJob.CheckpointSaved", "TrainingJob.Completed",
                         "TrainingJob.PodStopped"):
            assert expected in job_topics, job_topics
        (completed,) = [s for t, s in events if t == "TrainingJob.Completed"]
        assert completed["adapter"]["_data_"]["bucket"] == f"job-{job_id}"  # the job's own bucket
        # FR6.1 / FR6.3: evaluated on the shipped knowledge suite; the pod's results read back, their
        # figures recorded with the completion (docs/quality-validation.md)
        assert "TrainingJob.SuitesAttached" in job_topics and "TrainingJob.EvaluationProgressed" in job_topics
        assert job_topics.index("TrainingJob.Evaluated") == job_topics.index("TrainingJob.Completed") - 1
        (evaluated,) = [s for t, s in events if t == "TrainingJob.Evaluated"]
        assert evaluated["summary"]["knowledge"]["questions"] == 100 and evaluated["summary"]["outcome"] in (
            "pass", "review", "block")
        spend = [s for t, s in events if t == "Budget.SpendRecorded"]
        assert spend and float(spend[-1]["job_total"]["_data_"]) > 0
        (released,) = [s for t, s in events if t == "Budget.Released"]
        assert float(released["amount"]["_data_"]) > 0
        wait_for(lambda: api.get(f"{base}/api/files").json()[0]["active_jobs"] == 0, timeout=20,
                 message="the file free again (catalog read model)")
        # FR4.2.1: every step of the run in the metrics export (the metric history read model).
        lines = wait_for(lambda: len(r := api.get(f"{base}/api/jobs/{job_id}/metrics.csv").text.splitlines()) == 13
                         and r, timeout=20, message="12 steps in the metrics export")
        assert lines[0].startswith("step_number,epoch,training_loss,validation_loss")
        download = api.get(f"{base}/api/jobs/{job_id}/metrics.json")
        assert "-metrics-" in download.headers["content-disposition"]
        assert len(download.json()["training_metrics"]) == 12
        # Bad input is refused with a clear answer and changes nothing.
        events_before = len(stored_events(tmp_path / "state"))
        assert api.get(f"{base}/api/jobs/{uuid.uuid4()}/metrics.csv").status_code == 404
        retry = api.post(f"{base}/api/jobs/{job_id}/retry", json={"changes": {"num_train_epochs": 50}})
        assert retry.status_code == 400, retry.text
        switch = api.post(f"{base}/api/jobs/{job_id}/gpu", json={"gpu_tier": "on_demand"})
        assert switch.status_code == 400 and "only while the job waits" in switch.json()["detail"]
        assert api.post(f"{base}/api/jobs/{job_id}/promote", headers=api.as_user(base, "erin")).status_code == 403
        assert len(stored_events(tmp_path / "state")) == events_before
    finally:
        assert interrupt(process) == 0
