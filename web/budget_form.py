"""The budget pages' form values: a month and an amount, refused with the message the page shows
before any command is sent."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from web.reports.finance_exports import MONTH

AMOUNT_MESSAGE = "Enter the new limit in dollars, like 750 or 750.00"


class FormError(ValueError):
    """A form value the page refuses before any command is sent."""


def parse_month(text: str | None, default: str) -> str:
    """YYYY-MM; blank: `default`."""
    month = (text or "").strip() or default
    if not MONTH.match(month):
        raise FormError(f"month must be YYYY-MM, not {month!r}")
    return month


def parse_amount(text: str) -> Decimal:
    """Dollars and cents, `$` and thousands commas allowed, up to a billion."""
    try:
        amount = Decimal(text.strip().replace(",", "").removeprefix("$"))
    except InvalidOperation:
        raise FormError(AMOUNT_MESSAGE) from None
    if not amount.is_finite() or amount.as_tuple().exponent < -2 or amount > Decimal("1e9"):
        raise FormError(AMOUNT_MESSAGE)
    return amount
