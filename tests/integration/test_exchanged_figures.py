"""Money and rates leave the API at a documented precision (docs/web.md, "Figures"): amounts in
cents, rates and percentages at most 4 decimals. Every JSON figure of a real month is checked."""

from __future__ import annotations

import re
from typing import Any

from projections.analytics import ANALYTICS
from projections.finance import REPORTS
from tests.integration.test_web_budget import MONTH, month  # noqa: F401 - the fixture
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture

TOO_PRECISE = re.compile(r"^-?\d+\.\d{5,}$")


def too_precise(value: Any, where: str = "") -> list[str]:
    """Every decimal string below `value` with more than 4 decimals, with its path."""
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in too_precise(item, f"{where}.{key}")]
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in too_precise(item, f"{where}[{i}]")]
    return [f"{where} = {value}"] if isinstance(value, str) and TOO_PRECISE.match(value) else []


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
