"""FR2.1.1's current metrics table on the job page: the latest figures from the metric history,
the losses with their trend, a warning for a GPU that idles."""

from __future__ import annotations

import math
import re
from typing import Any

from web.detail_format import number

Row = dict[str, Any]
LOW_GPU_UTILIZATION = 50  # FR2.1.1: "Warning if utilization <50%"
LOW_TOKEN_EFFICIENCY = 0.9  # below this, batches carry more padding than length grouping should leave
ENDED = {"completed", "failed", "cancelled"}


def metrics_table(rows: dict[str, list[Row]], job: dict[str, Any]) -> list[Row]:
    """(label, value, trend, warning) rows from the two latest training rows, the two latest
    evaluations and the first row."""
    latest, previous = newest_two(rows["latest"])
    last_eval, prev_eval = newest_two(rows["evals"])
    first = rows["first"][0] if rows["first"] else None
    where = ""
    if job["status"] in ENDED and first is not None and latest is not None and first is not latest:
        previous, where = first, f" at step {first['step']:,}"  # an ended run against its start, not the last wiggle
    table = [training_loss(latest, previous, where), validation_loss(last_eval, prev_eval), learning_rate(latest),
             gpu_utilization(latest), gpu_memory(latest, job["gpu_type"]), peak_gpu_memory(latest),
             perplexity(last_eval), tokens_per_second(latest), token_efficiency(latest), step_time(latest),
             steps_per_hour(first, latest)]
    return [row for row in table if row is not None]


def throughput(rows: dict[str, list[Row]]) -> list[Row]:
    """Issue #23: the trainer's speed beside the loss curve (tokens/s, step time, steps/hour), once it
    reports them; empty before."""
    latest, _ = newest_two(rows["latest"])
    first = rows["first"][0] if rows["first"] else None
    return [row for row in (tokens_per_second(latest), step_time(latest), steps_per_hour(first, latest)) if row]


def newest_two(rows: list[Row]) -> tuple[Row | None, Row | None]:
    return (rows[0] if rows else None), (rows[1] if len(rows) > 1 else None)


def trend(latest: float | None, previous: float | None, where: str = "") -> dict[str, Any] | None:
    """FR2.1.1 trend of a loss: ↓ green when it fell, ↑ red when it rose, — gray when unchanged."""
    if latest is None or previous is None or not (math.isfinite(latest) and math.isfinite(previous)):
        return None
    if latest == previous:
        return {"arrow": "—", "css": "same", "text": f"— from {number(previous)}"}
    change = f" ({(latest - previous) / previous * 100:+.1f}%)" if previous else ""
    arrow, css = ("↓", "better") if latest < previous else ("↑", "worse")
    return {"arrow": arrow, "css": css, "text": f"{arrow} from {number(previous)}{where}{change}"}


def training_loss(latest: Row | None, previous: Row | None, where: str = "") -> Row | None:
    if latest is None:
        return None
    return {"label": "Training loss", "value": number(latest["loss"]),
            "trend": trend(latest["loss"], previous and previous["loss"], where)}


def validation_loss(last_eval: Row | None, prev_eval: Row | None) -> Row | None:
    if last_eval is None:
        return None
    return {"label": "Validation loss", "value": number(last_eval["eval_loss"]),
            "trend": trend(last_eval["eval_loss"], prev_eval and prev_eval["eval_loss"])}


def learning_rate(latest: Row | None) -> Row | None:
    if latest is None or latest["learning_rate"] is None:
        return None
    return {"label": "Learning rate", "value": f"{latest['learning_rate']:.3g}", "note": "current schedule value"}


def gpu_utilization(latest: Row | None) -> Row | None:
    if latest is None or latest["gpu_util"] is None:
        return None
    util = latest["gpu_util"]
    return {"label": "GPU utilization", "value": f"{util:.0f}%",
            "warning": "⚠ Low GPU utilization, possible bottleneck" if util < LOW_GPU_UTILIZATION else None}


def gpu_memory(latest: Row | None, gpu_type: str | None) -> Row | None:
    if latest is None or latest["gpu_memory_gb"] is None:
        return None
    used, total = latest["gpu_memory_gb"], gpu_memory_total(gpu_type)
    return {"label": "GPU memory", "value": f"{used:.0f}GB / {total}GB ({used / total * 100:.0f}%)"
            if total else f"{used:.0f}GB"}


def gpu_memory_total(gpu_type: str | None) -> int | None:
    found = re.search(r"(\d+)\s*GB", gpu_type or "", re.IGNORECASE)
    return int(found.group(1)) if found else None


def perplexity(last_eval: Row | None) -> Row | None:
    if last_eval is None or last_eval["perplexity"] is None:
        return None
    return {"label": "Perplexity", "value": number(last_eval["perplexity"], 2)}


def tokens_per_second(latest: Row | None) -> Row | None:
    if latest is None or latest["tokens_per_s"] is None:
        return None
    return {"label": "Tokens/second", "value": f"{latest['tokens_per_s']:,.0f}",
            "note": "real tokens, padding excluded"}


def token_efficiency(latest: Row | None) -> Row | None:
    """Issue #17: the share of the step's processed tokens that were real, not padding."""
    if latest is None or latest.get("token_efficiency") is None:
        return None
    share = latest["token_efficiency"]
    return {"label": "Useful tokens", "value": f"{share:.1%} of processed",
            "warning": f"⚠ {1 - share:.0%} of the step's compute went to padding" if share < LOW_TOKEN_EFFICIENCY
            else None}


def step_time(latest: Row | None) -> Row | None:
    if latest is None or latest.get("step_time_s") is None:
        return None
    seconds = latest["step_time_s"]
    return {"label": "Step time", "value": f"{seconds:.2f} s" if seconds < 10 else f"{seconds:,.0f} s"}


def peak_gpu_memory(latest: Row | None) -> Row | None:
    if latest is None or latest.get("gpu_peak_memory_gb") is None:
        return None
    return {"label": "Peak GPU memory", "value": f"{latest['gpu_peak_memory_gb']:.1f}GB",
            "note": "allocated by training, the most so far"}


def steps_per_hour(first: Row | None, latest: Row | None) -> Row | None:
    if latest is None or first is None or latest["at"] <= first["at"]:
        return None
    hours = (latest["at"] - first["at"]).total_seconds() / 3600
    return {"label": "Steps/hour", "value": f"{(latest['step'] - first['step']) / hours:,.0f}"}
