"""What the review & start page shows of a configured job (FR1.3.2): its configuration in words,
its cost priced again on today's history, its budget impact, warnings and the start checklist."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from litestar.datastructures import State

from domain.aggregates.budget import LIMIT_JUSTIFICATION_MIN, MANAGER_ROLES, OVERRIDE_JUSTIFICATION_MIN
from domain.aggregates.catalog_file import CatalogFile
from domain.aggregates.training_job import TrainingJob
from domain.cost_model import DEFAULT_COEFFICIENTS, Coefficients, CostEstimate, estimate_cost, review_warnings
from domain.cost_model.review import LOW_BUDGET_WARNING
from domain.gpu import GPU_TYPE, GpuOption, PricingTier, Savings, gpu_option
from domain.money import cents, usd
from domain.presets import CONSERVATIVE, Preset, preset_named
from domain.training_file import quality_indicator
from projections import job_reads
from web.budget_view import BudgetView, budget_alert, limit_months, load_budget, suggested_limit
from web.clock import utcnow
from web.file_cards import number
from web.flows import Actor
from web.hyperparameters import readable_parameters
from web.job_history import History, load_history
from web.new_job_view import DUPLICATE_NAME
from web.quote import TIER_TITLES, TIERS, Quote, estimates_for, money_range, share

GPU_NAMES = {GPU_TYPE: "H100 PCIe 80GB"}
CHECKLIST = (  # FR1.3.2's three boxes
    ("check_reviewed",
     "I have reviewed the complete training configuration above and confirm all settings are correct"),
    ("check_cost", "I understand the estimated cost ({range}) and agree to proceed with charges within this range"),
    ("check_approval", ("I have obtained necessary budget approval (if required by my organization) and"
                        " authorization to incur these costs")),
)
CHECKLIST_ERROR = "Check all three confirmations before starting the training."


@dataclass(frozen=True)
class Repriced:
    """The job's configuration priced on today's interruption history: on its own GPU option and
    epochs, on the other tier, and as Conservative."""

    gpus: Mapping[PricingTier, GpuOption]
    estimate: CostEstimate
    other: CostEstimate
    conservative: CostEstimate
    probability: Decimal

    @classmethod
    def of(cls, job: TrainingJob, preset: Preset, tier: PricingTier, probability: Decimal,
           coefficients: Coefficients = DEFAULT_COEFFICIENTS) -> Repriced:
        config = job.configuration or {}
        own = GpuOption(tier, Decimal(config["hourly_rate"]), config.get("gpu_type", GPU_TYPE))
        gpus = {t: gpu_option(t) for t in TIERS} | {tier: own}
        epochs = int((config.get("hyperparameters") or {}).get("num_train_epochs", preset.epochs))

        def on(gpu: GpuOption) -> CostEstimate:
            return estimate_cost(preset, job.pair_count, gpu, epochs=epochs, interruption_probability=probability,
                                 coefficients=coefficients)

        conservative = estimate_cost(CONSERVATIVE, job.pair_count, gpus[tier], interruption_probability=probability,
                                     coefficients=coefficients)
        return cls(gpus, on(gpus[tier]), on(gpus[TIERS[1 - TIERS.index(tier)]]), conservative, probability)


async def review_context(state: State, actor: Actor, job: TrainingJob, **extra: Any) -> dict[str, Any]:
    config = job.configuration or {}
    preset, tier = preset_named(config["preset"]), PricingTier(config["gpu_tier"])
    history, budget = await load_history(state), await load_budget(state, utcnow())
    priced = Repriced.of(job, preset, tier, history.interruption_probability, history.coefficients)
    quote = reserved_quote(job, actor, preset, tier, priced, budget, history)
    high = config["estimated_cost_max"]
    cost_range = money_range(config["estimated_cost_min"], high)
    return {
        "job": job, "config": config, "preset": preset, "tier": tier,
        **configuration_lines(config, preset, tier, priced), "file": await file_summary(state, job),
        "cost_range": cost_range, **cost_lines(config, tier, priced), "budget": budget, **budget_impact(budget, high),
        "warnings": await warnings_for(state, job, tier, priced, budget, quote.blocked),
        "budget_lines": quote.budget_lines(), "blocked": quote.blocked,
        "checklist": [(key, text.format(range=cost_range)) for key, text in CHECKLIST],
        "manager": actor.role in MANAGER_ROLES, "limits": {"override": OVERRIDE_JUSTIFICATION_MIN,
                                                           "limit_justification": LIMIT_JUSTIFICATION_MIN},
        "suggested_limit": suggested_limit(budget, quote.estimate.cost_max), "months": limit_months(budget.month),
        "similar": await similar_for(state, job, preset), "checked": {}, "errors": {}, "usd": usd, **extra,
    }


def reserved_quote(job: TrainingJob, actor: Actor, preset: Preset, tier: PricingTier, priced: Repriced,
                   budget: BudgetView, history: History) -> Quote:
    """A quote whose chosen estimate is what the start reserves (the stored range): the budget lines."""
    config = job.configuration or {}
    every = estimates_for(job.pair_count, priced.probability, coefficients=history.coefficients)
    every[preset.name][tier] = replace(priced.estimate, cost_min=config["estimated_cost_min"],
                                       cost_max=config["estimated_cost_max"])
    card = {"conversations": job.conversation_count, "pairs": job.pair_count, "name": job.file_name}
    return Quote(card, preset, tier, every, budget, history, actor.role, 0)


def configuration_lines(config: Mapping[str, Any], preset: Preset, tier: PricingTier,
                        priced: Repriced) -> dict[str, Any]:
    """The GPU and the hyperparameters in words."""
    return {
        "tier_title": TIER_TITLES[tier],
        "gpu_name": GPU_NAMES.get(config.get("gpu_type", GPU_TYPE), config.get("gpu_type")),
        "rate": usd(Decimal(config["hourly_rate"])),
        "rate_badge": Savings.between(priced.gpus[PricingTier.SPOT].hourly_rate,
                                      priced.gpus[PricingTier.ON_DEMAND].hourly_rate).badge(),
        "interruption": f"{priced.probability * 100:.0f}% chance based on 30-day history",
        "parameters": readable_parameters(config.get("hyperparameters") or preset.as_config()),
    }


def cost_lines(config: Mapping[str, Any], tier: PricingTier, priced: Repriced) -> dict[str, Any]:
    """The estimate's breakdown, its confidence, and what the other tier would cost."""
    estimate, other = priced.estimate, priced.other
    shown = estimate.for_display()
    savings = Savings.between(cents(min(estimate.total_cost, other.total_cost)),
                              cents(max(estimate.total_cost, other.total_cost)))
    return {
        "duration": f"{cents(config['estimated_duration_hours'])}",
        "duration_range": f"{shown.duration_min_hours}-{shown.duration_max_hours}", "shown": shown,
        "gpu_share": share(estimate.base_gpu_cost, estimate.total_cost),
        "buffer_share": share(estimate.interruption_overhead, estimate.total_cost),
        "confidence": (f"{estimate.confidence}% of jobs finish within this range" if estimate.confidence is not None
                       else "No completed jobs yet to measure how often estimates hold"),
        "alternative": (f"Save {usd(savings.amount)} vs on-demand ({usd(other.total_cost)})"
                        if tier is PricingTier.SPOT else
                        f"Spot would save {usd(savings.amount)} ({usd(other.total_cost)} on spot)"),
    }


def budget_impact(budget: BudgetView, high: Decimal) -> dict[str, Any]:
    """The month's spend with this job's maximum reserved: figures, bar widths and colour level."""
    projected = budget.spent + budget.reserved + high
    projected_percent = projected * 100 / budget.limit if budget.limit else Decimal(100)
    after = budget.remaining - high
    return {
        "this_job": usd(high), "projected": usd(projected), "projected_percent": f"{projected_percent:.0f}",
        "after": usd(after), "after_negative": after < 0, "over_by": usd(-after),
        "used": f"{budget.utilisation:.0f}", "used_width": f"{min(budget.utilisation, Decimal(100)):.1f}",
        "projected_width": f"{min(projected_percent, Decimal(100)):.1f}",
        "level": "ok" if projected_percent < 90 else "warn" if projected_percent <= 95 else "bad",
        "more_jobs": (after / high).to_integral_value(ROUND_FLOOR) if high > 0 and after > 0 else 0,
    }


async def file_summary(state: State, job: TrainingJob) -> dict[str, Any]:
    """The training file with its catalogued statistics and quality scores."""
    entry = await asyncio.to_thread(state.store.app.catalog_file, CatalogFile.id_for(job.training_file.sha256))
    stats = entry.stats if entry is not None else {}
    return {"name": job.file_name, "conversations": job.conversation_count, "pairs": job.pair_count,
            "quality": {k: number(v) for k, v in (stats.get("quality") or {}).items()}, "stats": stats,
            "indicator": quality_indicator((stats.get("quality") or {}).get("overall"))}


async def warnings_for(state: State, job: TrainingJob, tier: PricingTier, priced: Repriced,
                       budget: BudgetView, blocked: bool = False) -> list[str]:
    """FR1.3.2's warnings, then a duplicate name, the budget alert and spot's interruption risk.
    `blocked`: the budget refuses the start, which the budget card says once with its figures
    (issue #23), so the low-budget warning and the month's alert are left out here."""
    previous_jobs = await job_reads.started_jobs(state.pool, job.created_by, job.id)
    warnings = [w for w in review_warnings(priced.estimate, priced.conservative.total_cost, budget.remaining,
                                           previous_jobs) if not (blocked and w == LOW_BUDGET_WARNING)]
    if await job_reads.same_name_exists(state.pool, job.created_by, job.name, job.id):
        warnings.append(DUPLICATE_NAME)
    if (alert := budget_alert(budget)) and not blocked:
        warnings.append(alert)
    if tier is PricingTier.SPOT:
        warnings.append(f"ℹ Spot Interruption Risk: {priced.probability * 100:.0f}% chance based on 30-day history."
                        " Progress is saved every 100 steps and resumes automatically within 10 minutes.")
    return warnings


async def similar_for(state: State, job: TrainingJob, preset: Preset) -> str | None:
    """How the person's latest comparable job's final cost compared with its estimate."""
    row = await job_reads.similar_job(state.pool, job.created_by, job.id, preset.name, job.file_name)
    if row is None:
        return None
    estimated = (row["estimated_cost_min"] + row["estimated_cost_max"]) / 2
    difference = (row["cost"] - estimated) * 100 / estimated if estimated else Decimal(0)
    return (f"Similar to your previous job: {row['name']} - Final cost was {usd(row['cost'])} vs estimated"
            f" {usd(estimated)} (difference: {difference:+.0f}%)")
