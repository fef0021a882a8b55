"""Recovery and retries through the whole stack with local pods: two preemptions still give the
uninterrupted run's adapter; a forged telemetry message from a pod changes nothing; an OOM is
retried with the suggested fix as a new linked job that completes."""

import asyncio
import json
import tarfile
from pathlib import Path
from uuid import UUID

import httpx
import psycopg
import pytest

from domain.values import ArtifactRef
from infra import bus
from infra.objectstore import ObjectStore
from infra.runtime import running_embedded_nats
from tests.e2e import api
from tests.e2e.test_queue import start, upload_variant
from tests.e2e.test_recovery import finished, job_events, stack, start_job, topics_of
from tests.e2e.test_up import interrupt, start_up
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


def training_attempts(env: dict[str, str], job_id: str) -> int:
    return sum(1 for t, s in job_events(env, job_id) if t == "TrainingJob.StageChanged" and s["stage"] == "training")


def adapter_weights(env: dict[str, str], job_id: str, tmp: Path) -> bytes:
    (completed,) = [s for t, s in job_events(env, job_id) if t == "TrainingJob.Completed"]
    ref = ArtifactRef(**completed["adapter"]["_data_"])
    url = running_embedded_nats(Path(env["PIPELINE_STATE_DIR"]))

    async def fetch() -> Path:
        nc = await bus.connect(url, "test")
        try:
            return await ObjectStore(nc.jetstream()).get_file(ref, tmp / f"{job_id}.tar")
        finally:
            await nc.close()

    with tarfile.open(asyncio.run(fetch())) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("adapter_model.safetensors"))
        return tar.extractfile(member).read()


def forge(env: dict[str, str], pod_job: str, victim: str) -> list[str]:
    """As the pod of `pod_job`, with its own credentials: publish for `victim` on the victim's
    subject (the server refuses) and under its own subject (the telemetry handler refuses)."""
    users = json.loads((Path(env["PIPELINE_STATE_DIR"]) / "nats" / "pod-users.json").read_text())
    user, pod = next((u, p) for u, p in users.items() if p["job_id"] == pod_job)
    url = bus.shown(running_embedded_nats(Path(env["PIPELINE_STATE_DIR"])))
    errors: list[str] = []

    async def run() -> None:
        async def on_error(exc: Exception) -> None:
            errors.append(str(exc))

        nc = await bus.connect(url, "forger", user=user, password=pod["password"],
                               inbox_prefix=f"_INBOX_{pod_job.replace('-', '')}", error_cb=on_error)
        body = json.dumps({"job_id": victim, "attempt": 1, "seq": 1, "kind": "failed",
                           "at": "2026-11-24T12:00:00+00:00",
                           "data": {"failure_type": "oom", "message": "forged"}}).encode()
        js = nc.jetstream()
        with pytest.raises(Exception):  # noqa: B017 - a refusal by permissions or a timeout: both are a denial
            await js.publish(f"telemetry.{victim}.failed", body, timeout=1)
        await js.publish(f"telemetry.{pod_job}.failed", body, timeout=5)
        await nc.close()

    asyncio.run(run())
    return errors


def test_two_preemptions_still_give_the_uninterrupted_adapter_and_a_forgery_changes_nothing(tmp_path: Path) -> None:
    env = stack(tmp_path, PIPELINE_AGENT_MAX_STEPS="120", PIPELINE_AGENT_CHECKPOINT_EVERY="20")
    process, base = start_up(env, tmp_path / "up.log")
    try:
        preempted = start_job(base, "Preempted twice")
        # The same conversations in another catalog entry (one file trains one job at a time).
        steady = start(base, upload_variant(base, "same-conversations"), "Never interrupted").json()["id"]
        for attempt in (1, 2):
            wait_for(lambda a=attempt: training_attempts(env, preempted) >= a, timeout=180, interval=0.2,
                     message=f"attempt {attempt} training")
            if attempt == 1:
                before = topics_of(job_events(env, steady))
                errors = forge(env, preempted, steady)
                assert any("permissions violation" in e.lower() for e in errors), errors
            answer = api.post(f"{base}/api/jobs/{preempted}/faults", json={"action": "preempt"})
            assert answer.status_code == 200 and answer.json()["pods"], answer.text
        assert finished(base, preempted)["status"] == "completed", (tmp_path / "up.log").read_text()[-3000:]
        assert finished(base, steady)["status"] == "completed"
        # The forged "failed" changed nothing for its victim and was recorded as refused.
        url = f"postgresql://postgres@/pipeline?host={Path(env['PIPELINE_STATE_DIR']) / 'pg'}"
        with psycopg.connect(url) as conn:
            refused = conn.execute("SELECT error FROM dead_letters WHERE consumer LIKE 'handler-telemetry-%'"
                                   ).fetchall()  # the reactor's partitions (infra/telemetry.py)
        assert any("ForgedTelemetryError" in e for (e,) in refused), refused
        after = topics_of(job_events(env, steady))
        assert after[:len(before)] == before and "TrainingJob.Failed" not in after

        events = job_events(env, preempted)
        topics = topics_of(events)
        assert topics.count("TrainingJob.Interrupted") == 2 and topics.count("TrainingJob.Resumed") == 2
        assert all(float(s["downtime_seconds"]["_data_"]) > 0 for t, s in events if t == "TrainingJob.Resumed")
        assert adapter_weights(env, preempted, tmp_path) == adapter_weights(env, steady, tmp_path)
    finally:
        assert interrupt(process) == 0


def test_an_oom_is_retried_with_the_suggested_fix_as_a_linked_job_that_completes(tmp_path: Path) -> None:
    env = stack(tmp_path, PIPELINE_AGENT_FAULT="oom_above_batch:2", PIPELINE_AGENT_MAX_STEPS="10")
    process, base = start_up(env, tmp_path / "up.log")
    try:
        original = start_job(base, "Too big a batch")  # Conservative: batch size 4
        job = finished(base, original)
        assert job["status"] == "failed", (tmp_path / "up.log").read_text()[-3000:]
        options = api.get(f"{base}/api/jobs/{original}/retry-options").json()
        assert options["original"]["failure"]["type"] == "oom"
        assert [c["text"] for c in options["suggested"]["changes"]] == ["per_device_train_batch_size: 4 → 2"]
        retried = api.post(f"{base}/api/jobs/{original}/retry", json={"suggested": True})
        assert retried.status_code == 201, retried.text
        retry_id = retried.json()["id"]
        assert finished(base, retry_id)["status"] == "completed", (tmp_path / "up.log").read_text()[-3000:]
        (created,) = [s for t, s in job_events(env, retry_id) if t == "TrainingJob.Created"]
        assert UUID(created["retry_of"]["_data_"]) == UUID(original)
        assert created["name"] == "Too big a batch (Retry #1)"  # the first retry is #1 (docs/domain.md)
        again = api.post(f"{base}/api/jobs/{retry_id}/retry", json={})
        assert again.status_code == 400 and "Only failed or cancelled" in again.json()["detail"]
    finally:
        assert interrupt(process) == 0


def test_a_cancelled_job_resumes_from_its_checkpoint_with_a_smaller_batch_as_a_new_job(tmp_path: Path) -> None:
    env = stack(tmp_path, PIPELINE_AGENT_MAX_STEPS="150", PIPELINE_AGENT_CHECKPOINT_EVERY="5")
    process, base = start_up(env, tmp_path / "up.log")
    try:
        original = start_job(base, "Stopped midway")
        checkpoint = wait_for(lambda: next((s for t, s in job_events(env, original)
                                            if t == "TrainingJob.CheckpointSaved"), None),
                              timeout=180, interval=0.1, message="a checkpoint")
        cancelled = api.post(f"{base}/api/jobs/{original}/cancel", json={"reason": "wrong_configuration"})
        assert cancelled.status_code == 200, cancelled.text
        wait_for(lambda: api.get(f"{base}/api/jobs/{original}").json()["status"] == "cancelled", message="cancelled")
        options = api.get(f"{base}/api/jobs/{original}/retry-options").json()
        assert options["resumable"] and options["checkpoint_step"] >= checkpoint["step"]
        resumed = api.post(f"{base}/api/jobs/{original}/retry",
                             json={"resume": True, "changes": {"per_device_train_batch_size": 2}})
        assert resumed.status_code == 201, resumed.text
        new_id = resumed.json()["id"]
        assert finished(base, new_id)["status"] == "completed", (tmp_path / "up.log").read_text()[-3000:]
        events = job_events(env, new_id)
        (created,) = [s for t, s in events if t == "TrainingJob.Created"]
        assert UUID(created["resumed_from"]["_data_"]) == UUID(original)
        # It went on from the checkpoint: no checkpoint of the steps already done was saved again.
        steps = [s["step"] for t, s in events if t == "TrainingJob.CheckpointSaved"]
        assert steps and min(steps) > options["checkpoint_step"]
        (configured,) = [s for t, s in events if t == "TrainingJob.Configured"]
        assert configured["hyperparameters"]["per_device_train_batch_size"] == 2
    finally:
        assert interrupt(process) == 0
