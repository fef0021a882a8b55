"""Sending the daily digests, once per (user, day), from the notifications worker's loop; and,
when the team asked for it, the daily budget summary to its managers and finance, once per
(address, day).

A digest's ledger row (`digest:<day>:<user>`, email, `user:<name>`) is claimed, the email sent,
the row settled and the digest's lines marked in one transaction. A second worker claiming the
same digest waits on that row and then finds it settled; a crash before the commit leaves nothing
recorded, so that digest is sent again (a duplicate only after a crash between the SMTP server's
answer and the commit, as for every other email). A transient failure keeps the row pending with
its error and the next round retries; lines of a digest that never went out join the next one."""

from __future__ import annotations

import logging
from datetime import date, datetime

import psycopg
from psycopg_pool import ConnectionPool

from handlers.notifications import ledger, render
from handlers.notifications.channels import Mailer, PermanentDeliveryError, TransientDeliveryError
from handlers.notifications.digest import Digest, DigestSchedule, gather
from handlers.notifications.preferences import get_team, recipient_preferences
from handlers.notifications.read_models import ReadModels
from handlers.notifications.routing import Delivery

log = logging.getLogger(__name__)

# Users in digest mode, and anyone with lines still waiting (digest mode switched off since), whose
# digest of the day is not settled yet: new ones first, then those being retried, least recently
# tried first (one address that keeps failing does not hold up the others).
WAITING_USERS = (
    "SELECT u.user_name FROM (SELECT user_name FROM notification_preferences WHERE digest = 'daily'"
    " UNION SELECT user_name FROM notification_digest_lines WHERE digest_key IS NULL AND occurred_at < %(end)s) u"
    " LEFT JOIN notification_deliveries d ON d.event_key = 'digest:' || %(day)s || ':' || u.user_name"
    " AND d.channel = 'email' AND d.recipient = 'user:' || u.user_name"
    " WHERE d.status IS NULL OR d.status = 'pending' ORDER BY d.updated_at NULLS FIRST, u.user_name")
RETIRE_EARLIER = (
    "UPDATE notification_deliveries SET status = 'failed', error = 'not sent; its lines went into ' || %(key)s,"
    " updated_at = now() WHERE kind = 'digest' AND channel = 'email' AND recipient = %(recipient)s"
    " AND status = 'pending' AND event_key <> %(key)s")
# An earlier day's budget summary still being retried for this address, once a newer one is settled.
RETIRE_EARLIER_SUMMARY = (
    "UPDATE notification_deliveries SET status = 'failed', error = 'not sent; superseded by ' || %(key)s,"
    " updated_at = now() WHERE kind = 'budget_digest' AND channel = 'email' AND recipient = %(recipient)s"
    " AND status = 'pending' AND event_key <> %(key)s")


class DigestSender:
    def __init__(self, pool: ConnectionPool, schedule: DigestSchedule, mailer: Mailer, *, team: str, base_url: str,
                 sender: str, reads: ReadModels) -> None:
        self.pool, self.schedule, self.mailer, self.reads = pool, schedule, mailer, reads
        self.team, self.base_url, self.sender = team, base_url, sender

    def send_due(self, now: datetime) -> dict[str, str]:
        """Sends every digest due at `now` and not sent yet; returns each user's outcome. After a
        transient SMTP failure the others wait for the next round."""
        day = self.schedule.due(now)
        with self.pool.connection() as conn:
            users = [row[0] for row in conn.execute(WAITING_USERS, {"day": day.isoformat(),
                                                                    "end": self.schedule.send_time(day)})]
        outcomes: dict[str, str] = {}
        for user in users:
            outcomes[user] = self.send(user, day)
            if outcomes[user] == "pending":
                break
        return outcomes | self.send_budget_digests(day)

    def send_budget_digests(self, day: date) -> dict[str, str]:
        """FR7.2.2's daily budget summary to each manager and finance address, when the team asked
        for it (`budget_digest`): one ledger row `budget-digest:<day>` per address, as a user's
        digest. Returns each address's outcome (`done` for one settled before). Not held up by the
        users' digests nor by each other: an address whose mailbox keeps failing is tried after the
        others, each round, until the next day's summary retires it."""
        with self.pool.connection() as conn:
            team = get_team(conn, self.team)
            if not team.budget_digest:
                return {}
            tried = {row[0]: (row[1], row[2]) for row in conn.execute(
                "SELECT recipient, status, updated_at FROM notification_deliveries WHERE event_key = %s"
                " AND channel = 'email'", (f"budget-digest:{day.isoformat()}",))}
        waiting = [a for a in dict.fromkeys(team.manager_emails + team.finance_emails)
                   if a not in tried or tried[a][0] == "pending"]
        waiting.sort(key=lambda a: (a in tried, tried[a][1] if a in tried else None))  # new ones, then least recent
        return {address: self.send_budget_digest(address, day) for address in waiting}

    def send_budget_digest(self, address: str, day: date) -> str:
        key = f"budget-digest:{day.isoformat()}"
        with self.pool.connection() as conn, conn.transaction():
            digest = gather(conn, self.reads, "", self.team, self.schedule, day)
            delivery = Delivery("email", address, address, digest.team_notice(self.base_url))
            if not ledger.claim(conn, key, delivery):
                return "done"
            status, error = self._send(key, delivery, empty=digest.team_empty)
            ledger.settle(conn, key, delivery, status, error)
            if status != "pending":
                conn.execute(RETIRE_EARLIER_SUMMARY, {"key": key, "recipient": address})
        log.info("digests: %s for %s: %s%s", key, address, status, f" ({error})" if error else "")
        return status

    def send(self, user: str, day: date) -> str:
        """The user's digest of `day`: sent, skipped, failed, pending (retried later) or done (settled before)."""
        key = f"digest:{day.isoformat()}:{user}"
        with self.pool.connection() as conn, conn.transaction():
            digest = gather(conn, self.reads, user, self.team, self.schedule, day)
            email = recipient_preferences(conn, user).email
            delivery = Delivery("email", f"user:{user}", email or "", digest.notice(self.base_url),
                                "" if email else f"no email address for {user} (pipeline notifications prefs set …)")
            if not ledger.claim(conn, key, delivery):
                return "done"
            status, error = self._send(key, delivery, empty=digest.empty)
            ledger.settle(conn, key, delivery, status, error)
            if status != "pending":
                _close(conn, key, delivery, digest)
        log.info("digests: %s for %s: %s%s", key, user, status, f" ({error})" if error else "")
        return status

    def _send(self, key: str, delivery: Delivery, empty: bool) -> tuple[str, str | None]:
        why = delivery.unsendable or ("nothing to report" if empty else "") or (
            "" if self.mailer.configured else "channel not configured")
        if why:
            return "skipped", why
        try:
            self.mailer.send(render.email(delivery.notice, self.sender, delivery.target, f"{key}:{delivery.recipient}"))
        except TransientDeliveryError as exc:
            log.warning("digests: %s will be retried: %s", key, exc)
            return "pending", str(exc)
        except PermanentDeliveryError as exc:
            log.error("digests: %s failed: %s", key, exc)
            return "failed", str(exc)
        return "sent", None


def _close(conn: psycopg.Connection, key: str, delivery: Delivery, digest: Digest) -> None:
    """The digest's lines are done with (sent, or settled as unsendable), and so is any earlier
    digest of the user's still pending: its lines were in this one."""
    conn.execute("UPDATE notification_digest_lines SET digest_key = %s WHERE user_name = %s AND event_key = ANY(%s)",
                 (key, digest.user, [line["event_key"] for line in digest.lines]))
    conn.execute(RETIRE_EARLIER, {"key": key, "recipient": delivery.recipient})

