"""The new-job page's cost panel (web/cost_panel.py) says what its estimate assumes, tier by tier."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from domain.gpu import PricingTier
from domain.presets import PRESETS
from web.budget_view import BudgetView
from web.cost_panel import panel
from web.job_history import History
from web.quote import Quote, estimates_for

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)


def quote(tier: PricingTier) -> Quote:
    return Quote(file={"id": "f-1", "conversations": 400}, preset=PRESETS[0], tier=tier,
                 all=estimates_for(400, Decimal("0.18")), budget=BudgetView("default", "2026-03", Decimal(500),
                                                                             Decimal(10)),
                 history=History(), role="member", successful_jobs=0, now=NOW)


@pytest.mark.parametrize(("tier", "provisioning"), [(PricingTier.SPOT, "spot"), (PricingTier.ON_DEMAND, "on-demand")])
def test_the_estimated_completion_assumes_the_chosen_tiers_provisioning(tier: PricingTier, provisioning: str) -> None:
    chosen = quote(tier)
    done = NOW + timedelta(hours=float(chosen.estimate.duration_hours))
    assert panel(chosen)["completion"] == (
        f"Estimated completion: {done:%Y-%m-%d %H:%M} UTC (assuming {provisioning} provisioning <5 min)")
