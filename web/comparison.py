"""What the compare page shows for 2 to 4 jobs (FR5.1.1): each job's final figures and the best of
each, how the others differ from the first, a recommendation, and the overlaid loss curves."""

from __future__ import annotations

from typing import Any

from domain.money import cents, usd
from projections.queries import MetricPoint
from web.loss_curve import finite

# One colour a job, in the order compared: the page's curves and swatches (compare.js, compare.html) and
# the PDF's (compare_pdf.py) take them from here. Each is ≥ 3:1 against white (WCAG 1.4.11 for lines).
JOB_COLOURS = ("#2563eb", "#d97706", "#0e9f6e", "#c81e1e")
CLOSE_LOSS = 0.02  # within 2 % of the best loss counts as the same quality (the cheaper one wins)
FIGURES = ("training_loss", "validation_loss", "perplexity", "duration_hours", "cost")


def finals(job: dict[str, Any], points: list[MetricPoint]) -> dict[str, Any]:
    """The final figures: the agent's final loss, else the last logged one; the latest validation
    loss and perplexity of the metric history."""
    return {"training_loss": finite(job["final_loss"]) or finite(job["loss"]) or last(points, "loss"),
            "validation_loss": finite(job["validation_loss"]) or last(points, "eval_loss"),
            "perplexity": last(points, "perplexity"),
            "duration_hours": float(job["duration_seconds"]) / 3600 if job["duration_seconds"] is not None else None,
            "cost": cents(job["cost_so_far"])}


def last(points: list[MetricPoint], name: str) -> float | None:
    return next((v for p in reversed(points) if (v := finite(getattr(p, name))) is not None), None)


def best_values(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The lowest value of each figure, when at least two jobs have one."""
    best = {}
    for name in FIGURES:
        values = [r[name] for r in rows if r[name] is not None]
        if len(values) >= 2:
            best[name] = min(values)
    return best


def differences(rows: list[dict[str, Any]]) -> list[str]:
    """FR5.1.1 "Job 2: 15% lower loss than Job 1" for each job against the first."""
    found = (difference(n, row, rows[0]) for n, row in enumerate(rows[1:], start=2))
    return [text for text in found if text is not None]


def difference(n: int, row: dict[str, Any], first: dict[str, Any]) -> str | None:
    """By validation loss where both have one, else by training loss."""
    for name, what in (("validation_loss", "validation loss"), ("training_loss", "training loss")):
        if row[name] is not None and first[name]:
            change = (row[name] - first[name]) / first[name] * 100
            word = "lower" if change < 0 else "higher"
            return (f"Job {n}: {abs(change):.0f}% {word} {what} than Job 1" if round(change) else
                    f"Job {n}: same {what} as Job 1")
    return None


def recommend(jobs: list[dict[str, Any]], rows: list[dict[str, Any]]) -> str | None:
    """The job with the lowest validation loss (training loss when no job has one); a job within
    2 % of it that cost less wins on quality/cost; completed jobs first."""
    measure = "validation_loss" if any(r["validation_loss"] is not None for r in rows) else "training_loss"
    pool = [(job, row) for job, row in zip(jobs, rows, strict=True) if row[measure] is not None]
    pool = [(job, row) for job, row in pool if job["status"] == "completed"] or pool
    if not pool:
        return None
    best = min(row[measure] for _, row in pool)
    close = [(job, row) for job, row in pool if row[measure] <= best * (1 + CLOSE_LOSS)]
    job, row = min(close, key=lambda pair: (pair[1]["cost"], pair[1][measure]))
    preset = f" ({job['preset'].title()} preset)" if job["preset"] else ""
    reason = "best quality/cost ratio" if len(close) > 1 else "lowest " + measure.replace("_", " ")
    figures = f"{measure.replace('_', ' ')} {row[measure]:.4f}, cost {usd(row['cost'])}"
    return f"Recommended: Job {jobs.index(job) + 1} – {job['name']}{preset} - {reason} ({figures})"


def colour(n: int) -> str:
    """The colour of the `n`-th compared job (from 0)."""
    return JOB_COLOURS[n % len(JOB_COLOURS)]


def chart(jobs: list[dict[str, Any]], metrics: list[list[MetricPoint]]) -> dict[str, Any]:
    return {"jobs": [{"name": job["name"], "colour": colour(n), "steps": [p.step for p in points],
                      "loss": [finite(p.loss) for p in points], "eval_loss": [finite(p.eval_loss) for p in points]}
                     for n, (job, points) in enumerate(zip(jobs, metrics, strict=True))]}
