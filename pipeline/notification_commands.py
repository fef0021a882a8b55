"""`pipeline notifications prefs|team|deliveries`: preferences, team channels and the delivery
ledger from the command line (the JSON API does the same: web/notifications.py)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace

import psycopg

from handlers.notifications import ledger
from handlers.notifications.preferences import (
    CHANNELS,
    DIGESTS,
    EVENT_GROUPS,
    JOB_EVENTS,
    InvalidPreferencesError,
    Preferences,
    TeamSettings,
    expand_events,
    get_preferences,
    get_team,
    list_preferences,
    save_preferences,
    save_team,
)
from pipeline.arguments import whole_number


def add_arguments(sub: argparse._SubParsersAction, run: Callable) -> None:
    """The subcommands; each runs `run` (the CLI's database wrapper), which calls `action`."""
    prefs = sub.add_parser("prefs", help="users' notification preferences").add_subparsers(
        dest="prefs_command", required=True)
    set_prefs = prefs.add_parser("set", help="set a user's preferences (options left out stay as they are)")
    set_prefs.add_argument("user")
    set_prefs.add_argument("--email", help="address for email notifications ('' removes it)")
    set_prefs.add_argument("--channels", type=_names, help=f"comma-separated: {', '.join(CHANNELS)} ('' = none)")
    set_prefs.add_argument("--events", type=_names,
                           help=f"comma-separated: {', '.join(EVENT_GROUPS)} or {', '.join(JOB_EVENTS)}")
    set_prefs.add_argument("--digest", choices=DIGESTS, help="daily: job emails come as one daily digest instead")
    set_prefs.add_argument("--slack-webhook", help="a personal Slack incoming webhook ('' = the team's channel)")
    set_prefs.set_defaults(run=run, action=_set_preferences)
    prefs.add_parser("list", help="every user's preferences").set_defaults(run=run, action=_list_preferences)
    team = sub.add_parser("team", help="the team's Slack channel and budget recipients").add_subparsers(
        dest="team_command", required=True)
    set_team = team.add_parser("set", help="set the team's settings (options left out stay as they are)")
    set_team.add_argument("--slack-webhook", help="the team channel's incoming webhook URL")
    set_team.add_argument("--slack-channel", help="the channel's name, for people (e.g. '#training-budget')")
    set_team.add_argument("--managers", type=_names, help="comma-separated emails: budget alerts and limit requests")
    set_team.add_argument("--finance", type=_names, help="comma-separated emails: budget alerts")
    set_team.add_argument("--budget-digest", choices=("on", "off"),
                          help="the daily budget summary to the managers and finance")
    set_team.set_defaults(run=run, action=_set_team)
    team.add_parser("show", help="the team's settings").set_defaults(run=run, action=_show_team)
    deliveries = sub.add_parser("deliveries", help="recent deliveries, newest first")
    deliveries.add_argument("--failed", action="store_true", help="only failed ones and those being retried")
    deliveries.add_argument("--limit", type=whole_number(1, 1000), default=50, help="at most this many (1-1,000)")
    deliveries.set_defaults(run=run, action=_deliveries)


def run(conn: psycopg.Connection, args: argparse.Namespace, team: str) -> int:
    """Runs the parsed subcommand's action and commits; returns the exit status."""
    try:
        args.action(conn, args, team)
    except InvalidPreferencesError as exc:
        print(f"pipeline: error: {exc}", file=sys.stderr)
        return 2
    conn.commit()
    return 0


def _set_preferences(conn: psycopg.Connection, args: argparse.Namespace, team: str) -> None:
    print(_describe(save_preferences(conn, _changed(get_preferences(conn, args.user), args))))


def _list_preferences(conn: psycopg.Connection, args: argparse.Namespace, team: str) -> None:
    print("\n".join(_describe(p) for p in list_preferences(conn)) or "no preferences set")


def _set_team(conn: psycopg.Connection, args: argparse.Namespace, team: str) -> None:
    current = get_team(conn, team)
    print(_describe_team(save_team(conn, replace(
        current, slack_webhook_url=_given(args.slack_webhook, current.slack_webhook_url),
        slack_channel=_given(args.slack_channel, current.slack_channel),
        manager_emails=_given(args.managers, current.manager_emails),
        finance_emails=_given(args.finance, current.finance_emails),
        budget_digest=current.budget_digest if args.budget_digest is None else args.budget_digest == "on"))))


def _show_team(conn: psycopg.Connection, args: argparse.Namespace, team: str) -> None:
    print(_describe_team(get_team(conn, team)))


def _deliveries(conn: psycopg.Connection, args: argparse.Namespace, team: str) -> None:
    rows = ledger.deliveries(conn, args.failed, args.limit)
    if not rows:
        print("no failed deliveries" if args.failed else "no deliveries yet")
    for row in rows:
        status = f"{row['status']} ({row['error']})" if row["error"] else row["status"]
        print(f"{row['created_at']:%Y-%m-%d %H:%M:%S}  {row['kind']:<20} {row['channel']:<6} "
              f"{row['recipient']:<28} {status}  [{row['attempts']} attempt(s)]  {row['subject']}")


def _changed(current: Preferences, args: argparse.Namespace) -> Preferences:
    return replace(current, email=_given(args.email, current.email) or None,
                   channels=_given(args.channels, current.channels),
                   events=expand_events(list(args.events)) if args.events is not None else current.events,
                   digest=args.digest or current.digest,
                   slack_webhook_url=_given(args.slack_webhook, current.slack_webhook_url) or None)


def _given(value: object, current: object) -> object:
    return current if value is None else value


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _describe(p: Preferences) -> str:
    channels = ",".join(p.channels) or "none"
    webhook = " (own Slack webhook)" if p.slack_webhook_url else ""
    return (f"{p.user}: email {p.email or '-'}, channels {channels}{webhook}, events {','.join(p.events) or 'none'},"
            f" digest {p.digest}")


def _describe_team(t: TeamSettings) -> str:
    webhook = "own webhook" if t.slack_webhook_url else "webhook from PIPELINE_SLACK_WEBHOOK_URL"
    return (f"team {t.team}: Slack {t.slack_channel or '-'} ({webhook}),"
            f" managers {','.join(t.manager_emails) or '-'}, finance {','.join(t.finance_emails) or '-'},"
            f" daily budget summary {'on' if t.budget_digest else 'off'}")
