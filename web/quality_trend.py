"""FR6.1.1's perplexity trend on /analytics, drawn by the server as SVG: one point per evaluated run in
the order the runs were created (x), its perplexity improvement (y), with the badges' 20 % and 30 %
lines, coloured by the delivery gate's outcome."""

from __future__ import annotations

from typing import Any

from domain.quality.perplexity import ACCEPTABLE, PRODUCTION_READY
from web.reports.chart_axes import axis

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 16, 40


def trend_chart(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """`projections.analytics.perplexity_trend` rows; None without any."""
    if not rows:
        return None
    values = [float(r["perplexity_improvement"]) for r in rows]
    y0, y1, y_ticks = axis(min([*values, 0.0]), max([*values, PRODUCTION_READY + 5]))
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = inner_w / max(1, len(rows) - 1)

    def x(i: int) -> float:
        return round(LEFT + (i * step if len(rows) > 1 else inner_w / 2), 1)

    def y(value: float) -> float:
        return round(TOP + inner_h - (value - y0) / (y1 - y0) * inner_h, 1)

    points = [{**r, "run": i + 1, "cx": x(i), "cy": y(v),
               "gate": "released" if r["quality_overridden"] else (r["quality_outcome"] or "none")}
              for i, (r, v) in enumerate(zip(rows, values, strict=True))]
    return {"width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT, "top": TOP,
            "bottom": HEIGHT - BOTTOM, "points": points, "path": " ".join(f"{p['cx']},{p['cy']}" for p in points),
            "y_ticks": [(y(t), f"{t:g}%") for t in y_ticks],
            "thresholds": [(y(PRODUCTION_READY), "30%: production ready"), (y(ACCEPTABLE), "20%: acceptable")]}
