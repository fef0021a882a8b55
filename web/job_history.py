"""Past jobs behind the new-job page's rates and badges (FR1.1.2, FR1.1.3, FR1.2.1), from the read model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from litestar.datastructures import State

from domain.gpu import interruption_rate
from projections import job_reads


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
        preset_accuracy={r["preset"]: Decimal(r["error"]) * 100 for r in presets if r["error"] is not None})
