"""The training report's facts (FR4.2.2): the loss against its baseline, where it converged, the
thinning of long histories; and the PDF renders for any job that completed, however little it
recorded; a name in Latin, Greek or Cyrillic script prints as typed (other scripts do not crash the
report, their glyphs print blank: docs/web.md)."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

from pypdf import PdfReader

from domain.applications import BudgetPolicy, Pipeline
from domain.job_status import JobStatus
from domain.values import ArtifactRef
from tests.factories import T0, queue_sample_job
from web.report_data import ReportData
from web.report_facts import MetricRow, convergence, loss_outcome, thinned
from web.report_pdf import render


def rows(losses: list[float], evals: dict[int, float] | None = None, per_epoch: int = 10) -> list[MetricRow]:
    evals = evals or {}
    return [MetricRow(step, step / per_epoch, loss, evals.get(step), 2e-4, None, 80.0, 1000.0)
            for step, loss in enumerate(losses, start=1)]


def test_the_loss_is_told_against_the_first_logged_one_and_the_agents_final_one_wins() -> None:
    history = rows([1.423, 1.1, float("nan"), 0.5, 0.3], {4: 0.41, 5: float("inf")})
    assert loss_outcome(history, {"final_loss": 0.287}) == {
        "baseline": 1.423, "final": 0.287, "improvement_percent": (1.423 - 0.287) / 1.423 * 100, "final_eval": 0.41}
    assert loss_outcome(history, {})["final"] == 0.3  # no report: the last finite logged loss
    assert loss_outcome([], {"final_loss": 0.2}) == {"baseline": None, "final": 0.2, "improvement_percent": None,
                                                     "final_eval": None}


def test_convergence_names_the_plateau_or_says_the_loss_was_still_falling_or_never_fell() -> None:
    plateau = [2.0 / (1 + step / 3) for step in range(30)] + [0.2] * 70  # flat from about step 31
    said = convergence(rows(plateau))
    assert said.startswith("Loss plateaued at epoch ") and said.endswith(", indicating optimal training completion.")
    epoch = float(said.split("epoch ")[1].split(" ")[0])
    assert 2.0 <= epoch <= 4.0
    falling = [2.0 - step * 0.015 for step in range(100)]
    assert convergence(rows(falling)).startswith("Loss was still decreasing at the end of training (step 100)")
    assert convergence(rows([1.0 + step * 0.01 for step in range(50)])).startswith("The loss did not decrease")
    assert convergence(rows([1.0, 0.9])) == "Too few logged steps to judge convergence."
    no_epochs = [MetricRow(r.step, None, r.loss, None, None, None, None, None) for r in rows(plateau)]
    assert convergence(no_epochs).startswith("Loss plateaued at step ")


def test_a_long_history_is_thinned_for_the_charts_keeping_the_last_row_and_every_evaluation() -> None:
    history = rows([1.0] * 10_000, {7: 0.9, 9_999: 0.5})
    kept = thinned(history)
    assert len(kept) <= 403 and kept[-1] is history[-1] and kept[0] is history[0]
    assert {r.step for r in kept if r.eval_loss is not None} == {7, 9_999}
    assert thinned(history[:50]) == history[:50]


def test_the_pdf_renders_for_a_completed_job_with_no_metrics_and_a_name_in_any_script() -> None:
    app = Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=BudgetPolicy(default_limit=Decimal(5000)))
    job_id = queue_sample_job(app, name="Ünïcode 训练 Модель v1")
    app.update_job(job_id, lambda j: j.start_provisioning("on_demand", T0))
    app.update_job(job_id, lambda j: j.pod_started("pod-1", 1, Decimal("4.49"), T0 + timedelta(minutes=1)))
    app.update_job(job_id, lambda j: j.change_stage(JobStatus.TRAINING, 1, T0 + timedelta(minutes=5)))
    app.update_job(job_id, lambda j: j.complete(ArtifactRef("jobs", "a.tar", "a" * 64, 1), {}, 1,
                                                T0 + timedelta(hours=2)))
    job = app.get_job(job_id)
    data = ReportData(job, "ml", "Europe/Berlin", T0 + timedelta(hours=3), [], [], {}, [], T0 + timedelta(hours=2))
    body = render(data)
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages).split())
    assert "Модель" in text and "No metric was recorded for this job." in text
    assert "No checkpoint was saved." in text and "on-demand instance" in text
    assert "cheaper than on-demand" not in text  # an on-demand job saved nothing against itself
    assert "Completed 2026-11-24 15:00 CET" in text  # the team's time zone
