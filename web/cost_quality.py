"""FR5.1.2's "Cost vs Quality Scatter Plot", drawn by the server as SVG (no script needed): x is the
final validation loss (lower = better quality), y the total cost (lower = cheaper), one dot per
completed job coloured by preset. The "ideal zone" is the lower-left quarter: cheaper than the
median job and better than the median loss. Outliers, highlighted for investigation, are the dots
past Tukey's fence (third quartile + 1.5 × the interquartile range) in cost or in loss, when there
are at least four dots to have quartiles of."""

from __future__ import annotations

from decimal import Decimal
from statistics import median, quantiles
from typing import Any

from domain.money import usd
from web.reports.chart_axes import axis

WIDTH, HEIGHT = 640, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 44  # margins around the plot: axis labels and ticks
MIN_FOR_OUTLIERS = 4


def fence(values: list[float]) -> float | None:
    """Tukey's upper fence; None with too few values."""
    if len(values) < MIN_FOR_OUTLIERS:
        return None
    q1, _, q3 = quantiles(values, n=4, method="inclusive")
    return q3 + 1.5 * (q3 - q1)


def scatter(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The chart's geometry for `projections.analytics.cost_quality` rows; None without points."""
    if not points:
        return None
    losses = [float(p["loss"]) for p in points]
    costs = [float(p["total_cost"]) for p in points]
    x0, x1, x_ticks = axis(min(losses), max(losses))
    _, y1, y_ticks = axis(0.0, max(costs) or 1.0)  # every job free: still a $0 to $1 scale
    y0 = 0.0
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(value: float) -> float:
        return round(LEFT + (value - x0) / (x1 - x0) * inner_w, 1)

    def y(value: float) -> float:
        return round(TOP + inner_h - (value - y0) / (y1 - y0) * inner_h, 1)

    cost_fence, loss_fence = fence(costs), fence(losses)
    mid_loss, mid_cost = median(losses), median(costs)
    dots = []
    for point, loss, cost in zip(points, losses, costs, strict=True):
        reasons = []
        if cost_fence is not None and cost > cost_fence:
            reasons.append(f"cost above {usd(Decimal(str(round(cost_fence, 2))))}")
        if loss_fence is not None and loss > loss_fence:
            reasons.append(f"loss above {loss_fence:.4f}")
        dots.append({**point, "cx": x(loss), "cy": y(cost), "outlier": "; ".join(reasons),
                     "ideal": loss <= mid_loss and cost <= mid_cost})
    return {
        "width": WIDTH, "height": HEIGHT, "left": LEFT, "top": TOP, "right": WIDTH - RIGHT, "bottom": HEIGHT - BOTTOM,
        "dots": dots, "presets": sorted({p["preset"] or "none" for p in points}),
        "x_ticks": [(x(t), f"{t:g}") for t in x_ticks], "y_ticks": [(y(t), usd(Decimal(str(t)))) for t in y_ticks],
        "zone": {"x": LEFT, "y": y(mid_cost), "width": round(x(mid_loss) - LEFT, 1),
                 "height": round(HEIGHT - BOTTOM - y(mid_cost), 1)},
        "median_loss": round(mid_loss, 4), "median_cost": usd(Decimal(str(round(mid_cost, 2)))),
        "outliers": sum(1 for d in dots if d["outlier"]),
    }
