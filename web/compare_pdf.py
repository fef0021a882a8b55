"""FR5.1.1's "Export comparison as PDF report": the compare page for 2 to 4 jobs as a PDF — the
recommendation, the overlaid training-loss curves, the final figures side by side (best marked),
how the others differ from the first, and the configuration with the differing settings marked.
The figures are the page's (web/pages/compare.py `compared`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.money import usd
from web.pdf_base import MUTED, BrandedPdf

LABELS = {"training_loss": "Training loss", "validation_loss": "Validation loss", "perplexity": "Perplexity",
          "duration_hours": "Duration", "cost": "Cost"}


def rgb(hex_colour: str) -> tuple[int, int, int]:
    red, green, blue = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return red, green, blue


def figure(name: str, value: Any) -> str:
    if value is None:
        return "—"
    if name == "cost":
        return usd(value)
    if name == "duration_hours":
        return f"{value:.1f} h"
    return f"{value:.4f}"


def render_comparison(compared: dict[str, Any], time_zone: str, now: datetime) -> bytes:
    jobs, finals, best = compared["jobs"], compared["finals"], compared["best"]
    names = [f"{n}. {job['name']}" for n, job in enumerate(jobs, start=1)]
    pdf = BrandedPdf("Training run comparison", "Training run comparison", time_zone, now)
    pdf.title_page("Training run comparison", f"Comparison of {len(jobs)} training runs", f"Prepared {pdf.local(now)}")
    pdf.facts([(f"Job {n}", f"{job['name']} ({job['status']}, created by {job['created_by']})")
               for n, job in enumerate(jobs, start=1)], widths=(20, 154))
    if compared["recommendation"]:
        pdf.subheading("Recommendation")
        pdf.paragraph(compared["recommendation"])

    curves = []
    for name, c in zip(names, compared["chart"]["jobs"], strict=True):
        points = [(float(step), loss) for step, loss in zip(c["steps"], c["loss"], strict=True) if loss is not None]
        curves.append((name, rgb(c["colour"]), points))  # the page's colour of the job
    curves = [c for c in curves if c[2]]
    if curves:
        pdf.chart("Training loss", curves, "step", lambda v: f"{v:g}")
    else:
        pdf.paragraph("None of these jobs has recorded metrics yet.", color=MUTED)

    pdf.subheading("Final figures")
    rows = []
    for name, row in zip(names, finals, strict=True):
        rows.append((name, *(figure(key, row[key]) + (" ★" if key in best and row[key] == best[key] else "")
                             for key in LABELS)))
    pdf.grid(("Job", *LABELS.values()), rows, (50, 26, 26, 24, 22, 26))
    pdf.paragraph("★ the best (lowest) of each figure.", size=8, color=MUTED)
    if compared["differences"]:
        pdf.subheading("Against job 1")
        for line in compared["differences"]:
            pdf.paragraph(f"• {line}", size=9)

    pdf.subheading("Configuration")
    widths = (40, *([134 // len(jobs)] * len(jobs)))
    pdf.grid(("Setting", *(f"Job {n}" for n in range(1, len(jobs) + 1))),
             [((f"≠ {row['label']}" if row["differs"] else row["label"]), *row["values"])
              for row in compared["configuration"]], widths)
    pdf.paragraph("≠ marks a setting that differs between the jobs.", size=8, color=MUTED)
    return bytes(pdf.output())
