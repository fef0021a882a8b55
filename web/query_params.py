"""Typed values out of a query string, each cleaned (no NUL, trimmed, bounded); a value that is not
what it should be adds a message to `errors` and reads as absent."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any


def one(params: Mapping[str, Any], name: str) -> str:
    """The parameter's (first) value, or ""."""
    value = params.get(name)
    return str(value).replace("\x00", "").strip()[:200] if value is not None else ""


def every(params: Any, name: str) -> list[str]:
    """Each non-blank value of a repeated parameter."""
    getall = getattr(params, "getall", None)
    values = getall(name, []) if getall else ([params[name]] if name in params else [])
    return [str(v).replace("\x00", "").strip()[:100] for v in values if str(v).strip()]


def day(text: str, errors: list[str]) -> date | None:
    """An ISO date (2026-11-24) between the years 1900 and 9999."""
    if not text:
        return None
    try:
        found = date.fromisoformat(text)
    except ValueError:
        found = None
    if found is None or not 1900 <= found.year < 9999:
        errors.append(f"“{text}” is not a date: dates look like 2026-11-24")
        return None
    return found


def dollars(text: str, errors: list[str]) -> Decimal | None:
    """An amount in dollars ("$1,200.50"), from 0 to under a billion."""
    if not text:
        return None
    try:
        amount = Decimal(text.replace("$", "").replace(",", ""))
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or not 0 <= amount < 10**9:
        errors.append(f"“{text}” is not a cost: costs are amounts in dollars, like 50 or 49.99")
        return None
    return amount
