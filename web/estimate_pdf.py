"""FR1.2.1's "Download Cost Estimate": the new-job page's estimate as a PDF for client quotes or
budget approvals — the configuration summary, the detailed cost breakdown, the comparison with
the other presets and GPU tiers, the historical accuracy of past estimates, and the month's budget
with this job. The figures are the cost panel's (web/quote.py, web/cost_panel.py), so the PDF says
what the page says."""

from __future__ import annotations

from datetime import datetime

from domain.gpu import GPU_TYPE, PricingTier
from domain.money import usd
from domain.presets import PRESETS
from web.cost_panel import disclaimer, panel
from web.hyperparameters import readable_parameters
from web.pdf_base import MUTED, BrandedPdf
from web.quote import TIER_TITLES, TIERS, Quote


def render_estimate(quote: Quote, time_zone: str, now: datetime) -> bytes:
    shown, lines = quote.shown, panel(quote)
    title = f"Cost estimate: {quote.preset.title} preset, {TIER_TITLES[quote.tier]}"
    pdf = BrandedPdf(f"{quote.file['name']} - cost estimate", f"{quote.file['name']} · cost estimate", time_zone,
                     now)
    pdf.title_page("Cost estimate", title, f"Prepared {pdf.local(now)} · estimation {shown.algorithm_version}", 20)

    pdf.subheading("Configuration")
    pdf.facts([("Training file", f"{quote.file['name']}: {quote.file['conversations']:,} conversations,"
                                 f" {quote.file['pairs']:,} training pairs"),
               ("Preset", quote.preset.title),
               ("GPU", f"{GPU_TYPE}, {TIER_TITLES[quote.tier].lower()} at {usd(shown.hourly_rate)}/hr"),
               *((label, value) for label, value, _ in readable_parameters(quote.preset.as_config()))])

    pdf.subheading("Cost breakdown")
    breakdown = [("Estimated duration", f"{lines['duration']} hours (range {lines['duration_range']} hours)"),
                 ("GPU compute", f"{usd(shown.base_gpu_cost)} ({shown.duration_hours} hours ×"
                                 f" {usd(shown.hourly_rate)}/hr)")]
    if quote.tier is PricingTier.SPOT:
        breakdown.append(("Spot interruption buffer", f"+{usd(shown.interruption_overhead)} (estimated recovery time)"))
    breakdown += [("Expected cost", usd(shown.total_cost)), ("Total estimate", lines["range"])]
    if lines["confidence"]:
        breakdown.append(("Confidence", lines["confidence"]))
    pdf.facts(breakdown)
    for warning in lines["warnings"]:
        pdf.paragraph(f"⚠ {warning}", size=9)

    pdf.subheading("Alternative configurations")
    rows = []
    for preset in PRESETS:
        for tier in TIERS:
            option = quote.all[preset.name][tier].for_display()
            chosen = preset.name == quote.preset.name and tier is quote.tier
            rows.append((f"{preset.title}{' (this estimate)' if chosen else ''}", TIER_TITLES[tier],
                         f"{option.duration_hours} h", usd(option.total_cost),
                         f"{usd(option.cost_min)} - {usd(option.cost_max)}"))
    pdf.grid(("Preset", "GPU", "Duration", "Expected", "Range"), rows, (46, 38, 22, 26, 42))

    pdf.subheading("Historical accuracy")
    pdf.paragraph(lines["accuracy"] or "No completed job of this preset to compare past estimates with yet.")
    pdf.paragraph(disclaimer(quote.history), size=9, color=MUTED)

    pdf.subheading(f"Budget ({quote.budget.month})")
    budget = quote.budget_lines()
    facts = [("Remaining this month", f"{budget['remaining']} of {budget['limit']} ({budget['spent']} spent,"
                                      f" {budget['reserved']} reserved for active jobs)"),
             ("Forecast", budget["forecast"])]
    if budget["refusal"]:
        facts.append(("Budget check", budget["refusal"]["figures"]))
    elif budget["grace"]:
        facts.append(("Budget check", budget["grace"]))
    else:
        facts.append(("Budget check", "Fits the remaining budget"))
    pdf.facts(facts)
    return bytes(pdf.output())
