"""What the training report (FR4.2.2) says about a completed job, worked out from the job's events
(the aggregate: configuration, pods, final metrics) and its metric history: the loss against its
baseline, where it converged, and the cost split with the on-demand equivalent. Pure: the report's
reader (web/report_data.py) passes the rows in."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.aggregates.training_job import TrainingJob
from domain.cost_ledger import ledger
from domain.gpu import OfflinePrices, PricingTier
from domain.money import cents
from web.loss_curve import finite

PLATEAU_SHARE = Decimal("0.05")  # within 5 % of the whole drop of the smoothed loss: on the plateau
MAX_CHART_POINTS = 400


@dataclass(frozen=True)
class MetricRow:
    step: int
    epoch: float | None
    loss: float | None
    eval_loss: float | None
    learning_rate: float | None
    perplexity: float | None
    gpu_util: float | None
    tokens_per_s: float | None


def loss_outcome(rows: list[MetricRow], final_metrics: dict[str, Any]) -> dict[str, float | None]:
    """The spec's "Final training loss: 0.287 (baseline: 1.423) - 80% improvement": the baseline is
    the first logged loss, the final one the agent's (else the last logged)."""
    losses = [loss for r in rows if (loss := finite(r.loss)) is not None]
    reported = final_metrics.get("final_loss")
    final = finite(float(reported)) if isinstance(reported, int | float) else (losses[-1] if losses else None)
    baseline = losses[0] if losses else None
    improvement = (baseline - final) / baseline * 100 if baseline and final is not None else None
    evals = [value for r in rows if (value := finite(r.eval_loss)) is not None]
    return {"baseline": baseline, "final": final, "improvement_percent": improvement,
            "final_eval": evals[-1] if evals else None}


def convergence(rows: list[MetricRow]) -> str:
    """Where the smoothed training loss reached its plateau (within 5 % of its whole drop from
    there to the end), as the spec's "Loss plateaued at epoch 2.5, indicating optimal training
    completion"; or that it was still falling, or never fell."""
    points = [(r.step, r.epoch, loss) for r in rows if (loss := finite(r.loss)) is not None]
    if len(points) < 10:
        return "Too few logged steps to judge convergence."
    window = max(1, len(points) // 20)
    smooth = [sum(p[2] for p in points[max(0, i - window + 1):i + 1]) / len(points[max(0, i - window + 1):i + 1])
              for i in range(len(points))]
    drop = smooth[0] - smooth[-1]
    if drop <= 0:
        return "The loss did not decrease over training: check the learning rate and the training data."
    tolerance = float(PLATEAU_SHARE) * drop
    start = len(smooth) - 1
    while start > 0 and smooth[start - 1] - smooth[-1] <= tolerance:
        start -= 1
    step, epoch, _ = points[start]
    if start >= 0.9 * (len(points) - 1):
        return (f"Loss was still decreasing at the end of training (step {points[-1][0]:,}): more epochs may"
                " lower it further.")
    where = f"epoch {epoch:.1f} (step {step:,})" if epoch is not None else f"step {step:,}"
    return f"Loss plateaued at {where}, indicating optimal training completion."


def thinned(rows: list[MetricRow], most: int = MAX_CHART_POINTS) -> list[MetricRow]:
    """Every k-th row and the last, for a chart; evaluations are kept."""
    if len(rows) <= most:
        return rows
    k = math.ceil(len(rows) / most)
    return [r for i, r in enumerate(rows) if i % k == 0 or i == len(rows) - 1 or r.eval_loss is not None]


def cost_facts(job: TrainingJob, now: datetime) -> dict[str, Any]:
    """The cost breakdown page: GPU time and cost split as the ledger splits it (useful, redone
    after interruptions, set-up), the rates paid, interruptions, and what on-demand would have cost
    (FR7.3.1's comparison, as projections.finance.savings_rows computes it)."""
    totals = ledger(tuple(job.pods.values()), now)
    split = totals.in_cents()
    hours = totals.total_seconds / 3600
    rates = sorted({pod.hourly_rate for pod in job.pods.values()})
    tier = (job.configuration or {}).get("gpu_tier", "spot")
    # As the finance savings report: the pod hours less the work an interruption made it redo (an
    # on-demand pod is not preempted), at the on-demand rate.
    worked = totals.total_seconds - totals.lost_seconds
    on_demand = cents(OfflinePrices().on_demand * worked / 3600)
    total = split["total"]
    saved = on_demand - total if tier == PricingTier.SPOT.value else None
    return {"hours": hours, "total": total, "useful": split["useful"], "lost": split["lost"],
            "setup": split["setup"], "useful_hours": totals.useful_seconds / 3600,
            "lost_hours": totals.lost_seconds / 3600, "setup_hours": totals.setup_seconds / 3600,
            "rates": rates, "tier": tier, "gpu_type": (job.configuration or {}).get("gpu_type", ""),
            "interruptions": job.interruptions, "pods": len(job.pods), "on_demand": on_demand, "saved": saved,
            "saved_percent": (saved / on_demand * 100) if saved is not None and on_demand else None,
            "estimate_max": (job.configuration or {}).get("estimated_cost_max")}
