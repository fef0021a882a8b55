"""The loss curve's columns (FR2.1.1) as the chart takes them; its reads of the metric history
are in projections/loss_curve.py."""

from __future__ import annotations

import math
from typing import Any


def columns(rows: list[tuple]) -> dict[str, Any]:
    """(step, loss, eval_loss) rows → the chart's columns; a NaN or infinite loss (a diverged run)
    becomes a gap: JSON has no NaN."""
    steps = [r[0] for r in rows]
    evals = [r[0] for r in rows if r[2] is not None]
    return {"steps": steps, "loss": [finite(r[1]) for r in rows], "eval": [finite(r[2]) for r in rows],
            "last_step": steps[-1] if steps else -1, "last_eval_step": evals[-1] if evals else -1}


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
