"""The training report as a PDF (FR4.2.2): a cover page, the executive summary, the training
metrics (loss curves, the learning-rate schedule, a metrics table, where the loss converged), the
cost breakdown and an appendix (configuration, checkpoint history, event log summary). Drawn with
fpdf2 in DejaVu Sans (web/fonts), so any name in Latin, Greek or Cyrillic script prints as typed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fpdf import FPDF, XPos, YPos
from fpdf.enums import TableCellFillMode

from domain.money import usd
from web.axes import axis
from web.detail_format import STATUS_LABELS
from web.report_data import ReportData
from web.report_facts import MetricRow, convergence, cost_facts, finite, loss_outcome, thinned

FONTS = Path(__file__).parent / "fonts"
BRAND = "LoRA Pipeline"
INK, MUTED, ACCENT = (31, 41, 51), (97, 110, 124), (16, 42, 67)
TRAIN, EVAL, RATE = (37, 99, 235), (217, 119, 6), (14, 159, 110)
Point = tuple[float, float]


class ReportPdf(FPDF):
    def __init__(self, data: ReportData) -> None:
        super().__init__(format="A4", unit="mm")
        self.data = data
        self.zone = ZoneInfo(data.time_zone)
        self.add_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
        self.add_font("DejaVu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
        self.set_margins(18, 18, 18)
        self.set_auto_page_break(True, margin=18)
        self.set_title(f"{data.job.name} - training report")
        self.set_author(BRAND)
        self.set_creation_date(data.generated_at)

    def footer(self) -> None:
        if self.page_no() == 1:
            return
        self.set_y(-12)
        self.font(8, color=MUTED)
        self.cell(0, 5, f"{self.data.job.name} · training report · page {self.page_no()}", align="C")

    # --- small helpers ----------------------------------------------------------------------

    def font(self, size: float, bold: bool = False, color: tuple[int, int, int] = INK) -> None:
        self.set_font("DejaVu", "B" if bold else "", size)
        self.set_text_color(*color)

    def local(self, at: datetime | None, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
        return at.astimezone(self.zone).strftime(fmt) if at else "—"

    def heading(self, text: str) -> None:
        self.font(16, bold=True, color=ACCENT)
        self.cell(0, 10, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(2)

    def subheading(self, text: str) -> None:
        self.ln(2)
        self.font(11, bold=True)
        self.cell(0, 7, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def paragraph(self, text: str, size: float = 10, color: tuple[int, int, int] = INK) -> None:
        self.font(size, color=color)
        self.multi_cell(0, 5.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def facts(self, rows: Sequence[tuple[str, str]], widths: tuple[int, int] = (55, 119)) -> None:
        self.font(10)
        self.set_draw_color(217, 226, 236)
        self.set_fill_color(255, 255, 255)
        with self.table(col_widths=widths, text_align=("LEFT", "LEFT"), first_row_as_headings=False,
                        line_height=6, borders_layout="HORIZONTAL_LINES",
                        cell_fill_mode=TableCellFillMode.NONE) as table:
            for label, value in rows:
                row = table.row()
                row.cell(label)
                row.cell(value)

    def grid(self, headings: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[int]) -> None:
        self.font(9)
        self.set_draw_color(217, 226, 236)
        self.set_fill_color(255, 255, 255)
        with self.table(col_widths=tuple(widths), line_height=5.5, borders_layout="HORIZONTAL_LINES",
                        text_align="LEFT", cell_fill_mode=TableCellFillMode.NONE) as table:
            heading = table.row()
            for text in headings:
                heading.cell(text)
            for values in rows:
                row = table.row()
                for value in values:
                    row.cell(value)

    def chart(self, title: str, series: list[tuple[str, tuple[int, int, int], list[Point]]], x_label: str,
              y_format: Callable[[float], str], height: float = 62) -> None:
        """A line chart of one or more series over the text width; a series with one point is a dot."""
        points = [p for _, _, pts in series for p in pts]
        if not points:
            return
        if self.will_page_break(height + 14):
            self.add_page()
        self.subheading(title)
        left, top = self.l_margin + 16, self.get_y() + 2
        width, inner_h = self.epw - 18, height - 14
        x0, x1, x_ticks = axis(min(p[0] for p in points), max(p[0] for p in points))
        y0, y1, y_ticks = axis(min(p[1] for p in points), max(p[1] for p in points))

        def at(p: Point) -> Point:
            return (left + (p[0] - x0) / (x1 - x0) * width, top + inner_h - (p[1] - y0) / (y1 - y0) * inner_h)

        self.set_draw_color(217, 226, 236)
        self.set_line_width(0.2)
        self.font(7, color=MUTED)
        for tick in y_ticks:
            y = at((x0, tick))[1]
            self.line(left, y, left + width, y)
            self.text(self.l_margin, y + 1, y_format(tick))
        for tick in x_ticks:
            x = at((tick, y0))[0]
            self.line(x, top, x, top + inner_h)
            self.text(x - 3, top + inner_h + 4, f"{tick:g}")
        self.text(left + width / 2 - 6, top + inner_h + 8.5, x_label)
        legend_x = left
        for label, color, pts in series:
            self.set_draw_color(*color)
            self.set_fill_color(*color)
            self.set_line_width(0.5)
            if len(pts) > 1:
                self.polyline([at(p) for p in pts])
            for p in pts if len(pts) <= 30 else ():
                x, y = at(p)
                self.circle(x, y, 0.7, style="F")
            self.rect(legend_x, top + inner_h + 10.5, 3, 1.5, style="F")
            self.text(legend_x + 4, top + inner_h + 12, label)
            legend_x += 8 + self.get_string_width(label)
        self.set_y(top + height)


def render(data: ReportData) -> bytes:
    pdf = ReportPdf(data)
    job = data.job
    rows = data.rows
    outcome = loss_outcome(rows, job.final_metrics)
    costs = cost_facts(job, data.completed_at or data.generated_at)
    cover(pdf)
    summary(pdf, outcome, costs)
    metrics(pdf, rows, outcome)
    cost_page(pdf, costs)
    appendix(pdf)
    return bytes(pdf.output())


def cover(pdf: ReportPdf) -> None:
    data, job = pdf.data, pdf.data.job
    pdf.add_page()
    pdf.set_fill_color(*ACCENT)
    pdf.rect(0, 0, pdf.w, 70, style="F")
    pdf.set_xy(18, 24)
    pdf.font(14, bold=True, color=(255, 255, 255))
    pdf.cell(0, 8, BRAND, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.font(11, color=(217, 226, 236))
    pdf.cell(0, 6, "LoRA / QLoRA fine-tuning", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(95)
    pdf.font(11, color=MUTED)
    pdf.cell(0, 7, "Training Report", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.font(24, bold=True)
    pdf.multi_cell(0, 11, job.name, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
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
    pdf.add_page()
    pdf.heading("Training metrics")
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
    pdf.add_page()
    pdf.heading("Cost breakdown")
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
    pdf.add_page()
    pdf.heading("Appendix")
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
