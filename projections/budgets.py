"""Budget read model (FR7.2.1, FR7.2.2): per budget month its limit, spend, outstanding
reservations, every charge, the jobs it funds, thresholds crossed, when active jobs first threatened
to overrun it, and the decisions taken on it."""

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import psycopg

from domain.aggregates.budget import Budget
from projections.base import Projection, event_topics

B = Budget


class BudgetsProjection(Projection):
    """Mirrors the aggregate's arithmetic on its own events: a charge lowers the job's outstanding
    reservation (never below zero), a release clears it; `budgets.reserved` is their sum."""

    name = "budgets"
    applications = ("pipeline",)
    tables = ("budgets", "budget_jobs", "budget_spend", "budget_thresholds", "budget_decisions")
    topics = event_topics(Budget)
    subject = "events.Budget.>"

    def version_of(self, cur: psycopg.Cursor, originator_id: UUID) -> int:
        row = cur.execute("SELECT version FROM budgets WHERE id = %s FOR UPDATE", (originator_id,)).fetchone()
        return row[0] if row else 0

    def write(self, event: Any, cur: psycopg.Cursor, notification_id: int) -> None:
        self.apply(event, cur)
        if not isinstance(event, B.Created):
            cur.execute("UPDATE budgets SET version = %s, updated_at = GREATEST(updated_at, %s) WHERE id = %s",
                        (event.originator_version, event.at, event.originator_id))

    @singledispatchmethod
    def apply(self, event: Any, cur: psycopg.Cursor) -> None:
        """An event this read model does not show only advances the version (in `write`)."""

    @apply.register
    def _created(self, event: B.Created, cur: psycopg.Cursor) -> None:
        cur.execute(
            "INSERT INTO budgets (id, team, month, monthly_limit, grace_percent, opened_at, updated_at, version)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (event.originator_id, event.team, event.month, event.limit, event.grace_percent, event.at, event.at,
             event.originator_version))

    @apply.register
    def _reserved(self, event: B.Reserved, cur: psycopg.Cursor) -> None:
        cur.execute(
            "INSERT INTO budget_jobs (budget_id, job_id, reserved, outstanding, reserved_at)"
            " VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (budget_id, job_id) DO UPDATE SET reserved = EXCLUDED.reserved,"
            " outstanding = EXCLUDED.outstanding, reserved_at = EXCLUDED.reserved_at",
            (event.originator_id, event.job_id, event.amount, event.amount, event.at))
        self._sum_reserved(cur, event)

    @apply.register
    def _reservation_changed(self, event: B.ReservationChanged, cur: psycopg.Cursor) -> None:
        # The new amount is what stays reserved beside the spend so far (a switch to on-demand).
        cur.execute("UPDATE budget_jobs SET reserved = spent + %s, outstanding = %s"
                    " WHERE budget_id = %s AND job_id = %s",
                    (event.amount, event.amount, event.originator_id, event.job_id))
        self._sum_reserved(cur, event)

    @apply.register
    def _override(self, event: B.OverrideRecorded, cur: psycopg.Cursor) -> None:
        self._decision(cur, event, "override", job_id=event.job_id, amount=event.amount, over_by=event.over_by,
                       actor=event.actor, justification=event.justification)
        # The override is recorded just before its reservation, which creates the row.
        cur.execute("INSERT INTO budget_jobs (budget_id, job_id, overridden) VALUES (%s, %s, true)"
                    " ON CONFLICT (budget_id, job_id) DO UPDATE SET overridden = true",
                    (event.originator_id, event.job_id))

    @apply.register
    def _over_limit(self, event: B.OverLimitAllowed, cur: psycopg.Cursor) -> None:
        self._decision(cur, event, "over_limit_allowed", job_id=event.job_id, amount=event.amount,
                       over_by=event.over_by, actor=event.actor,
                       justification="New jobs are not blocked when the budget is exceeded")
        # Recorded just before its reservation, as an override is.
        cur.execute("INSERT INTO budget_jobs (budget_id, job_id, over_limit) VALUES (%s, %s, true)"
                    " ON CONFLICT (budget_id, job_id) DO UPDATE SET over_limit = true",
                    (event.originator_id, event.job_id))

    @apply.register
    def _blocking(self, event: B.BlockingChanged, cur: psycopg.Cursor) -> None:
        self._decision(cur, event, "blocking_on" if event.block_new_jobs else "blocking_off", actor=event.actor,
                       justification=event.justification)
        cur.execute("UPDATE budgets SET block_new_jobs = %s WHERE id = %s",
                    (event.block_new_jobs, event.originator_id))

    @apply.register
    def _spend(self, event: B.SpendRecorded, cur: psycopg.Cursor) -> None:
        cur.execute(
            "INSERT INTO budget_jobs (budget_id, job_id, spent) VALUES (%s, %s, %s)"
            " ON CONFLICT (budget_id, job_id) DO UPDATE SET spent = EXCLUDED.spent,"
            " outstanding = GREATEST(0, budget_jobs.outstanding - %s)",
            (event.originator_id, event.job_id, event.job_total, event.amount))
        cur.execute("INSERT INTO budget_spend (budget_id, version, job_id, amount, job_total, at)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    (event.originator_id, event.originator_version, event.job_id, event.amount, event.job_total,
                     event.at))
        cur.execute("UPDATE budgets SET spent = spent + %s WHERE id = %s", (event.amount, event.originator_id))
        self._sum_reserved(cur, event)

    @apply.register
    def _released(self, event: B.Released, cur: psycopg.Cursor) -> None:
        cur.execute("UPDATE budget_jobs SET outstanding = 0, released = %s, released_at = %s"
                    " WHERE budget_id = %s AND job_id = %s",
                    (event.amount, event.at, event.originator_id, event.job_id))
        self._sum_reserved(cur, event)

    @apply.register
    def _threshold(self, event: B.ThresholdCrossed, cur: psycopg.Cursor) -> None:
        cur.execute("INSERT INTO budget_thresholds (budget_id, percent, spent, monthly_limit, at)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (event.originator_id, event.percent, event.spent, event.limit, event.at))

    @apply.register
    def _overrun(self, event: B.OverrunForecast, cur: psycopg.Cursor) -> None:
        cur.execute("UPDATE budgets SET overrun_at = %s, overrun_spent = %s, overrun_reserved = %s, overrun_limit = %s,"
                    " overrun_active_jobs = %s WHERE id = %s",
                    (event.at, event.spent, event.reserved, event.limit, event.active_jobs, event.originator_id))

    @apply.register
    def _requested(self, event: B.LimitIncreaseRequested, cur: psycopg.Cursor) -> None:
        self._decision(cur, event, "limit_increase_requested", request_id=event.request_id,
                       new_limit=event.new_limit, actor=event.requested_by, justification=event.justification)

    @apply.register
    def _decided(self, event: B.LimitIncreaseDecided, cur: psycopg.Cursor) -> None:
        kind = "limit_increase_approved" if event.approved else "limit_increase_denied"
        self._decision(cur, event, kind, request_id=event.request_id, actor=event.decided_by,
                       justification=event.reason)

    @apply.register
    def _limit_changed(self, event: B.LimitChanged, cur: psycopg.Cursor) -> None:
        self._decision(cur, event, "limit_changed", old_limit=event.old_limit, new_limit=event.new_limit,
                       actor=event.actor, justification=event.justification)
        cur.execute("UPDATE budgets SET monthly_limit = %s WHERE id = %s", (event.new_limit, event.originator_id))

    @staticmethod
    def _decision(cur: psycopg.Cursor, event: Any, kind: str, **values: Any) -> None:
        values = {"job_id": None, "request_id": None, "amount": None, "over_by": None, "old_limit": None,
                  "new_limit": None} | values
        cur.execute(
            "INSERT INTO budget_decisions (budget_id, version, kind, job_id, request_id, amount, over_by, old_limit,"
            " new_limit, actor, justification, at) VALUES (%(budget)s, %(version)s, %(kind)s, %(job_id)s,"
            " %(request_id)s, %(amount)s, %(over_by)s, %(old_limit)s, %(new_limit)s, %(actor)s, %(justification)s,"
            " %(at)s)",
            {"budget": event.originator_id, "version": event.originator_version, "kind": kind, "at": event.at,
             **values})

    @staticmethod
    def _sum_reserved(cur: psycopg.Cursor, event: Any) -> None:
        cur.execute("UPDATE budgets SET reserved = (SELECT COALESCE(sum(outstanding), 0) FROM budget_jobs"
                    " WHERE budget_id = %(id)s) WHERE id = %(id)s", {"id": event.originator_id})
