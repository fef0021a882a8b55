"""Finance exports of a real month: CSV and JSON shapes, money as two-place decimals, the
`pipeline export` command and the web's /api/finance, /api/budgets and /api/analytics."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from litestar import Litestar
from litestar.datastructures import State
from litestar.testing import TestClient

from infra.settings import load_settings
from projections.finance import REPORTS, Query
from tests.finance_month import POLICY
from tests.integration.test_finance import Projected, projected  # noqa: F401 - the fixture
from web import finance
from web.reports.finance_exports import chunks

MONEY = re.compile(r"^-?\d+\.\d{2}$")
MONEY_COLUMNS = {"useful_cost", "lost_cost", "setup_cost", "total_cost", "limit", "spent", "reserved", "forecast",
                 "remaining", "average_cost", "spot_cost", "overhead_cost", "on_demand_rate", "on_demand_cost",
                 "savings", "ledger_cost", "billed_cost", "difference", "allowed_difference"}
AT = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def export(conn, report: str, fmt: str, month: str | None = "2026-11") -> str:
    return "".join(chunks(conn, REPORTS[report], Query("ml", month), fmt, AT))


def no_floats(value: str) -> None:
    raise AssertionError(f"a float in the export: {value}")


@pytest.mark.parametrize("report", list(REPORTS))
def test_csv_and_json_carry_the_same_rows_and_money_has_two_decimal_places(projected: Projected, report: str) -> None:
    header, *rows = list(csv.reader(io.StringIO(export(projected.conn, report, "csv"))))
    doc = json.loads(export(projected.conn, report, "json"), parse_float=no_floats)
    assert header == list(REPORTS[report].columns) and rows and doc["count"] == len(rows)
    for row, record in zip(rows, doc["rows"], strict=True):
        assert list(record) == header
        assert row == ["" if value is None else str(value) for value in record.values()]
        for column in MONEY_COLUMNS & set(header):
            assert MONEY.match(record[column]), (column, record[column])
    for column in REPORTS[report].summed:
        assert Decimal(str(doc["totals"][column])) == sum(Decimal(str(r[column])) for r in doc["rows"])


def test_the_reports_agree_with_each_other_on_the_month(projected: Projected) -> None:
    totals = {r: json.loads(export(projected.conn, r, "json"))["totals"] for r in REPORTS}
    assert totals["costs"]["total_cost"] == totals["monthly"]["spent"] == totals["attribution"]["total_cost"] == "83.01"
    assert totals["savings"]["savings"] == str(Decimal(totals["savings"]["on_demand_cost"])
                                               - Decimal(totals["savings"]["spot_cost"]))
    assert totals["costs"]["interruptions"] == totals["savings"]["interruptions"] == 1


def pipeline(url: str, *args: str) -> subprocess.CompletedProcess:
    # NATS unreachable on purpose: an export reads only the read models.
    env = os.environ | {"DATABASE_URL": url, "NATS_URL": "nats://127.0.0.1:1", "PIPELINE_TEAM": "ml"}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_cli_writes_to_stdout_or_a_file_with_the_standard_name(projected: Projected, migrated: str,
                                                                    tmp_path: Path) -> None:
    result = pipeline(migrated, "export", "costs", "--month", "2026-11")
    assert result.returncode == 0, result.stderr
    assert result.stdout == export(projected.conn, "costs", "csv")
    assert "exporting" not in result.stderr  # no progress line when stderr is not a terminal

    result = pipeline(migrated, "export", "savings", "--format", "json", "--on-demand-rate", "6.50",
                      "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    [written] = list(tmp_path.iterdir())
    assert re.fullmatch(r"savings-all-\d{8}T\d{6}Z\.json", written.name)
    assert f"exported 4 row(s) to {written}" in result.stderr
    doc = json.loads(written.read_text(), parse_float=no_floats)
    assert {r["on_demand_rate"] for r in doc["rows"]} == {"6.50"} and doc["month"] is None

    target = tmp_path / "monthly.csv"
    assert pipeline(migrated, "export", "monthly", "--output", str(target)).returncode == 0
    assert [r[0] for r in csv.reader(target.open())] == ["month", "2026-10", "2026-11"]
    bad = pipeline(migrated, "export", "costs", "--month", "2026-13")
    assert bad.returncode == 2 and "not a month (YYYY-MM): '2026-13'" in bad.stderr


@pytest.fixture
def client(projected: Projected, migrated: str):
    state = State({"pool": SimpleNamespace(conninfo=migrated),
                   "settings": load_settings(team="ml", time_zone=POLICY.time_zone)})
    with TestClient(Litestar(route_handlers=[finance.router], state=state)) as test_client:
        yield test_client


def test_the_web_streams_downloads_and_answers_json(client: TestClient, projected: Projected) -> None:
    download = client.get("/api/finance/costs.csv", params={"month": "2026-11"})
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert re.fullmatch(r'attachment; filename="costs-2026-11-\d{8}T\d{6}Z\.csv"',
                        download.headers["content-disposition"])
    assert download.text == export(projected.conn, "costs", "csv")
    as_json = client.get("/api/finance/attribution", params={"month": "2026-11"})
    assert "content-disposition" not in as_json.headers
    assert as_json.json()["totals"] == {"jobs": 6, "total_cost": "83.01"}
    savings = client.get("/api/finance/savings.json", params={"on_demand_rate": "7.00"}).json()
    assert {r["on_demand_rate"] for r in savings["rows"]} == {"7.00"}

    budget = client.get("/api/budgets/2026-11").json()
    assert budget["summary"]["spent"] == "83.01" and budget["daily"][-1]["cumulative"] == "83.01"
    assert budget["decisions"][0]["kind"] == "override"
    presets = client.get("/api/analytics/presets", params={"month": "2026-11"}).json()
    assert [r["preset"] for r in presets["rows"]] == ["conservative", "balanced", "aggressive"]
    assert presets["rows"][1]["success_rate"] == "50.0"

    billing = client.get("/api/finance/billing.json", params={"month": "2026-11"}).json()
    assert billing["totals"]["difference"] == "3.12" and [r["flagged"] for r in billing["rows"]] == [True, False]
    monthly = client.get("/api/finance/billing_monthly", params={"month": "2026-11"}).json()
    assert monthly["rows"][0]["flagged_jobs"] == 1
    assert client.get("/api/finance/bills.csv").status_code == 404
    assert client.get("/api/finance/costs.xml").status_code == 404
    assert client.get("/api/budgets/2026-12").status_code == 404
    assert client.get("/api/analytics/weather").status_code == 404
    assert client.get("/api/budgets/november").status_code == 400
    assert client.get("/api/finance/savings", params={"on_demand_rate": "-1"}).status_code == 400
