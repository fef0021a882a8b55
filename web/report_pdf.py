"""The training report as a PDF (FR4.2.2): a cover page, the executive summary, the training
metrics (loss curves, the learning-rate schedule, a metrics table, where the loss converged), the
cost breakdown and an appendix (configuration, checkpoint history, event log summary), on the
pages of web/pdf_base.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from fpdf import XPos, YPos

from domain.money import usd
from web.detail_format import STATUS_LABELS
from web.pdf_base import MUTED, BrandedPdf
from web.report_data import ReportData
from web.report_facts import MetricRow, convergence, cost_facts, finite, loss_outcome, thinned
from web.report_validation import validation

TRAIN, EVAL, RATE = (37, 99, 235), (217, 119, 6), (14, 159, 110)


class ReportPdf(BrandedPdf):
    def __init__(self, data: ReportData) -> None:
        super().__init__(f"{data.job.name} - training report", f"{data.job.name} · training report", data.time_zone,
                         data.generated_at)
        self.data = data


def render(data: ReportData) -> bytes:
    pdf = ReportPdf(data)
    job = data.job
    rows = data.rows
    outcome = loss_outcome(rows, job.final_metrics)
    costs = cost_facts(job, data.completed_at or data.generated_at)
    cover(pdf)
    summary(pdf, outcome, costs)
    validation(pdf, job)  # FR6.1, FR6.3 (web/report_validation.py)
    metrics(pdf, rows, outcome)
    cost_page(pdf, costs)
    appendix(pdf)
    return bytes(pdf.output())


def cover(pdf: ReportPdf) -> None:
    data, job = pdf.data, pdf.data.job
    pdf.add_page()
    pdf.banner("LoRA / QLoRA fine-tuning")
    pdf.set_y(95)
    pdf.font(11, color=MUTED)
    pdf.cell(0, 7, "Training Report", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.font(24, bold=True)
    pdf.multi_cell(0, 11, job.name, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(6)
    trained = data.completed_at or job.updated_at
    pdf.facts([("Training date", pdf.local(data.started_at or trained, "%B %-d, %Y")),
               ("Completed", pdf.local(trained)), ("Team", data.team),
               ("Client / project", " / ".join(v for v in (job.client, job.project) if v) or "—"),
               ("Created by", job.created_by), ("Job", str(job.id)),
               ("Report generated", pdf.local(data.generated_at))])


def summary(pdf: ReportPdf, outcome: dict[str, float | None], costs: dict[str, Any]) -> None:
    job = pdf.data.job
    config = job.configuration or {}
    pdf.add_page()
    pdf.heading("Executive summary")
    loss = "—"
    if outcome["final"] is not None:
        loss = f"{outcome['final']:.3f}"
        if outcome["baseline"] is not None:
            loss += f" (baseline: {outcome['baseline']:.3f})"
        if outcome["improvement_percent"] is not None:
            loss += f" - {outcome['improvement_percent']:.0f}% improvement"
    status = STATUS_LABELS.get(job.status.value, job.status.value)
    if job.status.value == "completed":
        status = "Completed successfully"
        if job.interruptions:
            status += (f" after {job.interruptions} interruption{'s' if job.interruptions != 1 else ''},"
                       " resumed from checkpoints")
    perplexity = job.final_metrics.get("perplexity_improvement_percent")
    rows = [("Training file", f"{job.file_name}: {job.conversation_count:,} conversations,"
                              f" {job.pair_count:,} training pairs"),
            ("Configuration", f"{str(config.get('preset', '—')).title()} preset,"
                              f" {config.get('gpu_type', 'GPU')} {tier_name(costs['tier'])} instance"),
            ("Duration", duration(pdf.data.started_at, pdf.data.completed_at)),
            ("Final training loss", loss)]
    if outcome["final_eval"] is not None:
        rows.append(("Final validation loss", f"{outcome['final_eval']:.3f}"))
    if isinstance(perplexity, int | float):
        rows.append(("Perplexity", f"{perplexity:.0f}% better than the base model on the validation set"))
    rows += [("Cost", usd(costs["total"])), ("Status", status)]
    pdf.facts(rows)
    if job.description:
        pdf.subheading("Description")
        pdf.paragraph(job.description)


def metrics(pdf: ReportPdf, rows: list[MetricRow], outcome: dict[str, float | None]) -> None:
    job = pdf.data.job
    pdf.section("Training metrics", room=110)  # the heading with its first chart
    shown = thinned(rows)
    x_of = epoch_axis(rows)
    train = [(x_of(r), loss) for r in shown if (loss := finite(r.loss)) is not None]
    evals = [(x_of(r), loss) for r in shown if (loss := finite(r.eval_loss)) is not None]
    x_label = "epoch" if x_of is not step_of else "step"
    if train or evals:
        curves = [s for s in (("training loss", TRAIN, train), ("validation loss", EVAL, evals)) if s[2]]
        pdf.chart("Loss curves", curves, x_label, lambda v: f"{v:g}")
    rates = [(x_of(r), rate) for r in shown if (rate := finite(r.learning_rate)) is not None]
    if rates:
        pdf.chart("Learning rate schedule", [("learning rate", RATE, rates)], x_label, lambda v: f"{v:.1e}")
    if not (train or evals or rates):
        pdf.paragraph("No metric was recorded for this job.", color=MUTED)
    pdf.subheading("Metrics")
    util = [u for r in rows if (u := finite(r.gpu_util)) is not None]
    speed = [t for r in rows if (t := finite(r.tokens_per_s)) is not None]
    final = job.final_metrics
    table = [("Final training loss", f"{outcome['final']:.4f}" if outcome["final"] is not None else "—"),
             ("Final validation loss", f"{outcome['final_eval']:.4f}" if outcome["final_eval"] is not None else "—"),
             ("Perplexity (base → adapter)", perplexity_text(final)),
             ("GPU utilisation", f"{sum(util) / len(util):.0f}% average, {max(util):.0f}% peak" if util else "—"),
             ("Throughput", f"{sum(speed) / len(speed):,.0f} tokens/s average" if speed else "—"),
             ("Steps", f"{final.get('steps', job.last_step):,}"),
             ("Epochs", f"{float(final['epochs']):.2f}" if isinstance(final.get("epochs"), int | float)
              else str(job.last_epoch))]
    pdf.facts(table)
    pdf.subheading("Convergence")
    pdf.paragraph(convergence(rows))


def cost_page(pdf: ReportPdf, costs: dict[str, Any]) -> None:
    pdf.section("Cost breakdown")
    rates = ", ".join(f"{usd(rate)}/hr" for rate in costs["rates"]) or "—"
    rows = [("GPU cost", f"{usd(costs['total'])} ({tier_name(costs['tier'])} {costs['gpu_type']},"
                         f" {costs['hours']:.1f} hours @ {rates})"),
            ("Training", f"{usd(costs['useful'])} ({costs['useful_hours']:.2f} h)"),
            ("Set-up (pod start, download, preprocessing)", f"{usd(costs['setup'])} ({costs['setup_hours']:.2f} h)"),
            ("Spot interruptions", f"{costs['interruptions']} (recovery overhead: {usd(costs['lost'])},"
                                   f" {costs['lost_hours']:.2f} h of training redone)"),
            ("Pods", str(costs["pods"])),
            ("Total cost", usd(costs["total"]))]
    if costs["estimate_max"] is not None:
        rows.append(("Estimate before the start", f"up to {usd(Decimal(costs['estimate_max']))}"))
    if costs["saved"] is not None and costs["saved_percent"] is not None:
        rows.append(("Cost efficiency", f"{costs['saved_percent']:.0f}% cheaper than on-demand"
                                        f" ({usd(costs['on_demand'])} on-demand, without the redone work)"))
    pdf.facts(rows, widths=(70, 104))
    pdf.paragraph("Storage of checkpoints and adapters is not charged per job and is not included.", size=8,
                  color=MUTED)


def appendix(pdf: ReportPdf) -> None:
    data, job = pdf.data, pdf.data.job
    config = job.configuration or {}
    pdf.section("Appendix")
    pdf.subheading("Full configuration")
    settings = [("Preset", str(config.get("preset", "—"))), ("GPU", f"{config.get('gpu_type', '—')},"
                f" {tier_name(str(config.get('gpu_tier', '')))}, {usd(Decimal(config.get('hourly_rate') or 0))}/hr")]
    settings += [(str(key), str(value)) for key, value in sorted((config.get("hyperparameters") or {}).items())]
    settings += [("Estimated duration", f"{Decimal(config.get('estimated_duration_hours') or 0):.1f} h"),
                 ("Estimated cost", f"{usd(Decimal(config.get('estimated_cost_min') or 0))} -"
                                    f" {usd(Decimal(config.get('estimated_cost_max') or 0))}"),
                 ("Estimation", str(config.get("estimation_algorithm", "—"))),
                 ("Tags", ", ".join(job.tags) or "—")]
    pdf.facts(settings)
    pdf.subheading("Checkpoint history")
    if data.checkpoints:
        pdf.grid(("When", "Checkpoint"), [(pdf.local(c["at"]), c["message"]) for c in data.checkpoints], (50, 124))
    else:
        pdf.paragraph("No checkpoint was saved.", color=MUTED)
    pdf.subheading("Event log summary")
    counts = data.event_counts
    pdf.paragraph(f"{sum(counts.values())} events: " + ", ".join(
        f"{counts.get(c, 0)} {c}" for c in ("status", "metrics", "warning", "error")) + ".")
    if data.notable:
        pdf.ln(1)
        pdf.grid(("When", "Level", "Event"), [(pdf.local(e["at"]), e["category"], e["message"])
                                              for e in data.notable], (42, 20, 112))


def step_of(row: MetricRow) -> float:
    return float(row.step)


def epoch_axis(rows: list[MetricRow]) -> Callable[[MetricRow], float]:
    """Epochs along the x axis when every row has one, else steps."""
    if rows and all(r.epoch is not None for r in rows):
        return lambda row: float(row.epoch)
    return step_of


def tier_name(tier: str) -> str:
    return {"spot": "spot", "on_demand": "on-demand"}.get(tier, tier or "—")


def duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    return f"{(end - start).total_seconds() / 3600:.1f} hours (first pod to completion)"


def perplexity_text(final: dict[str, Any]) -> str:
    base, tuned = final.get("base_perplexity"), final.get("adapter_perplexity")
    if not isinstance(base, int | float) or not isinstance(tuned, int | float):
        return "—"
    return f"{base:.2f} → {tuned:.2f} ({(base - tuned) / base * 100:.0f}% lower)"
