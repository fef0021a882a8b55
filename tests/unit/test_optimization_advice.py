"""The cost optimization report's recommendation (FR7.3.1), from a month's figures."""

from __future__ import annotations

from decimal import Decimal

from web.optimization_pdf import advice, summary


def row(spot: str, on_demand: str, overhead: str = "0", interruptions: int = 0) -> dict:
    return {"spot_cost": Decimal(spot), "on_demand_cost": Decimal(on_demand),
            "savings": Decimal(on_demand) - Decimal(spot), "overhead_cost": Decimal(overhead),
            "interruptions": interruptions}


def tiers(spot: int, on_demand: int) -> list[dict]:
    return [{"gpu_tier": "on_demand", "jobs": on_demand}, {"gpu_tier": "spot", "jobs": spot}]


def test_strong_savings_keep_spot_the_default_and_say_what_a_year_saves() -> None:
    month = summary([row("48", "146", "1.20", 2), row("30", "95")])
    assert (month["savings"], month["gross"], month["percent"]) == (Decimal("163"), Decimal("164.20"), Decimal("67.6"))
    assert advice(month, tiers(9, 1)) == [
        "Continue using spot instances for 90%+ of jobs (90% of this month's jobs ran on spot).",
        "Reserve on-demand for urgent client deliveries.",
        "Current strategy saves about $1,956.00 a year at this month's usage."]
    big = summary([row("387.32", "1243.18")])
    assert advice(big, tiers(12, 1))[-1] == "Current strategy saves $10k+ annually."


def test_weak_savings_or_no_spot_job_say_so() -> None:
    weak = summary([row("90", "100", "20", 5)])
    assert advice(weak, tiers(1, 0))[0] == ("Spot saved only 10% this month: check the interruptions below before"
                                            " moving more jobs to spot.")
    assert advice(summary([]), tiers(0, 3)) == [
        "No spot job was charged this month. Spot instances cost $2.49/hr against $7.99/hr on-demand: use them"
        " for jobs that can wait for a recovery."]


def test_spot_dearer_than_on_demand_says_so_instead_of_a_negative_saving() -> None:
    dear = summary([row("105", "100", "30", 6)])
    assert advice(dear, tiers(1, 0)) == [
        "Spot cost $5.00 more than on-demand would have this month (interruptions redid too much work): move"
        " long or urgent jobs to on-demand.", "Reserve on-demand for urgent client deliveries."]
