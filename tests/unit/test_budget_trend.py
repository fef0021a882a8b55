"""The budget page's spending trend over the months shown (FR7.2.1 "Trend: Increasing")."""

from __future__ import annotations

from decimal import Decimal

from web.budget_dashboard_view import trend


def test_the_budget_pages_spending_trend_compares_the_later_months_with_the_earlier() -> None:
    months = [{"spent": Decimal(v)} for v in ("300", "320", "500", "480", "510", "520")]
    assert trend(months) == "Increasing"
    assert trend(list(reversed(months))) == "Decreasing"
    assert trend([{"spent": Decimal(v)} for v in ("400", "999", "420")]) == "Stable"  # the middle one left out
    assert trend([{"spent": Decimal(0)}, {"spent": Decimal(5)}]) == "Increasing"
    assert trend([{"spent": Decimal(0)}, {"spent": Decimal(0)}]) == "Stable"
    assert trend([{"spent": Decimal(9)}]) is None
