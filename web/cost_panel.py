"""What the new-job page shows of a quote (FR1.1.2, FR1.1.3, FR1.2.1): the cost panel, the preset
and GPU option cards, and the figures new_job.js puts into the cards after a change."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from domain.aggregates.budget import MANAGER_ROLES, OVERRIDE_JUSTIFICATION_MIN
from domain.cost_model import MIN_SAMPLES_PER_PRESET, CostEstimate, estimate_warnings
from domain.gpu import PricingTier, Savings
from domain.money import usd
from domain.presets import LOCKED_TOOLTIP, PRESETS, Preset, default_preset, is_unlocked, success_rate_text
from web.hyperparameters import readable_parameters
from web.job_history import History
from web.quote import TIER_TITLES, TIERS, Quote, money_range, share

PRESET_ICONS = {"conservative": "⚓", "balanced": "⚖", "aggressive": "⚡"}
RISK_TITLES = {"low": "Low", "medium": "Medium", "high": "High"}


def panel(quote: Quote) -> dict[str, Any]:
    """The cost panel (partials/cost_panel.html)."""
    shown, exact = quote.shown, quote.estimate
    accuracy = quote.history.preset_accuracy.get(quote.preset.name)
    done = quote.now + timedelta(hours=float(exact.duration_hours))
    return {
        "preset": quote.preset.title, "tier": TIER_TITLES[quote.tier], "spot": quote.tier is PricingTier.SPOT,
        **cost_lines(shown, exact), "disclaimer": disclaimer(quote.history),
        "confidence": (f"{exact.confidence}% confidence this estimate is accurate within range"
                       if exact.confidence is not None else None),
        "accuracy": (f"Past estimates within ±{accuracy:.0f}% for {quote.preset.title} preset"
                     if accuracy is not None else None),
        "warnings": estimate_warnings(exact),
        "completion": (f"Estimated completion: {done:%Y-%m-%d %H:%M} UTC (assuming "
                       f"{'spot' if quote.tier is PricingTier.SPOT else 'on-demand'} provisioning <5 min)"),
        "delta": quote.delta(), "budget": quote.budget_lines(), "blocked": quote.blocked, "fits": quote.fits,
        "manager": quote.role in MANAGER_ROLES, "override_min": OVERRIDE_JUSTIFICATION_MIN,
        "version": exact.algorithm_version, "basis": duration_basis(quote),
        "estimate_pdf": "/jobs/new/estimate.pdf?" + urlencode(
            {"training_file_id": quote.file["id"], "preset": quote.preset.name, "gpu_tier": quote.tier.value}),
    }


def cost_lines(shown: CostEstimate, exact: CostEstimate) -> dict[str, str]:
    """FR1.2.1's breakdown: duration, range, GPU compute and the spot buffer (bars from exact amounts)."""
    return {
        "duration": f"{shown.duration_hours}",
        "duration_range": f"{shown.duration_min_hours}-{shown.duration_max_hours}",
        "range": f"{usd(shown.cost_min)} - {usd(shown.cost_max)}", "total": usd(shown.total_cost),
        "total_value": f"{shown.total_cost}",
        "gpu_line": (f"GPU Compute: {usd(shown.base_gpu_cost)} ({shown.duration_hours} hours ×"
                     f" {usd(shown.hourly_rate)}/hr)"),
        "buffer_line": f"Spot Interruption Buffer: +{usd(shown.interruption_overhead)} (estimated recovery time)",
        "total_line": f"Total Estimate: {usd(shown.cost_min)} - {usd(shown.cost_max)}",
        "bar_gpu": share(exact.base_gpu_cost, exact.total_cost),
        "bar_buffer": share(exact.interruption_overhead, exact.total_cost),
    }


def duration_basis(quote: Quote) -> str:
    """Where the duration comes from: the tokens/s completed jobs of this preset measured, or the shipped rate."""
    timing = quote.history.coefficients.timing(quote.preset.name)
    if timing.tokens_per_second is None:
        return (f"Duration from the default rate: fewer than {MIN_SAMPLES_PER_PRESET} completed {quote.preset.title}"
                " jobs with measured throughput yet")
    return (f"Duration based on {timing.jobs} completed job{'s' if timing.jobs != 1 else ''}:"
            f" {timing.tokens_per_second:,} tokens/s")


def disclaimer(history: History) -> str:
    jobs = history.completed_jobs
    basis = (f"±15% variance based on {jobs} historical job{'s' if jobs != 1 else ''}" if jobs else
             "±15% variance (no completed jobs to compare with yet)")
    return basis + ". Actual cost depends on dataset complexity, spot interruptions, and training convergence."


def preset_cards(quote: Quote) -> list[dict[str, Any]]:
    recommended = default_preset(quote.file["conversations"])
    return [preset_card(quote, p, p is recommended) for p in PRESETS]


def preset_card(quote: Quote, p: Preset, recommended: bool) -> dict[str, Any]:
    """One preset's card (FR1.1.2): what it is for, its risk, record and cost on each tier."""
    spot, on_demand = (quote.all[p.name][t].for_display() for t in TIERS)
    completed, finished = quote.history.preset_outcomes.get(p.name, (0, 0))
    return {
        "name": p.name, "title": p.title, "icon": PRESET_ICONS[p.name], "description": p.description,
        "risk": RISK_TITLES[p.risk.value], "risk_class": p.risk.value, "risk_tooltip": p.risk.tooltip,
        "success": success_rate_text(completed, finished), "use_cases": p.use_cases, "recommended": recommended,
        "unlocked": is_unlocked(p, quote.file["conversations"], quote.successful_jobs),
        "locked_tooltip": LOCKED_TOOLTIP, "hours": f"{spot.duration_min_hours}-{spot.duration_max_hours}",
        "spot": money_range(spot.cost_min, spot.cost_max),
        "on_demand": money_range(on_demand.cost_min, on_demand.cost_max),
        "parameters": readable_parameters(p.as_config()),
    }


def tier_cards(quote: Quote) -> dict[str, Any]:
    """The spot and on-demand cards (FR1.1.3): rates, totals, bars, the recommendation."""
    spot, on_demand = (e.for_display() for e in quote.on_tiers())
    rec, widest = quote.recommendation, max(spot.total_cost, on_demand.total_cost)
    return {
        "spot_rate": usd(spot.hourly_rate), "on_demand_rate": usd(on_demand.hourly_rate),
        "on_demand_rate_label": quote.rate_label(PricingTier.ON_DEMAND),
        "rate_badge": Savings.between(spot.hourly_rate, on_demand.hourly_rate).badge(),
        "spot_total": usd(spot.total_cost), "on_demand_total": usd(on_demand.total_cost),
        "spot_bar": share(spot.total_cost, widest), "on_demand_bar": share(on_demand.total_cost, widest),
        "spot_overhead": usd(spot.interruption_overhead), "savings": savings_text(quote.savings),
        **spot_record(quote.history), "recommendation": rec.reason, "recommended_tier": rec.tier.value,
        "confirmation": ({"message": quote.confirmation.message, "actions": list(quote.confirmation.actions)}
                         if quote.confirmation else None),
    }


def savings_text(savings: Savings) -> str:
    return (f"Spot saves {usd(savings.amount)} ({savings.percentage:.0f}%) on this job"
            if savings.amount > 0 else "Spot costs the same as on-demand for this job")


def spot_record(h: History) -> dict[str, str]:
    """Spot's interruption rate (30 days) and success rate (90 days), or what is assumed without them."""
    rate = f"{h.interruption_probability * 100:.0f}% interruption rate"
    return {
        "interruption": (f"{rate} (last 30 days)" if h.spot_recent else
                         f"{rate} assumed (no spot jobs in the last 30 days)"),
        "spot_success": (f"{Decimal(h.spot_completed) * 100 / h.spot_finished:.1f}% of spot jobs complete"
                         " successfully (based on last 90 days)" if h.spot_finished else
                         "No finished spot jobs in the last 90 days yet"),
    }


def figures(quote: Quote, name_default: str) -> dict[str, Any]:
    """What new_job.js puts into the cards after a change (the panel itself is HTML)."""
    keys = ("hours", "spot", "on_demand", "recommended", "unlocked")
    return {"presets": {c["name"]: {k: c[k] for k in keys} for c in preset_cards(quote)},
            "tiers": tier_cards(quote), "blocked": quote.blocked, "name_default": name_default,
            "total": f"{quote.shown.total_cost}"}
