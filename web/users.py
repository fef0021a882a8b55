"""Users, web sessions and API tokens in PostgreSQL (docs/web.md): the CLI manages users, the web
process signs them in. Secrets are stored only as SHA-256 fingerprints, passwords as scrypt hashes."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from web.passwords import (
    check_strength,
    fingerprint,
    hash_password,
    new_secret,
    verify_password,
)

ROLES = ("member", "manager", "admin")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SESSION_IDLE = timedelta(hours=12)
SESSION_MAX = timedelta(days=7)
SEEN_EVERY = timedelta(minutes=5)  # a session's last_seen_at is written at most this often
FAILURES_ALLOWED = 10              # failed sign-ins per name in FAILURE_WINDOW before refusing
FAILURE_WINDOW = timedelta(minutes=15)
TOKEN_PREFIX = "lpt_"
USER_COLUMNS = "name, display_name, email, role, disabled_at"


@dataclass(frozen=True)
class User:
    name: str
    display_name: str
    email: str | None
    role: str
    disabled: bool = False

    @property
    def is_manager(self) -> bool:
        return self.role in ("manager", "admin")


def _user(row: dict) -> User:
    return User(row["name"], row["display_name"], row["email"], row["role"], row["disabled_at"] is not None)


def check_user_fields(name: str, role: str, email: str | None) -> None:
    if not NAME.fullmatch(name):
        raise InvalidUserError("User name must be 1–64 characters: lower-case letters, digits, '.', '_' or '-',"
                               " starting with a letter or digit")
    if role not in ROLES:
        raise InvalidUserError(f"Role must be one of {', '.join(ROLES)}")
    if email is not None and not EMAIL.fullmatch(email):
        raise InvalidUserError(f"Not an email address: {email}")


# --- the CLI side (synchronous) ----------------------------------------------------------------

def add_user(conn: psycopg.Connection, name: str, role: str, password: str, email: str | None = None,
             display_name: str | None = None) -> User:
    check_user_fields(name, role, email)
    check_strength(password)
    try:
        with conn.transaction():
            conn.execute("INSERT INTO users (name, display_name, email, role, password_hash)"
                         " VALUES (%s, %s, %s, %s, %s)",
                         (name, display_name or name, email, role, hash_password(password)))
    except psycopg.errors.UniqueViolation:
        raise UserExistsError(f"User {name} already exists") from None
    return User(name, display_name or name, email, role)


def list_users(conn: psycopg.Connection) -> list[User]:
    cur = conn.cursor(row_factory=dict_row)
    return [_user(r) for r in cur.execute(f"SELECT {USER_COLUMNS} FROM users ORDER BY name").fetchall()]


def count_users(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM users").fetchone()[0]


def set_password(conn: psycopg.Connection, name: str, password: str) -> None:
    """A new password ends the user's sessions."""
    check_strength(password)
    with conn.transaction():
        _require(conn.execute("UPDATE users SET password_hash = %s WHERE name = %s", (hash_password(password), name)),
                 name)
        conn.execute("DELETE FROM web_sessions WHERE user_name = %s", (name,))


def set_role(conn: psycopg.Connection, name: str, role: str) -> None:
    check_user_fields(name, role, None)
    with conn.transaction():
        _require(conn.execute("UPDATE users SET role = %s WHERE name = %s", (role, name)), name)


def set_disabled(conn: psycopg.Connection, name: str, disabled: bool) -> None:
    """Disabling ends the user's sessions; tokens stop working while disabled."""
    with conn.transaction():
        _require(conn.execute("UPDATE users SET disabled_at = CASE WHEN %s THEN coalesce(disabled_at, now()) END"
                              " WHERE name = %s", (disabled, name)), name)
        if disabled:
            conn.execute("DELETE FROM web_sessions WHERE user_name = %s", (name,))


def create_token(conn: psycopg.Connection, name: str, label: str) -> str:
    """A new API token for scripts (`Authorization: Bearer …`); shown once, stored as a fingerprint."""
    token = new_secret(TOKEN_PREFIX)
    with conn.transaction():
        exists = conn.execute("SELECT 1 FROM users WHERE name = %s", (name,)).fetchone()
        if not exists:
            raise UnknownUserError(f"No user {name}")
        conn.execute("INSERT INTO api_tokens (token_sha256, user_name, label) VALUES (%s, %s, %s)",
                     (fingerprint(token), name, label))
    return token


def revoke_tokens(conn: psycopg.Connection, name: str) -> int:
    with conn.transaction():
        return conn.execute("UPDATE api_tokens SET revoked_at = now() WHERE user_name = %s AND revoked_at IS NULL",
                            (name,)).rowcount


def _require(cur: psycopg.Cursor, name: str) -> None:
    if cur.rowcount == 0:
        raise UnknownUserError(f"No user {name}")


# --- the web side (asynchronous) ---------------------------------------------------------------

@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str


async def sign_in(pool: AsyncConnectionPool, name: str, password: str, ip: str | None, user_agent: str | None,
                  now: datetime) -> tuple[str, Session]:
    """Checks the password and opens a session: (the cookie's secret, the session). Wrong name or
    password: BadCredentialsError (one message for both); too many failures: TooManyAttemptsError."""
    name = name.strip().lower()
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        recent = await (await cur.execute("SELECT count(*) AS n FROM sign_in_failures WHERE user_name = %s AND at > %s",
                                          (name, now - FAILURE_WINDOW))).fetchone()
        if recent["n"] >= FAILURES_ALLOWED:
            raise TooManyAttemptsError("Too many failed sign-ins for this user: wait 15 minutes and try again")
        row = await (await cur.execute(f"SELECT {USER_COLUMNS}, password_hash FROM users WHERE name = %s",
                                       (name,))).fetchone()
    # Hash even for an unknown name, so that timing does not tell which names exist.
    stored = row["password_hash"] if row else hash_password("unknown user")
    matches = await asyncio.to_thread(verify_password, password, stored)
    if not row or not matches or row["disabled_at"] is not None:
        async with pool.connection() as conn:
            await conn.execute("INSERT INTO sign_in_failures (user_name, at, ip_address) VALUES (%s, %s, %s)",
                               (name[:64], now, ip))
        raise BadCredentialsError("Wrong user name or password")
    secret, csrf = new_secret(), new_secret()
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO web_sessions (token_sha256, user_name, csrf_token, created_at, last_seen_at, expires_at,"
            " ip_address, user_agent) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (fingerprint(secret), name, csrf, now, now, now + SESSION_MAX, ip, (user_agent or "")[:300]))
        await conn.execute("DELETE FROM sign_in_failures WHERE user_name = %s", (name,))
    return secret, Session(_user(row), csrf)


async def session_of(pool: AsyncConnectionPool, secret: str, now: datetime) -> Session | None:
    """The live session a cookie names, or None (unknown, idle too long, past its end, user disabled)."""
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        row = await (await cur.execute(
            f"SELECT s.csrf_token, s.last_seen_at, {', '.join('u.' + c.strip() for c in USER_COLUMNS.split(','))}"
            " FROM web_sessions s JOIN users u ON u.name = s.user_name"
            " WHERE s.token_sha256 = %s AND s.expires_at > %s AND s.last_seen_at > %s",
            (fingerprint(secret), now, now - SESSION_IDLE))).fetchone()
        if row is None or row["disabled_at"] is not None:
            return None
        if now - row["last_seen_at"] > SEEN_EVERY:
            await conn.execute("UPDATE web_sessions SET last_seen_at = %s WHERE token_sha256 = %s",
                               (now, fingerprint(secret)))
    return Session(_user(row), row["csrf_token"])


async def sign_out(pool: AsyncConnectionPool, secret: str) -> None:
    async with pool.connection() as conn:
        await conn.execute("DELETE FROM web_sessions WHERE token_sha256 = %s", (fingerprint(secret),))


async def token_user(pool: AsyncConnectionPool, token: str, now: datetime) -> User | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        row = await (await cur.execute(
            f"SELECT t.last_used_at, {', '.join('u.' + c.strip() for c in USER_COLUMNS.split(','))}"
            " FROM api_tokens t JOIN users u ON u.name = t.user_name"
            " WHERE t.token_sha256 = %s AND t.revoked_at IS NULL", (fingerprint(token),))).fetchone()
        if row is None or row["disabled_at"] is not None:
            return None
        if row["last_used_at"] is None or now - row["last_used_at"] > SEEN_EVERY:
            await conn.execute("UPDATE api_tokens SET last_used_at = %s WHERE token_sha256 = %s",
                               (now, fingerprint(token)))
    return _user(row)


async def display_name(pool: AsyncConnectionPool, name: str) -> str:
    """A user's display name (their user name when they have none, or are no user here)."""
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT display_name FROM users WHERE name = %s", (name,))).fetchone()
    return row[0] if row and row[0] else name


async def known_users(pool: AsyncConnectionPool, names: list[str]) -> set[str]:
    """Which of `names` are users here (enabled or not)."""
    async with pool.connection() as conn:
        found = await (await conn.execute("SELECT name FROM users WHERE name = ANY(%s)", (names,))).fetchall()
    return {row[0] for row in found}


class InvalidUserError(ValueError):
    """A user's name, role or email is not acceptable."""


class UserExistsError(ValueError):
    """A user of that name exists already."""


class UnknownUserError(LookupError):
    """No user of that name."""


class BadCredentialsError(Exception):
    """Wrong user name or password (one message for both)."""


class TooManyAttemptsError(Exception):
    """Too many failed sign-ins for one name recently."""
