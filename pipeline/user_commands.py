"""`pipeline users add|list|password|role|disable|enable|token|revoke-tokens`: the people who sign in
to the dashboard (docs/web.md). Passwords come from stdin (`--password-stdin`) or are generated and
printed once; they never appear in the process list."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import psycopg

from infra.settings import SettingsError
from web import users
from web.passwords import WeakPasswordError, check_strength, generated_password

ERRORS = (users.InvalidUserError, users.UserExistsError, users.UnknownUserError, WeakPasswordError)


def add_arguments(sub: argparse._SubParsersAction, run: Callable) -> None:
    add = sub.add_parser("add", help="create a user (prints a generated password unless --password-stdin)")
    add.add_argument("name", help="sign-in name: lower-case letters, digits, '.', '_' or '-'")
    add.add_argument("--role", choices=users.ROLES, default="member")
    add.add_argument("--email")
    add.add_argument("--display-name", help="shown on pages (default: the name)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(run=run, action=_add)
    sub.add_parser("list", help="every user with role and state").set_defaults(run=run, action=_list)
    password = sub.add_parser("password", help="set a new password (ends the user's sessions)")
    password.add_argument("name")
    password.add_argument("--password-stdin", action="store_true")
    password.set_defaults(run=run, action=_password)
    role = sub.add_parser("role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=users.ROLES)
    role.set_defaults(run=run, action=_role)
    for name, disabled in (("disable", True), ("enable", False)):
        toggle = sub.add_parser(name, help=f"{name} sign-in and API tokens")
        toggle.add_argument("name")
        toggle.set_defaults(run=run, action=_toggle, disabled=disabled)
    token = sub.add_parser("token", help="create an API token (Authorization: Bearer …), printed once")
    token.add_argument("name")
    token.add_argument("--label", default="cli", help="what the token is for")
    token.set_defaults(run=run, action=_token)
    revoke = sub.add_parser("revoke-tokens", help="revoke every API token of a user")
    revoke.add_argument("name")
    revoke.set_defaults(run=run, action=_revoke)


def run(conn: psycopg.Connection, args: argparse.Namespace) -> int:
    try:
        args.action(conn, args)
    except ERRORS as exc:
        print(f"pipeline: error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    return 0


def _password_from(args: argparse.Namespace) -> tuple[str, bool]:
    """(the password, whether it was generated here)."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    return generated_password(), True


def _add(conn: psycopg.Connection, args: argparse.Namespace) -> None:
    password, generated = _password_from(args)
    user = users.add_user(conn, args.name, args.role, password, args.email, args.display_name)
    print(f"added {user.name} ({user.role})")
    if generated:
        print(f"password: {password}")


def _list(conn: psycopg.Connection, args: argparse.Namespace) -> None:
    for user in users.list_users(conn):
        state = "disabled" if user.disabled else "active"
        print(f"{user.name}\t{user.role}\t{state}\t{user.email or ''}\t{user.display_name}")


def _password(conn: psycopg.Connection, args: argparse.Namespace) -> None:
    password, generated = _password_from(args)
    users.set_password(conn, args.name, password)
    print(f"password of {args.name} changed; their sessions ended")
    if generated:
        print(f"password: {password}")


def _role(conn: psycopg.Connection, args: argparse.Namespace) -> None:
    users.set_role(conn, args.name, args.role)
    print(f"{args.name} is now {args.role}")


def _toggle(conn: psycopg.Connection, args: argparse.Namespace) -> None:
    users.set_disabled(conn, args.name, args.disabled)
    print(f"{args.name} {'disabled' if args.disabled else 'enabled'}")


def _token(conn: psycopg.Connection, args: argparse.Namespace) -> None:
    print(users.create_token(conn, args.name, args.label))


def _revoke(conn: psycopg.Connection, args: argparse.Namespace) -> None:
    print(f"revoked {users.revoke_tokens(conn, args.name)} token(s) of {args.name}")


def check_admin_password(password: str) -> None:
    """PIPELINE_ADMIN_PASSWORD, when set, is one `users password` would take: a setting error
    (one line, exit 2) before anything starts, not a traceback once the database is up."""
    try:
        if password:
            check_strength(password)
    except WeakPasswordError as exc:
        raise SettingsError(f"invalid setting PIPELINE_ADMIN_PASSWORD: {exc} (it has {len(password)});"
                            " unset it to have a password generated") from None


def bootstrap_admin(conn: psycopg.Connection, password: str, password_file) -> str | None:
    """On a database without users: creates `admin` (the given password, else a generated one written
    to `password_file`, mode 0600). Returns a line to print, or None when users exist."""
    if users.count_users(conn):
        return None
    chosen = password or generated_password()
    try:
        users.add_user(conn, "admin", "admin", chosen, display_name="Administrator")
    except users.UserExistsError:
        return None  # another process made it first
    if password:
        return "created user admin (password from PIPELINE_ADMIN_PASSWORD)"
    password_file.parent.mkdir(parents=True, exist_ok=True)
    password_file.touch(mode=0o600)
    password_file.write_text(chosen + "\n")
    return (f"created user admin, password: {chosen} (also in {password_file};"
            " change it with `pipeline users password admin`)")
