"""`pipeline export costs|monthly|attribution|savings`: finance reports from the read models, as CSV
or one JSON document, written as the rows stream in (the web's /api/finance/* use the same writers).
Money is exact decimals with two places: strings in JSON, never floats."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

import psycopg

from domain.billing import BillingTolerance
from domain.gpu import OfflinePrices
from infra.progress import Progress
from projections.finance import REPORTS, Query, Report
from projections.json import plain

FORMATS = ("csv", "json")
CHUNK_ROWS = 500
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def parse_month(text: str) -> str:
    """`YYYY-MM` (argparse type; the web checks with the same pattern)."""
    if not MONTH.match(text):
        raise argparse.ArgumentTypeError(f"not a month (YYYY-MM): {text!r}")
    return text


def parse_rate(text: str) -> Decimal:
    try:
        rate = Decimal(text)
    except InvalidOperation:
        rate = Decimal(-1)
    if not rate.is_finite() or rate <= 0:
        raise argparse.ArgumentTypeError(f"not a positive hourly rate: {text!r}")
    return rate


def file_name(report: str, month: str | None, fmt: str, at: datetime) -> str:
    """`costs-2026-11-20261201T090000Z.csv`: report, month (or `all`), the export's UTC time, like
    FR4.2.1's metric exports."""
    return f"{report}-{month or 'all'}-{at.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}.{fmt}"


def chunks(conn: psycopg.Connection, report: Report, query: Query, fmt: str, generated_at: datetime,
           progress: Callable[[int], None] | None = None) -> Iterator[str]:
    """The export as text chunks of up to CHUNK_ROWS rows; `progress` gets the rows written so far."""
    rows = ({column: row[column] for column in report.columns} for row in report.rows(conn, query))
    if fmt == "csv":
        return _csv(report, rows, progress)
    header = {"report": report.name, "team": query.team, "month": query.month, "currency": "USD",
              "generated_at": generated_at.isoformat()}
    return _json(report, rows, header, progress)


def _csv(report: Report, rows: Iterator[dict[str, Any]], progress: Callable[[int], None] | None) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(report.columns)
    count = 0
    for count, row in enumerate(rows, 1):
        writer.writerow(["" if value is None else value for value in row.values()])
        if count % CHUNK_ROWS == 0:
            yield _drain(buffer)
            if progress:
                progress(count)
    yield _drain(buffer)
    if progress:
        progress(count)


def _json(report: Report, rows: Iterator[dict[str, Any]], header: dict[str, Any],
          progress: Callable[[int], None] | None) -> Iterator[str]:
    """One document: the header's keys, `rows`, then `totals` (the report's summed columns)."""
    buffer = io.StringIO()
    buffer.write(json.dumps(header)[:-1] + ', "rows": [')
    sums: dict[str, Any] = dict(report.summed)
    count = 0
    for count, row in enumerate(rows, 1):
        buffer.write(("," if count > 1 else "") + "\n" + json.dumps(plain(row), ensure_ascii=False))
        for column in sums:
            if row[column] is not None:
                sums[column] += row[column]
        if count % CHUNK_ROWS == 0:
            yield _drain(buffer)
            if progress:
                progress(count)
    buffer.write(f'\n], "count": {count}, "totals": {json.dumps(plain(report.totals(sums)))}}}\n')
    yield _drain(buffer)
    if progress:
        progress(count)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


# --- the command ----------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("report", choices=tuple(REPORTS), help="per-job costs, monthly spend, attribution by client"
                                                          " and project, spot savings, or our ledger against"
                                                          " RunPod's bill (billing, billing_monthly)")
    p.add_argument("--month", type=parse_month, help="one budget month, YYYY-MM (default: all)")
    p.add_argument("--format", choices=FORMATS, default="csv")
    p.add_argument("--output", type=Path, help="a file, or a directory for the standard file name (default: stdout)")
    p.add_argument("--on-demand-rate", type=parse_rate, default=OfflinePrices().on_demand,
                   help="savings: the on-demand $/h spot jobs are compared with (default: %(default)s)")


def export(conn: psycopg.Connection, report: Report, query: Query, fmt: str, out: TextIO,
           generated_at: datetime) -> int:
    """Writes the report to `out`, with a progress line on stderr on a terminal only; returns the rows."""
    written = 0
    with Progress(f"exporting {report.name}", unit="rows") as progress:
        def seen(count: int) -> None:
            nonlocal written
            written = count
            progress.update(count)

        for chunk in chunks(conn, report, query, fmt, generated_at, seen):
            out.write(chunk)
    out.flush()
    return written


def run(conn: psycopg.Connection, args: argparse.Namespace, team: str,
        tolerance: BillingTolerance | None = None) -> int:
    """`pipeline export`: to stdout, or to `--output` atomically (a failed export leaves no file).
    `tolerance`: what difference between our ledger and the provider's bill the `billing` reports flag."""
    query = Query(team, args.month, args.on_demand_rate, tolerance=tolerance or BillingTolerance())
    report, now = REPORTS[args.report], datetime.now(timezone.utc)
    target = args.output
    if target is None or str(target) == "-":
        export(conn, report, query, args.format, sys.stdout, now)
        return 0
    if target.is_dir():
        target = target / file_name(report.name, args.month, args.format, now)
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            written = export(conn, report, query, args.format, out, now)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    print(f"exported {written} row(s) to {target}", file=sys.stderr)
    return 0
