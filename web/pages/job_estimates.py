"""The new-job page's estimate endpoints (FR1.2.1): the cost panel as an HTML fragment that
new_job.js swaps in on every change, and the same estimate as JSON, to the cent."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.params import FromQuery
from litestar.response import Template

from domain.cost_model import estimate_warnings
from domain.gpu import PricingTier
from domain.money import cents
from domain.presets import LOCKED_TOOLTIP, UnknownPresetError, is_unlocked, preset_named
from web import cost_panel
from web.auth import actor_of
from web.clock import utcnow
from web.errors import message_of
from web.estimate_pdf import render_estimate
from web.job_checks import length_check
from web.job_form import JobInput, as_money
from web.new_job_view import NewJobPage, editable_job
from web.pages.job_downloads import safe_name
from web.quote import Quote


@get("/jobs/new/estimate", media_type=MediaType.HTML)
async def estimate_fragment(request: Request, state: State, training_file_id: FromQuery[str | None] = None,
                            preset: FromQuery[str | None] = None, gpu_tier: FromQuery[str | None] = None,
                            previous_total: FromQuery[str | None] = None,
                            job_id: FromQuery[str | None] = None) -> Template:
    """The cost panel for one configuration (HTML fragment; new_job.js swaps it in on every change)."""
    values = JobInput(training_file_id=(training_file_id or "")[:64], preset=(preset or "")[:40].lower(),
                      gpu_tier=(gpu_tier or "spot")[:20], job_id=(job_id or "")[:64])
    editing = await editable_job(state, values.job_id)
    page = await NewJobPage.load(state, actor_of(request), values, editing, as_money(previous_total))
    quote = page.quote()
    if quote is None:
        return Template("partials/cost_panel.html", context={"panel": None, "figures": None})
    cut = page.length_cut()
    return Template("partials/cost_panel.html", context={"panel": cost_panel.panel(quote),
                                                         "figures": cost_panel.figures(quote, page.default_name()),
                                                         "length_warning": cut and cut.warning})


@get("/jobs/new/estimate.json")
async def estimate_json(request: Request, state: State, training_file_id: FromQuery[str | None] = None,
                        preset: FromQuery[str | None] = None,
                        gpu_tier: FromQuery[str | None] = None) -> Response[dict[str, Any]]:
    """The domain's estimate for one configuration, amounts to the cent, with the budget check."""
    values = JobInput(training_file_id=(training_file_id or "")[:64], preset=(preset or "")[:40].lower(),
                      gpu_tier=(gpu_tier or "spot")[:20])
    page = await NewJobPage.load(state, actor_of(request), values)
    quote = page.quote()
    if quote is None or page.file is None or page.file["id"] != values.training_file_id:
        return Response({"status_code": 400, "detail": "Training file not found"}, status_code=400)
    try:
        preset_named(values.preset)
        PricingTier(values.gpu_tier)
    except (UnknownPresetError, ValueError) as exc:
        return Response({"status_code": 400, "detail": message_of(exc)}, status_code=400)
    locked = not is_unlocked(quote.preset, page.file["conversations"], page.successful_jobs)
    return Response(estimate_body(quote, page.file["id"]) | {"locked": LOCKED_TOOLTIP if locked else None,
                                                             "budget": budget_body(quote),
                                                             "sequence_length": length_check(page)})


def estimate_body(quote: Quote, file_id: str) -> dict[str, Any]:
    shown = quote.shown
    return {
        "training_file_id": file_id, "preset": quote.preset.name, "gpu_tier": quote.tier.value,
        "training_pairs": shown.training_pairs, "epochs": shown.epochs, "hourly_rate": str(shown.hourly_rate),
        "duration_hours": str(shown.duration_hours), "duration_min_hours": str(shown.duration_min_hours),
        "duration_max_hours": str(shown.duration_max_hours), "base_gpu_cost": str(shown.base_gpu_cost),
        "interruption_overhead": str(shown.interruption_overhead), "total_cost": str(shown.total_cost),
        "cost_min": str(shown.cost_min), "cost_max": str(shown.cost_max),
        "interruption_probability": str(quote.history.interruption_probability),
        "algorithm_version": shown.algorithm_version, "confidence": shown.confidence,
        "warnings": list(estimate_warnings(quote.estimate)), "duration_basis": duration_basis(quote),
    }


def duration_basis(quote: Quote) -> dict[str, Any]:
    """Whether the duration rests on measured throughput (its completed jobs and tokens/s) or the default rate."""
    timing = quote.history.coefficients.timing(quote.preset.name)
    rate = timing.tokens_per_second
    return {"source": "default" if rate is None else "measured", "completed_jobs": timing.jobs,
            "tokens_per_second": None if rate is None else str(rate), "seconds_per_pair": str(timing.seconds_per_pair),
            "text": cost_panel.duration_basis(quote)}


def budget_body(quote: Quote) -> dict[str, Any]:
    """Whether it fits this month's budget, and FR1.2.2's refusal figures when it would be refused."""
    lines = quote.budget_lines()
    return {"month": quote.budget.month, "limit": str(cents(quote.budget.limit)),
            "remaining": str(cents(quote.budget.remaining)), "fits": quote.fits, "blocked": quote.blocked,
            "message": lines["insufficient"], "refusal": lines["refusal"]["figures"] if lines["refusal"] else None}


@get("/jobs/new/estimate.pdf", media_type=MediaType.HTML)
async def estimate_pdf(request: Request, state: State, training_file_id: FromQuery[str | None] = None,
                       preset: FromQuery[str | None] = None, gpu_tier: FromQuery[str | None] = None) -> Response:
    """FR1.2.1 "Download Cost Estimate": the estimate for one configuration as a PDF, named
    `cost-estimate-{file}-{preset}-{tier}-{timestamp}.pdf`."""
    values = JobInput(training_file_id=(training_file_id or "")[:64], preset=(preset or "")[:40].lower(),
                      gpu_tier=(gpu_tier or "spot")[:20])
    try:
        preset_named(values.preset)
        PricingTier(values.gpu_tier)
    except (UnknownPresetError, ValueError) as exc:
        return Template("error.html", status_code=400,
                        context={"title": "No cost estimate", "message": message_of(exc)})
    page = await NewJobPage.load(state, actor_of(request), values)
    quote = page.quote()
    if quote is None or page.file is None or page.file["id"] != values.training_file_id:
        return Template("error.html", status_code=400, context={
            "title": "No cost estimate", "message": "Choose a valid training file with conversations first."})
    now = utcnow()
    pdf = await asyncio.to_thread(render_estimate, quote, state.settings.budget.time_zone, now)
    name = safe_name(f"cost-estimate-{page.file['name']}-{quote.preset.name}-{quote.tier.value}")
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{name}-{now:%Y%m%d-%H%M%S}.pdf"', "Cache-Control": "no-store"})


routes = [estimate_fragment, estimate_json, estimate_pdf]
