"""Who gets which notice on which channel: the routing rules in one place (docs/notifications.md).

- Job events go to the job's creator on the channels they chose, for the events they chose (a
  resumption goes with interruptions: it is their follow-up). A creator in daily digest mode gets
  their emails as lines of the next digest instead (digest.py).
- Job events also become the creator's in-app banners, whatever they chose (FR8.2.1 "In-app:
  Always on (banner notifications)").
- Completions and failures also go to the team's Slack channel (FR8.2.1 "designated channel").
- Budget thresholds escalate (FR7.2.2): 80 % and 90 % email; 95 % email + Slack; 100 % email +
  Slack + an in-app banner. Emails go to the team's managers and finance recipients. A forecast
  overrun while jobs are active ("Active job may exceed budget") goes as the 95 % alert does:
  email + Slack (someone must act before the money is spent).
- Limit-increase requests go to the managers by email, each with links signed for them; the
  decision goes back to the requester by email."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.notifications.notices import Notice
from handlers.notifications.preferences import Preferences, TeamSettings

TEAM_SLACK_KINDS = frozenset({"completed", "failed", "recovery_exhausted"})
USER_BANNER_KINDS = frozenset({"completed", "failed", "recovery_exhausted", "cancelled", "interrupted", "resumed",
                               "provisioning_timeout"})
# Notice kinds that follow another kind's preference rather than having one of their own.
PREFERENCE_OF = {"resumed": "interrupted"}
ESCALATION: dict[int, tuple[str, ...]] = {
    80: ("email",), 90: ("email",), 95: ("email", "slack"), 100: ("email", "slack", "banner")}
OVERRUN_CHANNELS = ("email", "slack")
TEAM_CHANNEL = "team"


@dataclass(frozen=True)
class Delivery:
    """One message to one recipient. `recipient` is what the delivery ledger keys and shows (an
    address, `team`, `user:<name>`, `team:<team>`); `target` is where it goes (an address or a
    webhook URL, empty when the channel is not configured; the user for a banner or a digest line);
    `unsendable` says why it cannot go at all."""

    channel: str
    recipient: str
    target: str
    notice: Notice
    unsendable: str = ""


def job_deliveries(notice: Notice, owner: Preferences, team_webhook: str) -> list[Delivery]:
    chosen = PREFERENCE_OF.get(notice.kind, notice.kind) in owner.events
    wanted = [_digested(d, owner) for d in to_user(notice, owner, team_webhook)] if chosen else []
    if notice.kind in TEAM_SLACK_KINDS:
        wanted.append(Delivery("slack", TEAM_CHANNEL, team_webhook, notice))
    if notice.kind in USER_BANNER_KINDS:
        wanted.append(Delivery("banner", f"user:{owner.user}", owner.user, notice))
    return unique(wanted)


def _digested(delivery: Delivery, owner: Preferences) -> Delivery:
    """In digest mode the email becomes a line of the owner's next daily digest (FR8.2.1)."""
    if delivery.channel != "email" or owner.digest != "daily":
        return delivery
    return Delivery("digest", f"user:{owner.user}", owner.user, delivery.notice)


def budget_alert_deliveries(notice: Notice, percent: int, team: TeamSettings, team_webhook: str) -> list[Delivery]:
    return budget_deliveries(notice, ESCALATION.get(percent, ("email",)), team, team_webhook)


def overrun_deliveries(notice: Notice, team: TeamSettings, team_webhook: str) -> list[Delivery]:
    return budget_deliveries(notice, OVERRUN_CHANNELS, team, team_webhook)


def budget_deliveries(notice: Notice, channels: tuple[str, ...], team: TeamSettings,
                      team_webhook: str) -> list[Delivery]:
    wanted = emails(notice, (*team.manager_emails, *team.finance_emails), "managers or finance") \
        if "email" in channels else []
    if "slack" in channels:
        wanted.append(Delivery("slack", TEAM_CHANNEL, team_webhook, notice))
    if "banner" in channels:
        wanted.append(Delivery("banner", f"team:{team.team}", team.team, notice))
    return unique(wanted)


def decision_deliveries(notice: Notice, requester: Preferences) -> list[Delivery]:
    """The requester of a limit increase learns the decision by email (FR1.2.2)."""
    return [d for d in to_user(notice, requester, "") if d.channel == "email"]


def to_user(notice: Notice, user: Preferences, team_webhook: str) -> list[Delivery]:
    """A user's own channels: email, and Slack on their personal webhook (else the team's)."""
    wanted: list[Delivery] = []
    if "email" in user.channels:
        wanted.append(Delivery("email", user.email, user.email, notice) if user.email else
                      Delivery("email", f"user:{user.user}", "", notice,
                               f"no email address for {user.user} (pipeline notifications prefs set …)"))
    if "slack" in user.channels:
        wanted.append(Delivery("slack", f"user:{user.user}", user.slack_webhook_url, notice) if user.slack_webhook_url
                      else Delivery("slack", TEAM_CHANNEL, team_webhook, notice))
    return wanted


def emails(notice: Notice, addresses: tuple[str, ...], who: str) -> list[Delivery]:
    """One email per address; none set is recorded rather than silently dropped."""
    if not addresses:
        return [Delivery("email", who, "", notice,
                         f"no {who} email addresses set (pipeline notifications team set …)")]
    return [Delivery("email", address, address, notice) for address in addresses]


def unique(deliveries: list[Delivery]) -> list[Delivery]:
    """One delivery per (channel, recipient): the creator choosing Slack and the team channel
    getting the same event is one message."""
    first: dict[tuple[str, str], Delivery] = {}
    for delivery in deliveries:
        first.setdefault((delivery.channel, delivery.recipient), delivery)
    return list(first.values())
