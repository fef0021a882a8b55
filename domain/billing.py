"""Our ledger against the provider's own bill (issue #16): what a job's pods cost by our ledger
(their lifetimes × the rate the provider quoted at creation) and what the provider billed for them,
read back once each pod ended. A difference above the tolerance is flagged for finance."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.money import cents, usd

DEFAULT_TOLERANCE_USD = Decimal("0.50")
DEFAULT_TOLERANCE_PERCENT = Decimal(2)


@dataclass(frozen=True)
class BillingTolerance:
    """A difference is flagged when it exceeds the larger of an amount and a share of the ledger:
    per-second billing against our clock differs by cents, not dollars."""

    usd: Decimal = DEFAULT_TOLERANCE_USD
    percent: Decimal = DEFAULT_TOLERANCE_PERCENT

    def allowed(self, ledger: Decimal) -> Decimal:
        return max(self.usd, abs(ledger) * self.percent / 100)

    def describe(self) -> str:
        return f"more than the larger of {usd(self.usd)} and {self.percent:g}% of the ledger"


@dataclass(frozen=True)
class Reconciliation:
    ledger: Decimal
    billed: Decimal

    @property
    def difference(self) -> Decimal:
        """Positive: the provider billed more than our ledger says."""
        return cents(self.billed) - cents(self.ledger)

    def flagged(self, tolerance: BillingTolerance) -> bool:
        return abs(self.difference) > tolerance.allowed(self.ledger)

    def describe(self, provider: str = "RunPod") -> str:
        sign = "+" if self.difference > 0 else ""
        return (f"Our ledger {usd(self.ledger)}, {provider} billed {usd(self.billed)}, "
                f"difference {sign}{usd(self.difference)}")
