"""The cost model follows measured throughput (issue #17, FR1.2.1 refinement): completed jobs' useful tokens/s
from the metric history change the estimate the API returns, the job it creates and the cost panel's words
(projections/throughput.py, web/job_history.py, domain/cost_model/refit.py)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import psycopg

from domain.cost_model import DEFAULT_COEFFICIENTS, ThroughputSample, estimate_cost, refit
from domain.gpu import PricingTier, gpu_option
from domain.job_status import JobStatus
from domain.presets import BALANCED
from domain.values import ArtifactRef
from projections import metrics
from tests.factories import configuration, job_fields
from tests.integration.test_web_new_job import add_file
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture

ADAPTER = ArtifactRef("job-x", "x/adapter-attempt-1.tar", "d" * 64, 4096)
STEPS = 20
RATE = 2500.0           # useful tokens per second the pods measured
TOKENS_PER_PAIR = 500   # useful tokens per pair-epoch
EPOCHS = BALANCED.epochs
PARAMS = {"preset": "balanced", "gpu_tier": "spot"}


def completed_job(web: WebRig, pairs: int, rate: float = RATE, rows: int = STEPS) -> ThroughputSample:
    """A balanced job of `pairs` pairs trained to completion, whose step telemetry says `rate` tokens/s on
    `rows` of its STEPS steps; the sample the refit should take from it."""
    app, now = web.store.app, datetime.now(timezone.utc)
    at = now - timedelta(hours=2)
    job_id = app.create_job(**job_fields(name=f"Run of {pairs} pairs", pair_count=pairs, at=at))
    app.configure_job(job_id, **configuration(hyperparameters=BALANCED.as_config(), at=at))
    app.start_job(job_id, "alice", "member", at)
    for step in (lambda j: j.start_provisioning("spot", at + timedelta(minutes=1)),
                 lambda j: j.pod_started("pod-1", 1, Decimal("2.49"), at + timedelta(minutes=2)),
                 lambda j: j.change_stage(JobStatus.TRAINING, 1, at + timedelta(minutes=5)),
                 lambda j: j.record_progress(STEPS, STEPS, float(EPOCHS), 0.3, 1, now - timedelta(minutes=3)),
                 lambda j: j.complete(ADAPTER, {"final_loss": 0.3}, 1, now - timedelta(minutes=2))):
        app.update_job(job_id, step)
    tokens_per_step = TOKENS_PER_PAIR * pairs * EPOCHS / STEPS
    seconds = tokens_per_step / rate
    points = [metrics.Point("step", job_id, n, 1, tuple({"tokens_per_s": rate, "step_time_s": seconds, "loss": 0.3}
                                                      .get(name) for name in metrics.FIELDS), at + timedelta(seconds=n))
              for n in range(1, rows + 1)]
    with psycopg.connect(web.database_url) as conn, conn.transaction():
        metrics.write(conn, points)
    return ThroughputSample("balanced", pairs * EPOCHS, Decimal(str(tokens_per_step * STEPS)),
                            Decimal(str(seconds * STEPS)))


def test_completed_jobs_measured_tokens_per_second_set_the_estimate_the_api_returns_and_reserves(
        web: WebRig) -> None:
    file_id = add_file(web)
    web.project()
    alice = web.client("alice")
    params = {"training_file_id": str(file_id), **PARAMS}
    before = alice.get("/jobs/new/estimate.json", params=params).json()
    default = estimate_cost(BALANCED, 1419, gpu_option(PricingTier.SPOT),
                            interruption_probability=Decimal(before["interruption_probability"]))
    assert before["duration_hours"] == str(default.for_display().duration_hours)
    assert before["duration_basis"]["source"] == "default" and before["algorithm_version"] == "calibrated-1"

    samples = [completed_job(web, pairs) for pairs in (100, 200, 300, 400)]
    completed_job(web, 250, rate=100.0, rows=STEPS - 1)  # a history with a step missing: not a measurement
    web.project()
    four = alice.get("/jobs/new/estimate.json", params=params).json()
    assert four["duration_basis"]["source"] == "default"  # 4 measured jobs: the shipped constant still
    assert four["duration_hours"] == before["duration_hours"]

    samples.append(completed_job(web, 500))
    web.project()
    after = alice.get("/jobs/new/estimate.json", params=params).json()
    fitted = refit(samples)
    assert fitted.balanced.tokens_per_second == Decimal("2500.0")  # the rate the pods measured
    expected = estimate_cost(BALANCED, 1419, gpu_option(PricingTier.SPOT), coefficients=fitted,
                             interruption_probability=Decimal(after["interruption_probability"]))
    assert expected.duration_hours == Decimal(1419 * EPOCHS * TOKENS_PER_PAIR) / Decimal(RATE) / 3600
    shown = expected.for_display()
    assert {k: after[k] for k in ("duration_hours", "cost_min", "cost_max", "total_cost")} == {
        k: str(getattr(shown, k)) for k in ("duration_hours", "cost_min", "cost_max", "total_cost")}
    assert after["duration_hours"] != before["duration_hours"]
    assert after["algorithm_version"] == fitted.version != DEFAULT_COEFFICIENTS.version
    assert after["duration_basis"] == {"source": "measured", "completed_jobs": 5, "tokens_per_second": "2500.0",
                                       "seconds_per_pair": "0.2000",
                                       "text": "Duration based on 5 completed jobs: 2,500.0 tokens/s"}

    panel = alice.get("/jobs/new/estimate", params=params, headers={"Accept": "text/html"}).text
    assert "Duration based on 5 completed jobs: 2,500.0 tokens/s" in re.sub(r"\s+", " ", panel)
    conservative = alice.get("/jobs/new/estimate", params=params | {"preset": "conservative"},
                             headers={"Accept": "text/html"}).text
    assert "Duration from the default rate: fewer than 5 completed Conservative jobs" in re.sub(r"\s+", " ",
                                                                                               conservative)

    answer = web.client().post("/api/jobs", headers=web.token("alice"),
                               json={"training_file_id": str(file_id), "preset": "balanced", "start": True})
    assert answer.status_code == 201, answer.text
    job = web.store.app.get_job(UUID(answer.json()["id"]))
    assert job.configuration["estimated_duration_hours"] == expected.duration_hours
    assert job.configuration["estimation_algorithm"] == fitted.version
    assert job.estimated_cost_max == expected.cost_max  # what the budget reserved
