"""Money and rates leave the API at a documented precision (docs/web.md, "Figures"): amounts in
cents, rates and percentages at most 4 decimals, whether a decimal string or a JSON number. Every
JSON figure of a real month is checked; only measured training values (losses, perplexity, learning
rate, GPU utilisation: numbers as the trainer reported them) may carry more."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from projections.analytics import ANALYTICS
from projections.finance import REPORTS
from tests.integration.test_web_budget import MONTH, month  # noqa: F401 - the fixture
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture

TOO_PRECISE = re.compile(r"^-?\d+\.\d{5,}$")
# Measured, not computed: exchanged as the trainer reported them (docs/web.md, "Figures").
MEASURED = re.compile(r"(^|_)(loss|perplexity|learning_rate|gpu_util(ization)?|grad_norm|epoch)$")


def too_precise(value: Any, where: str = "") -> list[str]:
    """Every decimal string and JSON number below `value` with more than 4 decimals, with its path."""
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in too_precise(item, f"{where}.{key}")]
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in too_precise(item, f"{where}[{i}]")]
    if isinstance(value, float) and not MEASURED.search(where.rsplit(".", 1)[-1]):
        return [f"{where} = {value!r}"] if -Decimal(repr(value)).as_tuple().exponent > 4 else []  # 1e-05 too
    return [f"{where} = {value}"] if isinstance(value, str) and TOO_PRECISE.match(value) else []


def test_the_check_finds_long_decimals_in_strings_and_numbers_but_not_in_measured_values() -> None:
    assert too_precise({"a": [{"rate": "0.12345", "cost": 1.23456, "tiny": 1e-05, "loss": 0.123456789}],
                        "ok": ["0.1234", 0.1234, 12, 1e20, "1.5e-7 s"]}) == [
        ".a[0].rate = 0.12345", ".a[0].cost = 1.23456", ".a[0].tiny = 1e-05"]


def test_no_json_figure_carries_more_than_four_decimals(web: WebRig, month) -> None:
    manager = web.client("bob")  # a manager sees every job, private ones included (FR8.1.2)
    paths = [f"/api/budgets/{MONTH}", "/api/jobs", "/api/queue", "/api/files",
             *(f"/api/finance/{name}.json?month={MONTH}" for name in REPORTS),
             *(f"/api/analytics/{name}?month={MONTH}" for name in ANALYTICS)]
    for job_id in (month.completed_spot, month.recovered_spot, month.cancelled_on_demand, month.overridden):
        paths += [f"/api/jobs/{job_id}", f"/api/jobs/{job_id}/detail", f"/api/jobs/{job_id}/metrics.json"]
    found = []
    for path in paths:
        answer = manager.get(path)
        assert answer.status_code == 200, (path, answer.text)
        found += [f"{path}: {f}" for f in too_precise(answer.json())]
    assert found == [], "\n".join(found)
