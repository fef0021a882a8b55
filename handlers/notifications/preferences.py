"""Who wants what: per-user notification preferences and per-team channels and recipients
(FR8.2.1 "Notification Preferences", FR7.2.2 "Notification Recipients"), kept in PostgreSQL and
edited from the CLI and the JSON API."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any

import psycopg

CHANNELS = ("email", "slack")
JOB_EVENTS = ("completed", "failed", "cancelled", "interrupted", "recovery_exhausted", "provisioning_timeout",
              "quality_scored")
# The spec's choices ("Completions only, Failures only, All events") as shorthands.
EVENT_GROUPS = {"all": JOB_EVENTS, "completions": ("completed", "quality_scored"),
                "failures": ("failed", "recovery_exhausted", "provisioning_timeout")}
DIGESTS = ("off", "daily")
EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+$")
WEBHOOK = re.compile(r"^https?://\S+$")


@dataclass(frozen=True)
class Preferences:
    """No stored row means these defaults: email (once an address is set) for every job event."""

    user: str
    email: str | None = None
    channels: tuple[str, ...] = ("email",)
    events: tuple[str, ...] = JOB_EVENTS
    digest: str = "off"
    slack_webhook_url: str | None = None

    def checked(self) -> Preferences:
        """The same preferences normalised; raises InvalidPreferencesError on a bad value."""
        if not self.user.strip() or len(self.user) > 100:
            raise InvalidPreferencesError("user must be 1-100 characters")
        _check_among("channel", self.channels, CHANNELS)
        _check_among("event", self.events, JOB_EVENTS)
        _check_among("digest mode", (self.digest,), DIGESTS)
        if self.slack_webhook_url and not WEBHOOK.match(self.slack_webhook_url):
            raise InvalidPreferencesError("the Slack webhook must be an http(s) URL")
        return replace(self, user=self.user.strip(), email=check_email(self.email) if self.email else None,
                       channels=_ordered(self.channels, CHANNELS), events=_ordered(self.events, JOB_EVENTS),
                       slack_webhook_url=self.slack_webhook_url or None)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"channels": list(self.channels), "events": list(self.events)}


@dataclass(frozen=True)
class TeamSettings:
    """The team's Slack channel (else PIPELINE_SLACK_WEBHOOK_URL) and the budget recipients:
    managers get alerts and limit requests, finance gets alerts; with `budget_digest` both also
    get the daily budget summary."""

    team: str
    slack_webhook_url: str | None = None
    slack_channel: str | None = None
    manager_emails: tuple[str, ...] = ()
    finance_emails: tuple[str, ...] = ()
    budget_digest: bool = False

    def checked(self) -> TeamSettings:
        if self.slack_webhook_url and not WEBHOOK.match(self.slack_webhook_url):
            raise InvalidPreferencesError("the Slack webhook must be an http(s) URL")
        return replace(self, slack_webhook_url=self.slack_webhook_url or None, slack_channel=self.slack_channel or None,
                       manager_emails=tuple(dict.fromkeys(check_email(e) for e in self.manager_emails)),
                       finance_emails=tuple(dict.fromkeys(check_email(e) for e in self.finance_emails)))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"manager_emails": list(self.manager_emails), "finance_emails": list(self.finance_emails)}


def check_email(address: str) -> str:
    address = address.strip().lower()
    if not EMAIL.match(address) or len(address) > 254:
        raise InvalidPreferencesError(f"not an email address: {address!r}")
    return address


def expand_events(names: list[str]) -> tuple[str, ...]:
    """Event names, or the shorthands all / completions / failures."""
    return tuple(event for name in names for event in EVENT_GROUPS.get(name, (name,)))


def _check_among(what: str, values: tuple[str, ...], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise InvalidPreferencesError(f"unknown {what} {', '.join(unknown)}; known: {', '.join(allowed)}")


def _ordered(values: tuple[str, ...], known: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v for v in known if v in values)


# --- storage ----------------------------------------------------------------------------------

def get_preferences(conn: psycopg.Connection, user: str) -> Preferences:
    row = conn.execute("SELECT user_name, email, channels, events, digest, slack_webhook_url"
                       " FROM notification_preferences WHERE user_name = %s", (user,)).fetchone()
    return _preferences(row) if row else Preferences(user)


def recipient_preferences(conn: psycopg.Connection, user: str) -> Preferences:
    """What sending uses: the user's preferences, with their account's address
    (`pipeline users add --email`) where the preferences name none."""
    found = get_preferences(conn, user)
    if found.email:
        return found
    account = conn.execute("SELECT email FROM users WHERE name = %s", (user,)).fetchone()
    return replace(found, email=account[0]) if account and account[0] else found


def list_preferences(conn: psycopg.Connection) -> list[Preferences]:
    rows = conn.execute("SELECT user_name, email, channels, events, digest, slack_webhook_url"
                        " FROM notification_preferences ORDER BY user_name").fetchall()
    return [_preferences(row) for row in rows]


def save_preferences(conn: psycopg.Connection, preferences: Preferences) -> Preferences:
    p = preferences.checked()
    conn.execute(
        "INSERT INTO notification_preferences (user_name, email, channels, events, digest, slack_webhook_url)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (user_name) DO UPDATE SET email = EXCLUDED.email,"
        " channels = EXCLUDED.channels, events = EXCLUDED.events, digest = EXCLUDED.digest,"
        " slack_webhook_url = EXCLUDED.slack_webhook_url, updated_at = now()",
        (p.user, p.email, list(p.channels), list(p.events), p.digest, p.slack_webhook_url))
    return p


def get_team(conn: psycopg.Connection, team: str) -> TeamSettings:
    row = conn.execute("SELECT team, slack_webhook_url, slack_channel, manager_emails, finance_emails, budget_digest"
                       " FROM notification_team_settings WHERE team = %s", (team,)).fetchone()
    if row is None:
        return TeamSettings(team)
    return TeamSettings(row[0], row[1], row[2], tuple(row[3]), tuple(row[4]), row[5])


async def team_slack_webhook(conn: psycopg.AsyncConnection[Any], team: str) -> str:
    """The team's own Slack webhook ("" when none is set), for pages that offer to post to it."""
    row = await (await conn.execute("SELECT slack_webhook_url FROM notification_team_settings WHERE team = %s",
                                    (team,))).fetchone()
    return str(row[0] or "") if row else ""


def save_team(conn: psycopg.Connection, settings: TeamSettings) -> TeamSettings:
    t = settings.checked()
    conn.execute(
        "INSERT INTO notification_team_settings (team, slack_webhook_url, slack_channel, manager_emails,"
        " finance_emails, budget_digest) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (team) DO UPDATE SET"
        " slack_webhook_url = EXCLUDED.slack_webhook_url, slack_channel = EXCLUDED.slack_channel,"
        " manager_emails = EXCLUDED.manager_emails, finance_emails = EXCLUDED.finance_emails,"
        " budget_digest = EXCLUDED.budget_digest, updated_at = now()",
        (t.team, t.slack_webhook_url, t.slack_channel, list(t.manager_emails), list(t.finance_emails),
         t.budget_digest))
    return t


def _preferences(row: tuple) -> Preferences:
    return Preferences(row[0], row[1], tuple(row[2]), tuple(row[3]), row[4], row[5])


class InvalidPreferencesError(ValueError):
    """A preference or team setting has a value we cannot use; nothing was saved."""
