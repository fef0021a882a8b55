"""Finance export pieces without a database: apportioning cents, streaming writers, file names."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from domain.cost_ledger import CENT
from domain.money import cents
from projections.finance import ZERO, Query, Report, apportion
from web.reports.finance_exports import chunks, file_name

exact_amounts = st.lists(st.decimals(min_value=0, max_value=10_000, places=26, allow_nan=False), max_size=40)


@given(exact_amounts)
def test_apportioned_cents_add_up_to_the_rounded_total_and_stay_within_a_cent(amounts: list[Decimal]) -> None:
    apportioned = apportion(amounts)
    assert sum(apportioned, Decimal(0)) == cents(sum(amounts, Decimal(0)))
    assert all(abs(a - exact) < CENT and a == a.quantize(CENT) for a, exact in zip(apportioned, amounts, strict=True))


def test_the_odd_cents_go_to_the_largest_remainders() -> None:
    # Each rounds to 0.33 alone (0.99 in all) while the month is 1.00.
    assert apportion([Decimal("0.333334")] * 2 + [Decimal("0.333335")]) == [
        Decimal("0.33"), Decimal("0.33"), Decimal("0.34")]


def numbered(conn: object, query: Query):
    return ({"n": n, "amount": Decimal("1.25"), "note": None} for n in range(1, 1201))


REPORT = Report("numbers", ("n", "amount", "note"), numbered, {"amount": ZERO, "n": 0})
AT = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def test_csv_streams_in_chunks_with_progress_and_empty_cells_for_none() -> None:
    seen: list[int] = []
    parts = list(chunks(None, REPORT, Query("ml"), "csv", AT, seen.append))
    assert len(parts) == 3 and seen == [500, 1000, 1200]
    header, *rows = list(csv.reader(io.StringIO("".join(parts))))
    assert header == ["n", "amount", "note"] and rows[0] == ["1", "1.25", ""] and len(rows) == 1200


def test_json_is_one_document_with_rows_count_and_totals_as_decimal_strings() -> None:
    text = "".join(chunks(None, REPORT, Query("ml", "2026-11"), "json", AT))
    doc = json.loads(text, parse_float=no_floats)
    assert {k: doc[k] for k in ("report", "team", "month", "currency", "generated_at", "count")} == {
        "report": "numbers", "team": "ml", "month": "2026-11", "currency": "USD", "generated_at": AT.isoformat(),
        "count": 1200}
    assert doc["rows"][0] == {"n": 1, "amount": "1.25", "note": None}
    assert doc["totals"] == {"amount": "1500.00", "n": 720600}


def no_floats(value: str) -> None:
    raise AssertionError(f"a float in the export: {value}")


def test_file_names_say_report_month_and_utc_time() -> None:
    assert file_name("costs", "2026-11", "csv", AT) == "costs-2026-11-20261201T090000Z.csv"
    new_york = AT.astimezone(timezone(timedelta(hours=-5)))
    assert file_name("savings", None, "json", new_york) == "savings-all-20261201T090000Z.json"
