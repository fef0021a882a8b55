"""Money is Decimal US dollars; rounding to cents (half-even) happens only for display."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)


def usd(amount: Decimal) -> str:
    """`$1,234.50`; negative amounts as `-$3.00`."""
    value = cents(amount)
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"
