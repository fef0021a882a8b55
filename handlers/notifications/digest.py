"""What a daily digest says (FR8.2.1 "Digest mode (daily summary)", FR7.2.2 "Your daily training
budget summary": spent today, remaining budget, active jobs) and when it is due.

The digest of day D is due at the team's digest hour on D (in the team's time zone) and covers the
day before: the user's job events waiting since their last digest, spend since the hour on D-1, and
the jobs active when it is sent. Read from the notifier's own lines and the budget and job read
models (their queries handed in: read_models.py); pure apart from `gather`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from domain.budget_month import budget_month
from domain.job_status import ACTIVE, JobStatus
from domain.money import usd
from handlers.notifications.notices import Notice
from handlers.notifications.read_models import ReadModels

WAITING = JobStatus.QUEUED, *ACTIVE
KIND_ORDER = ("completed", "quality_scored", "failed", "recovery_exhausted", "cancelled", "interrupted", "resumed",
              "provisioning_timeout")
KIND_WORDS = {"quality_scored": "with replies scored", "recovery_exhausted": "recovery exhausted",
              "provisioning_timeout": "no GPU available"}


@dataclass(frozen=True)
class DigestSchedule:
    time_zone: str
    hour: int = 8

    def due(self, now: datetime) -> date:
        """The latest day whose digest time has come at `now`."""
        day = now.astimezone(ZoneInfo(self.time_zone)).date()
        return day if now >= self.send_time(day) else day - timedelta(days=1)

    def send_time(self, day: date) -> datetime:
        return datetime.combine(day, time(self.hour), ZoneInfo(self.time_zone))


@dataclass(frozen=True)
class Digest:
    user: str
    day: date
    time_zone: str
    start: datetime
    end: datetime
    lines: tuple[dict, ...]            # notification_digest_lines rows, oldest first
    active: tuple[dict, ...]           # the user's jobs not yet ended
    team_jobs: tuple[dict, ...]        # every job of the team not yet ended
    spent: Decimal                     # the team's spend in [start, end)
    spent_yours: Decimal
    month: str
    budget: dict | None                # the month's budgets row

    @property
    def team_active(self) -> int:
        return len(self.team_jobs)

    @property
    def empty(self) -> bool:
        return not (self.lines or self.active or self.spent)

    @property
    def team_empty(self) -> bool:
        return not (self.team_jobs or self.spent)

    def team_notice(self, base_url: str) -> Notice:
        """The budget recipients' summary (FR7.2.2 "Daily Digest Option": total spent today,
        remaining budget, active jobs), for the whole team."""
        tz = ZoneInfo(self.time_zone)
        return Notice(
            "budget_digest", f"Your daily training budget summary: {self.day:%a %d %b %Y}",
            f"Spent today: {usd(self.spent)}. Remaining budget: {self._left()}. Active jobs: {self.team_active}.",
            facts=(("Period", f"{self.start.astimezone(tz):%a %d %b %H:%M} – {self.end.astimezone(tz):%a %d %b %H:%M}"
                              f" ({self.time_zone})"),
                   ("Spent today", usd(self.spent)), ("Remaining budget", self._remaining()),
                   ("Active jobs", str(self.team_active))),
            sections=(("Active jobs", tuple((f"{_progress(job)} ({job['created_by']})", f"{base_url}/jobs/{job['id']}")
                                            for job in self.team_jobs)),) if self.team_jobs else (),
            actions=(("View Budget Dashboard", f"{base_url}/budget?month={self.month}"),))

    def notice(self, base_url: str) -> Notice:
        tz = ZoneInfo(self.time_zone)
        counts = Counter(line["kind"] for line in self.lines)
        told = ", ".join(f"{counts[k]} {KIND_WORDS.get(k, k)}" for k in KIND_ORDER if counts[k])
        events = f"{len(self.lines)} event(s) on your jobs: {told}" if self.lines else "No events on your jobs"
        return Notice(
            "digest", f"Your daily training budget summary: {self.day:%a %d %b %Y}",
            f"{events}. Spent today: {usd(self.spent)}.",
            facts=(("Period", f"{self.start.astimezone(tz):%a %d %b %H:%M} – {self.end.astimezone(tz):%a %d %b %H:%M}"
                              f" ({self.time_zone})"),
                   ("Spent today", f"{usd(self.spent)} (your jobs: {usd(self.spent_yours)})"),
                   ("Remaining budget", self._remaining()),
                   ("Active jobs", f"{len(self.active)} of yours, {self.team_active} in the team")),
            sections=tuple(s for s in (
                ("Your job events", tuple((f"{line['occurred_at'].astimezone(tz):%a %H:%M}  {line['headline']}",
                                           line["link"]) for line in self.lines)),
                ("Your active jobs", tuple((_progress(job), f"{base_url}/jobs/{job['id']}") for job in self.active)),
            ) if s[1]),
            actions=(("View Budget Dashboard", f"{base_url}/budget?month={self.month}"),))

    def _left(self) -> str:
        b = self.budget
        return usd(b["monthly_limit"] - b["spent"] - b["reserved"]) if b else "the whole limit"

    def _remaining(self) -> str:
        if self.budget is None:
            return f"no spend recorded for {self.month} yet"
        b = self.budget
        left = b["monthly_limit"] - b["spent"] - b["reserved"]
        return (f"{usd(left)} of {usd(b['monthly_limit'])} ({self.month}: {usd(b['spent'])} spent,"
                f" {usd(b['reserved'])} reserved for active jobs)")


def _progress(job: dict) -> str:
    steps = f", step {job['step']} of {job['total_steps']}" if job["total_steps"] else ""
    return f"{job['name']}: {str(job['status']).replace('_', ' ')}{steps}"


def gather(conn: psycopg.Connection, reads: ReadModels, user: str, team: str, schedule: DigestSchedule,
           day: date) -> Digest:
    """Everything the user's digest of `day` says, as the database has it now."""
    start, end = schedule.send_time(day - timedelta(days=1)), schedule.send_time(day)
    month = budget_month(end, schedule.time_zone)
    months = sorted({budget_month(start, schedule.time_zone), month})
    with conn.cursor(row_factory=dict_row) as cur:
        lines = cur.execute(
            "SELECT event_key, kind, headline, link, job_id, occurred_at FROM notification_digest_lines"
            " WHERE user_name = %s AND digest_key IS NULL AND occurred_at < %s ORDER BY occurred_at, event_key",
            (user, end)).fetchall()
    jobs = reads.jobs_in(conn, WAITING)
    spent, spent_yours = reads.spend_between(conn, team, months, start, end, user)
    mine = tuple(job for job in jobs if job["created_by"] == user)
    return Digest(user, day, schedule.time_zone, start, end, tuple(lines), mine, tuple(jobs), spent, spent_yours,
                  month, reads.month_figures(conn, team, month))
