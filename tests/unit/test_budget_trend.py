"""The budget page's spending trend over the months shown (FR7.2.1 "Trend: Increasing")."""

from __future__ import annotations

from decimal import Decimal

from web.budget_dashboard_view import trend


def months(*spends: str, first: int = 5) -> list[dict]:
    return [{"month": f"2026-{first + i:02d}", "spent": Decimal(v)} for i, v in enumerate(spends)]


def test_the_budget_pages_spending_trend_compares_the_later_months_with_the_earlier() -> None:
    rising = months("300", "320", "500", "480", "510", "520")
    assert trend(rising, "2026-12") == "Increasing"
    falling = [m | {"spent": s["spent"]} for m, s in zip(rising, reversed(rising), strict=True)]
    assert trend(falling, "2026-12") == "Decreasing"
    assert trend(months("400", "999", "420"), "2026-12") == "Stable"  # the middle one left out
    assert trend(months("0", "5"), "2026-12") == "Increasing"
    assert trend(months("0", "0"), "2026-12") == "Stable"
    assert trend(months("9"), "2026-12") is None


def test_the_current_month_so_far_is_not_counted() -> None:
    """June to October at $1,000, two days into November with $30 spent: not "Decreasing"."""
    assert trend(months("1000", "1000", "1000", "1000", "1000", "30", first=6), "2026-11") == "Stable"
