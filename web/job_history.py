"""Past jobs behind the new-job page's rates and badges (FR1.1.2, FR1.1.3, FR1.2.1), from the read model."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from litestar.datastructures import State

from domain.cost_model import DEFAULT_COEFFICIENTS, Coefficients, refit
from domain.gpu import GPU_TYPE, interruption_rate
from projections import job_reads, throughput

REFIT_TTL_S = 300.0  # besides each completion: a finished job's last step rows may reach the metric history later


@dataclass(frozen=True)
class History:
    """Spot outcomes and each preset's record, as the cards and the cost panel show them."""

    spot_recent: int = 0          # spot jobs started in the last 30 days
    spot_interrupted: int = 0     # ... of which needed a recovery
    spot_finished: int = 0        # spot jobs completed or failed in the last 90 days
    spot_completed: int = 0
    completed_jobs: int = 0
    preset_outcomes: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # completed, finished
    preset_accuracy: Mapping[str, Decimal] = field(default_factory=dict)         # mean |actual-est|/est, %
    coefficients: Coefficients = DEFAULT_COEFFICIENTS  # refitted from completed jobs' measured tokens/s

    @property
    def interruption_probability(self) -> Decimal:
        return interruption_rate(self.spot_interrupted, self.spot_recent)


async def load_history(state: State) -> History:
    totals = await job_reads.spot_history(state.pool)
    presets = await job_reads.preset_history(state.pool)
    return History(
        spot_recent=totals["spot_recent"], spot_interrupted=totals["spot_interrupted"],
        spot_finished=totals["spot_finished"], spot_completed=totals["spot_completed"],
        completed_jobs=totals["completed_jobs"],
        preset_outcomes={r["preset"]: (r["completed"], r["finished"]) for r in presets},
        preset_accuracy={r["preset"]: Decimal(r["error"]) * 100 for r in presets if r["error"] is not None},
        coefficients=await measured_coefficients(state))


async def measured_coefficients(state: State) -> Coefficients:
    """The duration coefficients every estimate uses: refitted from the throughput completed jobs measured on
    the GPU offered (docs/cost-model.md, "Refit"), the shipped ones until a preset has enough jobs. The refit
    is kept until another job completes, or for REFIT_TTL_S."""
    marker, now = await throughput.completed_marker(state.pool), time.monotonic()
    cached = state.get("cost_refit")
    if cached is not None and cached[0] == marker and now - cached[1] < REFIT_TTL_S:
        return cached[2]
    coefficients = refit(await throughput.samples(state.pool, GPU_TYPE))
    state.cost_refit = (marker, now, coefficients)
    return coefficients
