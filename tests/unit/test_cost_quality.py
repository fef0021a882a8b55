"""The cost vs quality scatter's geometry (FR5.1.2): axes, the ideal zone, outliers by Tukey's fence."""

from __future__ import annotations

import uuid
from decimal import Decimal

from web.cost_quality import scatter
from web.reports.chart_axes import axis, nice_step


def point(loss: float, cost: str, preset: str = "balanced") -> dict:
    return {"job_id": uuid.uuid4(), "name": f"job {loss}", "preset": preset, "gpu_tier": "spot",
            "total_cost": Decimal(cost), "loss": loss, "loss_kind": "validation"}


def test_axes_round_out_to_whole_1_2_5_steps() -> None:
    assert nice_step(0.5) == 0.1 and nice_step(43) == 10 and nice_step(7) == 2
    assert axis(0.21, 0.47) == (0.2, 0.5, [0.2, 0.3, 0.4, 0.5])
    assert axis(0.0, 48.32) == (0.0, 50.0, [0.0, 10.0, 20.0, 30.0, 40.0, 50.0])
    low, high, ticks = axis(0.312, 0.312)  # every job the same loss: still a span around it
    assert low < 0.312 < high and ticks[0] == low and ticks[-1] == high


def test_lower_is_left_and_down_and_the_costly_or_poor_job_is_an_outlier() -> None:
    points = [point(0.30, "40"), point(0.32, "42"), point(0.31, "45", "conservative"), point(0.29, "41"),
              point(0.33, "160", "aggressive"), point(0.90, "44")]
    chart = scatter(points)
    assert chart is not None
    dots = {d["loss"]: d for d in chart["dots"]}
    assert dots[0.29]["cx"] < dots[0.30]["cx"] < dots[0.90]["cx"]  # better quality to the left
    assert dots[0.33]["cy"] < dots[0.30]["cy"]  # dearer is higher up (SVG y grows downwards)
    assert dots[0.33]["outlier"] == "cost above $50.00"  # q1 41.25, q3 44.75: 44.75 + 1.5 × 3.5
    assert dots[0.90]["outlier"].startswith("loss above 0.")
    assert [d["loss"] for d in chart["dots"] if d["outlier"]] == [0.33, 0.90] and chart["outliers"] == 2
    assert [d["loss"] for d in chart["dots"] if d["ideal"]] == [0.30, 0.29]  # both medians or better
    zone = chart["zone"]
    assert zone["x"] == chart["left"] and zone["y"] + zone["height"] == chart["bottom"]
    xs = [d["cx"] for d in chart["dots"]]
    assert chart["left"] <= min(xs) and max(xs) <= chart["right"]
    assert chart["presets"] == ["aggressive", "balanced", "conservative"]


def test_free_jobs_still_get_a_cost_scale_from_zero() -> None:
    chart = scatter([point(0.3, "0"), point(0.4, "0")])
    assert chart is not None and [label for _, label in chart["y_ticks"]][0] == "$0.00"
    assert all(y <= chart["bottom"] for y, _ in chart["y_ticks"])


def test_too_few_jobs_have_no_outliers_and_none_no_chart() -> None:
    chart = scatter([point(0.3, "10"), point(0.9, "500"), point(0.31, "11")])
    assert chart is not None and chart["outliers"] == 0
    assert scatter([]) is None
