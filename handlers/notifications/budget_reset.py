"""FR1.2.2 "Budget Reset": on the first day of a budget month (in the team's time zone) every page
shows a team banner "✓ Budget Reset: Your monthly training budget has been reset to $500.00. Last
month's spend: $487.32." The notifications worker's clock posts it once per month (its key is
`budget-reset:<team>:<month>`, so a second worker or a restart adds nothing); it expires at the end
of that day, and each person may dismiss it before. A worker that was down all that day posts none: the
budget page always shows the month's figures.

The limit is the new month's budget when one was opened already (a limit set ahead for it), else
the default limit; last month's spend is the budgets read model's, to the cent. Jobs started last
month charge last month's budget to their end: while any still holds a reservation there, the
banner says "Last month's spend so far: … (jobs started then are still running)"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import psycopg

from domain.budget_month import budget_month, previous_month
from domain.money import usd
from handlers.notifications.read_models import ReadModels

KIND = "budget_reset"


@dataclass(frozen=True)
class ResetBanners:
    team: str
    time_zone: str
    default_limit: Decimal
    reads: ReadModels

    def post_due(self, conn: psycopg.Connection, now: datetime) -> str | None:
        """Posts the month's banner when `now` is on its first day and it is not posted yet;
        returns its message if this call posted it."""
        zone = ZoneInfo(self.time_zone)
        local = now.astimezone(zone)
        if local.day != 1:
            return None
        month = budget_month(now, self.time_zone)
        figures = self.reads.month_figures
        this, last = figures(conn, self.team, month), figures(conn, self.team, previous_month(month))
        message = reset_message(self.default_limit if this is None else this["monthly_limit"],
                                last["spent"] if last else Decimal(0), bool(last and last["reserved"] > 0))
        ends = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)
        posted = conn.execute(
            "INSERT INTO notification_banners (event_key, team, kind, level, message, link, expires_at)"
            " VALUES (%s, %s, %s, 'info', %s, '/budget', %s) ON CONFLICT (event_key) DO NOTHING RETURNING 1",
            (f"budget-reset:{self.team}:{month}", self.team, KIND, message, ends)).fetchone()
        return message if posted else None


def reset_message(limit: Decimal, last_spent: Decimal, running: bool = False) -> str:
    """`running`: jobs started last month still hold reservations there, and charge it as they run."""
    spend = (f"Last month's spend so far: {usd(last_spent)} (jobs started then are still running)" if running
             else f"Last month's spend: {usd(last_spent)}")
    return f"✓ Budget Reset: Your monthly training budget has been reset to {usd(limit)}. {spend}."
