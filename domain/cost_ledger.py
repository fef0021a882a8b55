"""A job's cost ledger: pod lifetimes × hourly rate, split into useful, lost and setup time.

- setup: from a pod's start until training begins on it, and from an interruption until the pod
  is gone (provisioning, loading, idle);
- lost: training work redone after an interruption (since the last checkpoint on that pod);
- useful: the rest.
The base model's download (`download_seconds`, reported by the agent) is a part of the setup time,
shown as its own line.
Seconds are exact (Decimal); money is kept exact and split to cents so the parts sum to the
total to the cent (largest remainder)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any

CENT = Decimal("0.01")
SECONDS_PER_HOUR = Decimal(3600)


def seconds_between(start: datetime, end: datetime) -> Decimal:
    delta = end - start
    whole = Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / Decimal(1_000_000)
    return max(whole, Decimal(0))


@dataclass(frozen=True)
class PodLifetime:
    """One pod's stay: times are set as the job reports them; `stopped_at` None while running."""

    pod_id: str
    hourly_rate: Decimal
    started_at: datetime
    training_started_at: datetime | None = None
    last_checkpoint_at: datetime | None = None
    interrupted_at: datetime | None = None
    stopped_at: datetime | None = None
    download_seconds: Decimal = Decimal(0)  # of the setup time: fetching the base model's weights

    def split(self, now: datetime) -> tuple[Decimal, Decimal, Decimal]:
        """(useful, lost, setup) seconds up to `stopped_at`, or `now` while running."""
        end = self.stopped_at or now
        total = seconds_between(self.started_at, end)
        if self.training_started_at is None:
            return Decimal(0), Decimal(0), total
        setup = min(total, seconds_between(self.started_at, self.training_started_at))
        lost = Decimal(0)
        if self.interrupted_at is not None:
            redo_from = max(self.last_checkpoint_at or self.training_started_at, self.training_started_at)
            lost = min(total - setup, seconds_between(redo_from, self.interrupted_at))
            setup += min(total - setup - lost, seconds_between(self.interrupted_at, end))
        return total - setup - lost, lost, setup

    def with_(self, **changes: Any) -> PodLifetime:  # dataclasses.replace checks each name
        return replace(self, **changes)


@dataclass(frozen=True)
class LedgerTotals:
    useful_seconds: Decimal
    lost_seconds: Decimal
    setup_seconds: Decimal
    useful_cost: Decimal
    lost_cost: Decimal
    setup_cost: Decimal
    download_seconds: Decimal = Decimal(0)  # included in setup_seconds
    download_cost: Decimal = Decimal(0)  # included in setup_cost

    @property
    def total_seconds(self) -> Decimal:
        return self.useful_seconds + self.lost_seconds + self.setup_seconds

    @property
    def total_cost(self) -> Decimal:
        return self.useful_cost + self.lost_cost + self.setup_cost

    def in_cents(self) -> dict[str, Decimal]:
        """The three parts and the total in cents; the parts always add up to the total."""
        total = self.total_cost.quantize(CENT)
        parts = allocate_cents([self.useful_cost, self.lost_cost, self.setup_cost], total)
        return {"useful": parts[0], "lost": parts[1], "setup": parts[2], "total": total}


def ledger(pods: tuple[PodLifetime, ...], now: datetime) -> LedgerTotals:
    useful = lost = setup = Decimal(0)
    useful_cost = lost_cost = setup_cost = download = download_cost = Decimal(0)
    for pod in pods:
        u, lo, s = pod.split(now)
        rate = pod.hourly_rate / SECONDS_PER_HOUR
        useful, lost, setup = useful + u, lost + lo, setup + s
        useful_cost, lost_cost, setup_cost = useful_cost + u * rate, lost_cost + lo * rate, setup_cost + s * rate
        fetched = min(pod.download_seconds, s)
        download, download_cost = download + fetched, download_cost + fetched * rate
    return LedgerTotals(useful, lost, setup, useful_cost, lost_cost, setup_cost, download, download_cost)


def allocate_cents(amounts: list[Decimal], total: Decimal) -> list[Decimal]:
    """Rounds each amount down to cents, then gives the remaining cents to the largest remainders."""
    floors = [a.quantize(CENT, rounding=ROUND_FLOOR) for a in amounts]
    missing = int(((total - sum(floors, Decimal(0))) / CENT).to_integral_value())
    order = sorted(range(len(amounts)), key=lambda i: amounts[i] - floors[i], reverse=True)
    for i in order[:max(missing, 0)]:
        floors[i] += CENT
    return floors
