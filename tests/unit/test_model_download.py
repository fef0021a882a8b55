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
    send(handler, job_id, attempt, 1, {"stage": "downloading_model", "status": "Downloading..."},
         start + timedelta(seconds=30))
    assert app.get_job(job_id).status.value == "downloading_model"
    loaded = {"stage": "model_loading", "status": "Loading...",
              "download": {"model": MODEL, "seconds": 600.25, "size_bytes": 141_107_251_200, "cached": False}}
    for seq in (2, 3):  # redelivered: recorded once
        send(handler, job_id, attempt, seq, loaded, start + timedelta(seconds=631))
    send(handler, job_id, attempt, 4, {"stage": "training", "status": "Training..."}, start + timedelta(minutes=20))

    events = list(app.repository.event_store.get(job_id))
    stages = [(e.stage, e.at - start) for e in events if isinstance(e, TrainingJob.StageChanged)]
    assert stages == [("downloading_model", timedelta(seconds=30)), ("model_loading", timedelta(seconds=631)),
                      ("training", timedelta(minutes=20))]
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


class Emitted:
    """The agent's publisher, as far as entering a stage goes: what it would have sent."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict]] = []

    def emit(self, kind: str, data: dict) -> None:
        self.messages.append((kind, data))


def agent_with(publisher: Emitted):
    from gpu_agent.main import Agent

    agent = Agent.__new__(Agent)  # no NATS: only the publisher is used to enter a stage
    agent.publisher, agent.stage = publisher, "preprocessing"
    return agent


def test_the_agent_enters_the_download_stage_for_a_hub_id_and_returns_the_figures(monkeypatch) -> None:
    from gpu_agent import weights

    published = Emitted()
    agent = agent_with(published)
    fetched = weights.Download(MODEL, 42.5, 141_107_251_200, 141_107_251_200)

    def fetch(model_id: str) -> weights.Download:
        assert agent.stage == "downloading_model"  # a failure while fetching names the download stage
        return fetched

    monkeypatch.setattr(weights, "fetch", fetch)
    assert agent.download_weights(MODEL) is fetched
    assert [(kind, data["stage"]) for kind, data in published.messages] == [("stage", "downloading_model")]
    assert "phase" not in published.messages[0][1]
    assert fetched.report() == {"model": MODEL, "seconds": 42.5, "size_bytes": 141_107_251_200, "cached": False}


def test_the_tiny_model_or_a_local_directory_has_no_download_stage(monkeypatch, tmp_path: Path) -> None:
    from gpu_agent import weights

    published = Emitted()
    monkeypatch.setattr(weights, "fetch", lambda model_id: pytest.fail(f"{model_id} fetched"))
    agent = agent_with(published)
    assert agent.download_weights("tiny") is None and agent.download_weights(str(tmp_path)) is None
    assert published.messages == [] and agent.stage == "preprocessing"


def timeline_detail(stages: list[tuple[str, int]], status: str) -> dict:
    """The job page's detail (projections/job_detail.py) of a job that ran `stages` (name, seconds) in turn."""
    start = datetime(2026, 12, 1, 9, tzinfo=timezone.utc)
    rows, at = [], start
    for i, (stage, seconds) in enumerate(stages):
        ended = at + timedelta(seconds=seconds)
        last = i == len(stages) - 1 and status != "completed"
        rows.append({"attempt": 1, "stage": stage, "started_at": at, "ended_at": None if last else ended,
                     "outcome": None if last else "completed", "estimated_seconds": None,
                     "actual_seconds": Decimal(seconds)})
        at = ended
    job = {"status": status, "ended_at": at if status == "completed" else None, "estimated_duration_hours":
           Decimal(10), "step": 0, "total_steps": 0, "epoch": None, "file_name": "advisors.jsonl",
           "failure_message": None}
    return {"job": job, "stages": rows}


def test_the_stage_timeline_shows_the_downloads_own_time_or_that_it_was_skipped() -> None:
    from web.stage_timeline import stage_view

    runs = [("preprocessing", 60), ("downloading_model", 300)]
    downloading = {r["label"]: r for r in stage_view(timeline_detail(runs, "downloading_model"))}
    assert (downloading["Model Download"]["status"], downloading["Model Download"]["actual"]) == ("active", "0h 5m")
    assert "Hugging Face Hub" in downloading["Model Download"]["doing"]
    assert downloading["Model Loading"]["status"] == "pending"
    assert downloading["Model Download"]["estimated"] == "0h 30m"  # 5 % of 10 h: model loading's 8 %, split

    cached = {r["label"]: r for r in stage_view(timeline_detail([("preprocessing", 60), ("model_loading", 180),
                                                                ("training", 3600)], "training"))}
    assert (cached["Model Download"]["status"], cached["Model Download"]["actual"]) == ("skipped", None)
    assert (cached["Model Loading"]["status"], cached["Model Loading"]["actual"]) == ("complete", "0h 3m")
    assert cached["Finalization"]["status"] == "pending"
    assert sum(r["share"] for r in cached.values()) == 100
