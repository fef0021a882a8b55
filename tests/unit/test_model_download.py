"""The base model's download (issue #16): the agent fetches the weights into HF_HOME before loading them and
says how long it took; the telemetry reactor records it on the attempt's pod once; the job's cost shows it
as its own line of the setup cost; the event log tells it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from domain.aggregates.training_job import TrainingJob
from domain.applications import BudgetPolicy, Pipeline
from handlers.telemetry import TelemetryHandler
from infra.telemetry import Telemetry
from projections.event_messages import message
from projections.job_cost_state import JobCost, fold
from tests.factories import queue_sample_job
from web.cost_tracker import setup_view

MODEL = "meta-llama/Meta-Llama-3-70B-Instruct"


@pytest.fixture
def app() -> Pipeline:
    return Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=BudgetPolicy(default_limit=5000))


def send(handler: TelemetryHandler, job_id: uuid.UUID, attempt: int, seq: int, data: dict, at: datetime) -> None:
    body = Telemetry(job_id=str(job_id), attempt=attempt, seq=seq, kind="stage", at=at.isoformat(), data=data)
    handler.handle(body.subject, body.model_dump_json().encode())


def test_the_download_is_recorded_once_on_the_attempts_pod_and_is_its_own_line_of_the_setup_cost(app) -> None:
    job_id = queue_sample_job(app)
    start = datetime.now(timezone.utc)
    attempt = app.update_job(job_id, lambda job: job.start_provisioning("on_demand", start))
    app.update_job(job_id, lambda job: job.pod_started("rp-7x2k", attempt, Decimal("3.60"), start))
    handler = TelemetryHandler(app)
    send(handler, job_id, attempt, 1, {"stage": "model_loading", "status": "Downloading...",
                                       "phase": "downloading_model"}, start + timedelta(seconds=30))
    loaded = {"stage": "model_loading", "status": "Loading...",
              "download": {"model": MODEL, "seconds": 600.25, "size_bytes": 141_107_251_200, "cached": False}}
    for seq in (2, 3):  # redelivered: recorded once
        send(handler, job_id, attempt, seq, loaded, start + timedelta(seconds=631))
    send(handler, job_id, attempt, 4, {"stage": "training", "status": "Training..."}, start + timedelta(minutes=20))

    events = list(app.repository.event_store.get(job_id))
    (downloaded,) = [e for e in events if isinstance(e, TrainingJob.ModelDownloaded)]
    assert (downloaded.pod_id, downloaded.seconds, downloaded.cached) == ("rp-7x2k", Decimal("600.250"), False)
    assert message(downloaded) == f"Base model {MODEL} downloaded in 600 s (141.1 GB) on pod rp-7x2k"

    cost = None
    for event in events:
        cost = JobCost.created(event) if isinstance(event, TrainingJob.Created) else cost
        if not isinstance(event, TrainingJob.Created):
            fold(event, cost)
    cost.as_of = start + timedelta(hours=1)
    totals = cost.totals()
    assert totals.download_seconds == Decimal("600.250") and totals.setup_seconds == Decimal(1200)
    assert totals.download_cost == Decimal("600.250") * Decimal("3.60") / 3600
    shown = setup_view({"setup_cost": totals.setup_cost, "download_cost": totals.download_cost,
                        "download_seconds": totals.download_seconds, "billed_cost": None})
    assert shown == {"setup": "$1.20", "download": "$0.60 (10.0 min)", "billed": None}
    billed = setup_view({"billed_cost": Decimal("4.1"), "billed_pods": {"rp-7x2k": "4.1"},
                         "total_cost": Decimal("3.6")})
    assert billed["billed"] == "$4.10 for 1 ended pod(s); our ledger $3.60"


@pytest.mark.parametrize("bad", [{"model": MODEL, "seconds": "NaN", "size_bytes": 1, "cached": True},
                                 {"model": MODEL, "seconds": -5, "size_bytes": 1, "cached": True},
                                 {"model": MODEL, "size_bytes": 1}])
def test_a_malformed_download_report_records_nothing_but_the_stage(app, bad: dict) -> None:
    job_id = queue_sample_job(app)
    now = datetime.now(timezone.utc)
    attempt = app.update_job(job_id, lambda job: job.start_provisioning("spot", now))
    app.update_job(job_id, lambda job: job.pod_started("rp-1", attempt, Decimal("2.49"), now))
    send(TelemetryHandler(app), job_id, attempt, 1, {"stage": "model_loading", "download": bad}, now)
    job = app.get_job(job_id)
    assert job.status.value == "model_loading" and job.pods["rp-1"].download_seconds == 0


def cached_snapshot(hf_home: Path, model: str, size: int) -> None:
    """The hub cache's layout as huggingface_hub writes it: refs/main, a blob, a snapshot linking to it."""
    repo = hf_home / "hub" / f"models--{model.replace('/', '--')}"
    commit = "a" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "blobs").mkdir()
    (repo / "blobs" / "0123").write_bytes(b"w" * size)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").symlink_to("../../blobs/0123")


def test_weights_already_on_the_volume_are_found_there_and_reported_as_cached(tmp_path: Path) -> None:
    cached_snapshot(tmp_path / "hf", MODEL, 4096)
    script = ("import json; from gpu_agent.weights import fetch, needs_fetch; "
              f"d = fetch({MODEL!r}); print(json.dumps([d.report(), needs_fetch('tiny'), needs_fetch('.')]))")
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
           "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-1500:]
    report, tiny, local = json.loads(done.stdout)
    assert report["model"] == MODEL and report["size_bytes"] == 4096 and report["cached"] is True
    assert tiny is False and local is False
