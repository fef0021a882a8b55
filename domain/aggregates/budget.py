"""Budget: a team's spending limit for one calendar month (FR1.2.2, FR7.2.1, FR7.2.2).

remaining = limit − charged − reserved. A queued or running job reserves its estimated maximum;
its spend converts the reservation into charges as it runs; what is left is released at its end.

"Block new jobs when the budget is exceeded" (FR7.2.1's Budget Controls) is on unless a manager
turns it off: off, the limit only warns and alerts; a job past the limit plus grace still starts,
and that decision is recorded (OverLimitAllowed) as an override would be."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.money import usd

THRESHOLDS = (80, 90, 95, 100)
OVERRIDE_JUSTIFICATION_MIN = 20
LIMIT_JUSTIFICATION_MIN = 50
MANAGER_ROLES = frozenset({"manager", "admin"})


DEFAULT_GRACE_PERCENT = Decimal(10)  # FR1.2.2: "within 10% grace"


def describe_remaining(remaining: Decimal) -> str:
    """What is left of a month, as users read it: never a negative amount, but how far past the
    limit (a month within its grace margin) it already is."""
    over = f": already {usd(-remaining)} over the limit" if remaining < 0 else ""
    return f"{usd(max(remaining, Decimal(0)))}{over}"


def ceiling(limit: Decimal, grace_percent: Decimal) -> Decimal:
    """The most a month may commit without an override: the limit plus the grace margin."""
    return limit * (1 + grace_percent / 100)


class Budget(Aggregate):
    """One per team per month; the id is derived from both, so it is found without a lookup."""

    TOPIC = "Budget"

    class Created(Aggregate.Created):
        TOPIC = "Budget.Created"
        team: str
        month: str
        limit: Decimal
        grace_percent: Decimal
        at: datetime

    class Reserved(Aggregate.Event):
        TOPIC = "Budget.Reserved"
        job_id: UUID
        amount: Decimal
        at: datetime

    class ReservationChanged(Aggregate.Event):
        """A waiting job's estimate changed (switched to on-demand): its reservation follows."""
        TOPIC = "Budget.ReservationChanged"
        job_id: UUID
        amount: Decimal
        at: datetime

    class OverrideRecorded(Aggregate.Event):
        TOPIC = "Budget.OverrideRecorded"
        job_id: UUID
        amount: Decimal
        over_by: Decimal
        justification: str
        actor: str
        at: datetime

    class OverLimitAllowed(Aggregate.Event):
        """A reservation past the limit plus grace went ahead because this budget does not block
        new jobs: the audit trail's counterpart of an override."""
        TOPIC = "Budget.OverLimitAllowed"
        job_id: UUID
        amount: Decimal
        over_by: Decimal
        actor: str
        at: datetime

    class BlockingChanged(Aggregate.Event):
        """A manager turned "Block new jobs when the budget is exceeded" on or off (or a new month
        carried the previous month's choice over: actor "system")."""
        TOPIC = "Budget.BlockingChanged"
        block_new_jobs: bool
        actor: str
        justification: str
        at: datetime

    class SpendRecorded(Aggregate.Event):
        TOPIC = "Budget.SpendRecorded"
        job_id: UUID
        amount: Decimal
        job_total: Decimal
        at: datetime

    class Released(Aggregate.Event):
        TOPIC = "Budget.Released"
        job_id: UUID
        amount: Decimal
        at: datetime

    class ThresholdCrossed(Aggregate.Event):
        TOPIC = "Budget.ThresholdCrossed"
        percent: int
        spent: Decimal
        limit: Decimal
        at: datetime

    class OverrunForecast(Aggregate.Event):
        """FR7.2.2 "Budget exceeded during active job": the month's spend plus what its active jobs
        still hold (their estimated maximum, less what they spent) passed the limit. Recorded once
        a month, when it first happens, as the thresholds are."""

        TOPIC = "Budget.OverrunForecast"
        spent: Decimal
        reserved: Decimal
        limit: Decimal
        active_jobs: int
        at: datetime

    class LimitIncreaseRequested(Aggregate.Event):
        TOPIC = "Budget.LimitIncreaseRequested"
        request_id: UUID
        new_limit: Decimal
        justification: str
        requested_by: str
        at: datetime

    class LimitIncreaseDecided(Aggregate.Event):
        TOPIC = "Budget.LimitIncreaseDecided"
        request_id: UUID
        approved: bool
        decided_by: str
        reason: str
        at: datetime

    class LimitChanged(Aggregate.Event):
        TOPIC = "Budget.LimitChanged"
        old_limit: Decimal
        new_limit: Decimal
        actor: str
        justification: str
        at: datetime

    @staticmethod
    def id_for(team: str, month: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"lora-pipeline:budget:{team}:{month}")

    @classmethod
    def open(cls, team: str, month: str, limit: Decimal, at: datetime,
             grace_percent: Decimal = DEFAULT_GRACE_PERCENT) -> Budget:
        if limit < 0 or grace_percent < 0:
            raise InvalidBudgetCommandError("The budget limit and grace margin must not be negative")
        return cls._create(cls.Created, id=cls.id_for(team, month), team=team, month=month, limit=limit,
                           grace_percent=grace_percent, at=at)

    @event(Created)
    def __init__(self, team: str, month: str, limit: Decimal, grace_percent: Decimal, at: datetime) -> None:
        self.team, self.month, self.limit, self.grace_percent = team, month, limit, grace_percent
        self.opened_at = at
        self.reservations: dict[str, Decimal] = {}
        self.spent_by_job: dict[str, Decimal] = {}
        self.charged = Decimal(0)
        self.thresholds_crossed: list[int] = []
        self.overrun_forecast = False
        self.requests: dict[str, dict] = {}
        self.block_new_jobs = True

    # --- queries ----------------------------------------------------------------------------

    @property
    def reserved(self) -> Decimal:
        return sum(self.reservations.values(), Decimal(0))

    @property
    def remaining(self) -> Decimal:
        return self.limit - self.charged - self.reserved

    @property
    def ceiling(self) -> Decimal:
        return ceiling(self.limit, self.grace_percent)

    def utilisation(self) -> Decimal:
        return self.charged * 100 / self.limit if self.limit else Decimal(100)

    # --- reservations and spend -------------------------------------------------------------

    def reserve(self, job_id: UUID, amount: Decimal, actor: str, role: str, at: datetime,
                override_justification: str | None = None) -> list[str]:
        """Reserves a job's estimated maximum; returns warnings. Over the limit plus grace it is
        refused, unless a manager or admin overrides with a justification."""
        if amount < 0:
            raise InvalidBudgetCommandError("A reservation must not be negative")
        if str(job_id) in self.reservations or str(job_id) in self.spent_by_job:
            return []
        committed = self.charged + self.reserved + amount
        overridden = committed > self.ceiling and self._past_ceiling(job_id, amount, committed, actor, role, at,
                                                                     override_justification)
        self._reserved(job_id=job_id, amount=amount, at=at)
        self._check_forecast(at)
        return self._overage_warning(committed, actor if overridden else None)

    def change_reservation(self, job_id: UUID, amount: Decimal, actor: str, role: str, at: datetime,
                           override_justification: str | None = None) -> list[str]:
        """Sets a reserved job's reservation to `amount`; an increase is checked like a new
        reservation (refused over limit + grace unless a manager overrides)."""
        key = str(job_id)
        if key not in self.reservations:
            raise InvalidBudgetCommandError("The job holds no reservation on this budget")
        extra = amount - self.reservations[key]
        if extra == 0:
            return []
        committed = self.charged + self.reserved + extra
        overridden = extra > 0 and committed > self.ceiling and self._past_ceiling(
            job_id, extra, committed, actor, role, at, override_justification)
        self._reservation_changed(job_id=job_id, amount=amount, at=at)
        self._check_forecast(at)
        return self._overage_warning(committed, actor if overridden else None) if extra > 0 else []

    @event(ReservationChanged)
    def _reservation_changed(self, job_id: UUID, amount: Decimal, at: datetime) -> None:
        self.reservations[str(job_id)] = amount

    def _past_ceiling(self, job_id: UUID, amount: Decimal, committed: Decimal, actor: str, role: str,
                      at: datetime, justification: str | None) -> bool:
        """A reservation past the limit plus grace: refused unless a manager overrides, or, when this
        budget does not block new jobs, allowed and recorded. Returns whether a manager overrode."""
        if not self.block_new_jobs:
            self._over_limit_allowed(job_id=job_id, amount=amount, over_by=committed - self.limit, actor=actor,
                                     at=at)
            return False
        justified = self._check_override(role, justification, amount)
        self._override_recorded(job_id=job_id, amount=amount, over_by=committed - self.limit,
                                justification=justified, actor=actor, at=at)
        return True

    @event(OverLimitAllowed)
    def _over_limit_allowed(self, job_id: UUID, amount: Decimal, over_by: Decimal, actor: str, at: datetime) -> None:
        pass

    def _check_override(self, role: str, justification: str | None, amount: Decimal) -> str:
        """The override's justification, stripped; raises when the override may not be made."""
        if not justification:
            raise BudgetExceededError(amount, self.remaining)
        if role not in MANAGER_ROLES:
            raise PermissionDeniedError("Only a manager or admin may override the budget limit")
        if len(justification.strip()) < OVERRIDE_JUSTIFICATION_MIN:
            raise InvalidBudgetCommandError(
                f"An override needs a justification of at least {OVERRIDE_JUSTIFICATION_MIN} characters")
        return justification.strip()

    def _overage_warning(self, committed: Decimal, overridden_by: str | None = None) -> list[str]:
        if committed <= self.limit:
            return []
        by = f" by {(committed - self.limit) * 100 / self.limit:.0f}%" if self.limit else ""
        if overridden_by is not None:
            return [f"⚠ Manager Override: This job exceeds the monthly budget{by} ({usd(committed)} total vs "
                    f"{usd(self.limit)} limit). Proceeding on {overridden_by}'s override; the justification is "
                    "recorded."]
        if committed > self.ceiling and not self.block_new_jobs:
            return [f"⚠ Over Budget: This job will exceed budget{by} ({usd(committed)} total vs "
                    f"{usd(self.limit)} limit). Proceeding allowed because new jobs are not blocked when the "
                    "budget is exceeded (Budget Controls)."]
        if self.limit == 0:
            return []
        over = (committed - self.limit) * 100 / self.limit
        return [f"⚠ Slight Overage: This job will exceed budget by {over:.0f}% ({usd(committed)} total vs "
                f"{usd(self.limit)} limit). Proceeding allowed as within {self.grace_percent:.0f}% grace period."]

    @event(OverrideRecorded)
    def _override_recorded(self, job_id: UUID, amount: Decimal, over_by: Decimal, justification: str,
                           actor: str, at: datetime) -> None:
        pass

    @event(Reserved)
    def _reserved(self, job_id: UUID, amount: Decimal, at: datetime) -> None:
        self.reservations[str(job_id)] = amount

    def record_spend(self, job_id: UUID, job_total: Decimal, at: datetime) -> None:
        """Brings the job's charges up to its cumulative spend `job_total`; a repeated or older
        report changes nothing."""
        amount = job_total - self.spent_by_job.get(str(job_id), Decimal(0))
        if amount <= 0:
            return
        self._spend_recorded(job_id=job_id, amount=amount, job_total=job_total, at=at)
        for percent in THRESHOLDS:
            if percent not in self.thresholds_crossed and self.utilisation() >= percent:
                self._threshold_crossed(percent=percent, spent=self.charged, limit=self.limit, at=at)
        self._check_forecast(at)

    def _check_forecast(self, at: datetime) -> None:
        """Records the month's first forecast overrun while jobs are active (see OverrunForecast)."""
        if not self.overrun_forecast and self.reservations and self.charged + self.reserved > self.limit:
            self._overrun_forecast(spent=self.charged, reserved=self.reserved, limit=self.limit,
                                   active_jobs=len(self.reservations), at=at)

    @event(OverrunForecast)
    def _overrun_forecast(self, spent: Decimal, reserved: Decimal, limit: Decimal, active_jobs: int,
                          at: datetime) -> None:
        self.overrun_forecast = True

    @event(SpendRecorded)
    def _spend_recorded(self, job_id: UUID, amount: Decimal, job_total: Decimal, at: datetime) -> None:
        key = str(job_id)
        self.spent_by_job[key] = job_total
        self.charged += amount
        if key in self.reservations:
            self.reservations[key] = max(Decimal(0), self.reservations[key] - amount)

    @event(ThresholdCrossed)
    def _threshold_crossed(self, percent: int, spent: Decimal, limit: Decimal, at: datetime) -> None:
        self.thresholds_crossed.append(percent)

    def release(self, job_id: UUID, at: datetime) -> None:
        """The job ended: what it reserved and did not spend is free again."""
        amount = self.reservations.get(str(job_id))
        if amount is None:
            return
        self._released(job_id=job_id, amount=amount, at=at)

    @event(Released)
    def _released(self, job_id: UUID, amount: Decimal, at: datetime) -> None:
        del self.reservations[str(job_id)]

    # --- the limit --------------------------------------------------------------------------

    def request_limit_increase(self, request_id: UUID, new_limit: Decimal, justification: str,
                               requested_by: str, at: datetime) -> None:
        if new_limit <= self.limit:
            raise InvalidBudgetCommandError(f"The new limit must be above the current {usd(self.limit)}")
        if len(justification.strip()) < LIMIT_JUSTIFICATION_MIN:
            raise InvalidBudgetCommandError(
                f"Justification (required) must be at least {LIMIT_JUSTIFICATION_MIN} characters")
        if str(request_id) in self.requests:
            return
        self._limit_increase_requested(request_id=request_id, new_limit=new_limit,
                                       justification=justification.strip(), requested_by=requested_by, at=at)

    @event(LimitIncreaseRequested)
    def _limit_increase_requested(self, request_id: UUID, new_limit: Decimal, justification: str,
                                  requested_by: str, at: datetime) -> None:
        self.requests[str(request_id)] = {"new_limit": new_limit, "justification": justification,
                                          "requested_by": requested_by, "status": "pending"}

    def decide_limit_increase(self, request_id: UUID, approve: bool, decided_by: str, role: str,
                              at: datetime, reason: str = "") -> None:
        request = self.requests.get(str(request_id))
        if request is None:
            raise UnknownRequestError(f"No limit-increase request {request_id}")
        if request["status"] != "pending":
            raise InvalidBudgetCommandError(f"This request was already {request['status']}")
        if role not in MANAGER_ROLES:
            raise PermissionDeniedError("Only a manager or admin may approve or deny a limit increase")
        if decided_by == request["requested_by"]:
            raise PermissionDeniedError("A limit increase must be decided by someone other than its requester")
        if approve and request["new_limit"] <= self.limit:
            raise InvalidBudgetCommandError(
                f"The limit is already {usd(self.limit)}: this request for {usd(request['new_limit'])} is outdated")
        self._limit_increase_decided(request_id=request_id, approved=approve, decided_by=decided_by,
                                     reason=reason.strip(), at=at)
        if approve:
            self._limit_changed(old_limit=self.limit, new_limit=request["new_limit"], actor=decided_by,
                                justification=request["justification"], at=at)

    @event(LimitIncreaseDecided)
    def _limit_increase_decided(self, request_id: UUID, approved: bool, decided_by: str, reason: str,
                                at: datetime) -> None:
        self.requests[str(request_id)]["status"] = "approved" if approved else "denied"

    def change_limit(self, new_limit: Decimal, actor: str, role: str, justification: str, at: datetime) -> None:
        if role not in MANAGER_ROLES:
            raise PermissionDeniedError("Only a manager or admin may change the budget limit")
        if new_limit < 0:
            raise InvalidBudgetCommandError("The budget limit must not be negative")
        if len(justification.strip()) < LIMIT_JUSTIFICATION_MIN:
            raise InvalidBudgetCommandError(
                f"Justification (required) must be at least {LIMIT_JUSTIFICATION_MIN} characters")
        if new_limit != self.limit:
            self._limit_changed(old_limit=self.limit, new_limit=new_limit, actor=actor,
                                justification=justification.strip(), at=at)
            self._check_forecast(at)

    def set_blocking(self, block_new_jobs: bool, actor: str, role: str, justification: str, at: datetime) -> None:
        """Turns "Block new jobs when the budget is exceeded" on or off for this month (a manager or
        admin, with a justification); the same setting again changes nothing."""
        if role not in MANAGER_ROLES:
            raise PermissionDeniedError("Only a manager or admin may change the budget controls")
        if len(justification.strip()) < OVERRIDE_JUSTIFICATION_MIN:
            raise InvalidBudgetCommandError(
                f"Justification (required) must be at least {OVERRIDE_JUSTIFICATION_MIN} characters")
        if block_new_jobs != self.block_new_jobs:
            self._blocking_changed(block_new_jobs=block_new_jobs, actor=actor, justification=justification.strip(),
                                   at=at)

    def carry_blocking(self, previous: Budget, at: datetime) -> None:
        """A newly opened month keeps the previous month's choice (recorded, actor "system")."""
        if previous.block_new_jobs != self.block_new_jobs:
            self._blocking_changed(block_new_jobs=previous.block_new_jobs, actor="system",
                                   justification=f"Carried over from {previous.month}", at=at)

    @event(BlockingChanged)
    def _blocking_changed(self, block_new_jobs: bool, actor: str, justification: str, at: datetime) -> None:
        self.block_new_jobs = block_new_jobs

    @event(LimitChanged)
    def _limit_changed(self, old_limit: Decimal, new_limit: Decimal, actor: str, justification: str,
                       at: datetime) -> None:
        self.limit = new_limit


class BudgetExceededError(Exception):
    """A reservation would go over the limit plus the grace margin (FR1.2.2)."""

    def __init__(self, estimated: Decimal, remaining: Decimal) -> None:
        self.estimated, self.remaining = estimated, max(remaining, Decimal(0))
        self.over_limit = max(-remaining, Decimal(0))  # a month already past its limit (within grace)
        self.shortfall = estimated - remaining
        super().__init__(
            f"Estimated cost ({usd(estimated)}) exceeds remaining monthly budget ({describe_remaining(remaining)}). "
            "Adjust configuration or increase budget limit.")

    @property
    def figures(self) -> str:
        over = f" (already {usd(self.over_limit)} over the limit)" if self.over_limit else ""
        return (f"❌ Budget Exceeded - Estimated Cost: {usd(self.estimated)}, Remaining Budget: "
                f"{usd(self.remaining)}{over}, Shortfall: {usd(self.shortfall)}")


class PermissionDeniedError(Exception):
    """The actor's role does not allow this command."""


class InvalidBudgetCommandError(ValueError):
    """A budget command carried an invalid value; nothing was changed."""


class UnknownRequestError(LookupError):
    """No limit-increase request has that id."""
