"""Finance JSON API and downloads (FR7.2.1, FR7.3.1, FR7.3.2, FR5.1.2, FR8.1.1): a budget month, the
finance reports (streamed CSV or JSON, the CLI's writers) and the analytics, from the read models.
Amounts are decimal strings: Litestar would encode a Decimal as a float."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Generator
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import psycopg
from litestar import Router, get
from litestar.datastructures import State
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from domain.gpu import OfflinePrices
from projections.analytics import ANALYTICS
from projections.budget_dashboard import budget_dashboard
from projections.finance import REPORTS, Query
from projections.job_quality import check_quality_filter
from projections.json import plain
from web.reports.finance_exports import MONTH, chunks, file_name, parse_rate

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def _month(month: str | None) -> str | None:
    if month is not None and not MONTH.match(month):
        raise ClientException(f"month must be YYYY-MM, not {month!r}")
    return month


def _rate(text: str | None) -> Decimal:
    try:
        return OfflinePrices().on_demand if text is None else parse_rate(text)
    except argparse.ArgumentTypeError as exc:
        raise ClientException(f"on_demand_rate: {exc}") from None


def _read(conninfo: str, read: Callable[..., Any], *args: Any) -> Any:
    """The read-model queries are synchronous (shared with the CLI): run in a thread on a connection
    of their own."""
    with psycopg.connect(conninfo) as conn:
        return read(conn, *args)


def _export(conninfo: str, *args: Any) -> Generator[str, None, None]:
    with psycopg.connect(conninfo) as conn:
        yield from chunks(conn, *args)


async def _in_thread(blocking: Generator[str, None, None]) -> AsyncIterator[str]:
    """Each chunk is produced in a worker thread, so a long export never blocks the event loop."""
    try:
        while (chunk := await asyncio.to_thread(next, blocking, None)) is not None:
            yield chunk
    finally:
        # After a disconnect the generator may still be running in its thread: then it is closed,
        # with its connection, when it is collected.
        with contextlib.suppress(ValueError):
            await asyncio.to_thread(blocking.close)


@get("/api/finance/{name:str}")
async def api_finance_report(state: State, name: FromPath[str], month: FromQuery[str | None] = None,
                             on_demand_rate: FromQuery[str | None] = None,
                             quality: FromQuery[str | None] = None) -> Stream:
    """`costs`, `monthly`, `attribution`, `savings`, `billing`, `billing_monthly` as JSON; with `.csv` or
    `.json` a download named like `costs-2026-11-20261201T090000Z.csv`. `month`: one budget month (default
    all); `quality`: the costs of the jobs with that delivery-gate outcome only (pass, review, block,
    released, not_evaluated)."""
    report_name, dot, fmt = name.partition(".")
    report = REPORTS.get(report_name)
    if report is None or fmt not in (MEDIA_TYPES if dot else ("",)):
        raise NotFoundException(f"no finance report {name!r}; known: {', '.join(REPORTS)} (.csv, .json)")
    try:
        check_quality_filter(quality)
    except ValueError as exc:
        raise ClientException(str(exc)) from None
    query = Query(state.settings.budget.team, _month(month), _rate(on_demand_rate),
                  tolerance=state.settings.budget.billing_tolerance(), quality=quality or None)
    now, fmt = datetime.now(timezone.utc), fmt or "json"
    download = file_name(report.name, month, fmt, now)
    headers = {"Content-Disposition": f'attachment; filename="{download}"'} if dot else {}
    return Stream(_in_thread(_export(state.pool.conninfo, report, query, fmt, now)), media_type=MEDIA_TYPES[fmt],
                  headers=headers)


@get("/api/budgets/{month:str}")
async def api_budget_month(state: State, month: FromPath[str]) -> dict[str, Any]:
    """The budget dashboard's figures for one month in the team's time zone."""
    found = await asyncio.to_thread(_read, state.pool.conninfo, budget_dashboard, state.settings.budget.team,
                                    _month(month), state.settings.budget.time_zone)
    if found is None:
        raise NotFoundException(f"no budget for {month}: no job has been started in it")
    return plain(found)


@get("/api/analytics/{name:str}")
async def api_analytics(state: State, name: FromPath[str], month: FromQuery[str | None] = None) -> dict[str, Any]:
    """`presets`, `gpu-tiers`, `failures`, `team` or `cost-quality`: all jobs, or those charged to `month`."""
    analysis = ANALYTICS.get(name)
    if analysis is None:
        raise NotFoundException(f"no analytics {name!r}; known: {', '.join(ANALYTICS)}")
    rows = await asyncio.to_thread(_read, state.pool.conninfo, analysis, state.settings.budget.team, _month(month))
    return {"team": state.settings.budget.team, "month": month, "rows": plain(rows)}


router = Router(path="/", route_handlers=[api_finance_report, api_budget_month, api_analytics])
