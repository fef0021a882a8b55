"""Chart axes drawn by the server (the analytics scatter, the training report's graphs): bounds
rounded out to whole 1, 2 or 5 × 10ⁿ steps, and their ticks."""

from __future__ import annotations

import math


def nice_step(span: float, ticks: int = 5) -> float:
    """A 1, 2 or 5 × 10ⁿ step giving about `ticks` intervals over `span`."""
    raw = span / ticks if span > 0 else 1.0
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def axis(low: float, high: float) -> tuple[float, float, list[float]]:
    """Bounds rounded out to whole steps, and the ticks between them."""
    if high <= low:
        low, high = low - (abs(low) * 0.1 or 0.5), high + (abs(high) * 0.1 or 0.5)
    step = nice_step(high - low)
    start, end = math.floor(low / step) * step, math.ceil(high / step) * step
    count = round((end - start) / step)
    return start, end, [round(start + i * step, 10) for i in range(count + 1)]
