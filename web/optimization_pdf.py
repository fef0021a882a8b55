"""FR7.3.1's "Export cost optimization report as PDF for stakeholders": a budget month's spot
savings — the totals, each spot job against on-demand, what interruptions cost, the return over a
year, and what to do next. Figures from the finance read models (projections/finance.py
`savings_rows`, projections/analytics.py `by_gpu_tier`), as the budget page and the CSV exports
show them."""

from __future__ import annotations

import calendar
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.gpu import OfflinePrices
from domain.money import cents, usd
from projections.finance import percent
from web.pdf_base import MUTED, BrandedPdf

STRONG_SAVINGS = Decimal(30)  # percent cheaper than on-demand that makes spot the default
SPOT_SHARE_GOAL = Decimal(90)  # the spec's "Continue using spot instances for 90%+ of jobs"
TIER_NAMES = {"spot": "Spot", "on_demand": "On-demand"}


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the month's spot jobs; `savings` is net of the interruption overhead (the spot
    cost includes the redone work), `gross` before it."""
    sums = {key: sum((r[key] for r in rows), Decimal("0.00"))
            for key in ("spot_cost", "on_demand_cost", "savings", "overhead_cost")}
    interruptions = sum(r["interruptions"] for r in rows)
    return sums | {"jobs": len(rows), "interruptions": interruptions,
                   "interrupted_jobs": sum(1 for r in rows if r["interruptions"]),
                   "per_job": Decimal(interruptions) / len(rows) if rows else None,
                   "gross": sums["savings"] + sums["overhead_cost"],
                   "percent": percent(sums["savings"], sums["on_demand_cost"]), "annual": sums["savings"] * 12}


def advice(total: dict[str, Any], tiers: list[dict[str, Any]]) -> list[str]:
    """The recommendation lines, from the month's figures."""
    jobs = sum(t["jobs"] for t in tiers)
    spot = next((t for t in tiers if t["gpu_tier"] == "spot"), None)
    share = percent(Decimal(spot["jobs"]), Decimal(jobs)) if spot and jobs else Decimal(0)
    lines = []
    if not total["jobs"]:
        rates = OfflinePrices()
        return [f"No spot job was charged this month. Spot instances cost {usd(rates.spot)}/hr against"
                f" {usd(rates.on_demand)}/hr on-demand: use them for jobs that can wait for a recovery."]
    if total["savings"] < 0:
        lines.append(f"Spot cost {usd(-total['savings'])} more than on-demand would have this month (interruptions"
                     " redid too much work): move long or urgent jobs to on-demand.")
    elif total["percent"] is not None and total["percent"] >= STRONG_SAVINGS:
        lines.append(f"Continue using spot instances for {SPOT_SHARE_GOAL:.0f}%+ of jobs"
                     f" ({share:.0f}% of this month's jobs ran on spot).")
    else:
        lines.append(f"Spot saved only {total['percent'] or 0:.0f}% this month: check the interruptions"
                     " below before moving more jobs to spot.")
    lines.append("Reserve on-demand for urgent client deliveries.")
    yearly = total["annual"]
    if yearly >= 10_000:
        lines.append("Current strategy saves $10k+ annually.")
    elif yearly > 0:
        lines.append(f"Current strategy saves about {usd(yearly)} a year at this month's usage.")
    return lines


def render_optimization(month: str, rows: list[dict[str, Any]], tiers: list[dict[str, Any]], team: str,
                        time_zone: str, now: datetime) -> bytes:
    total = summary(rows)
    title = f"Cost optimization report: {calendar.month_name[int(month[5:])]} {month[:4]}"
    pdf = BrandedPdf(f"{team} - cost optimization {month}", f"Cost optimization report · {month}", time_zone, now)
    pdf.title_page("Cost optimization report", title, f"Team {team} · prepared {pdf.local(now)}")

    pdf.subheading("Spot instance savings")
    plural = "s" if total["jobs"] != 1 else ""
    pdf.facts([("Total spot cost", f"{usd(total['spot_cost'])} ({total['jobs']} spot job{plural})"),
               ("Equivalent on-demand cost", usd(total["on_demand_cost"])),
               ("Total savings", usd(total["savings"]) + (f" ({total['percent']:.0f}% cheaper)"
                                                          if total["percent"] is not None else ""))])
    if rows:
        pdf.subheading("Per-job comparison")
        pdf.grid(("Job", "Spot", "On-demand", "Saved", "Interruptions"),
                 [(r["name"], usd(r["spot_cost"]), usd(r["on_demand_cost"]), usd(r["savings"]), str(r["interruptions"]))
                  for r in rows], (70, 26, 28, 26, 24))

    pdf.subheading("Interruption impact")
    pdf.facts([("Spot interruptions", f"{total['interruptions']} (across {total['interrupted_jobs']} of"
                                      f" {total['jobs']} spot jobs)"),
               ("Average interruptions per job", f"{total['per_job']:.1f}" if total["per_job"] is not None else "—"),
               ("Interruption cost overhead", f"{usd(total['overhead_cost'])} (training redone from checkpoints)"),
               ("Savings before the overhead", usd(total["gross"])),
               ("Net savings after overhead", usd(total["savings"]))])

    pdf.subheading("Return")
    pdf.facts([("Monthly spot savings", usd(total["savings"])),
               ("Annualised savings", f"{usd(cents(total['annual']))} (if usage remains constant)")])
    if tiers:
        pdf.grid(("GPU", "Jobs", "Share", "Pod hours", "Interruptions", "Overhead", "Total cost"),
                 [(TIER_NAMES.get(t["gpu_tier"], t["gpu_tier"]), str(t["jobs"]),
                   f"{t['share_of_jobs']:.0f}%" if t["share_of_jobs"] is not None else "—",
                   str(t["pod_hours"]), str(t["interruptions"]), usd(t["overhead_cost"]), usd(t["total_cost"]))
                  for t in tiers], (28, 16, 20, 26, 28, 26, 30))

    pdf.subheading("Recommendation")
    for line in advice(total, tiers):
        pdf.paragraph(f"• {line}")
    pdf.paragraph("On-demand equivalents price each spot job's pod hours, less the work interruptions made it redo,"
                  f" at {usd(OfflinePrices().on_demand)}/hr.", size=8, color=MUTED)
    return bytes(pdf.output())
