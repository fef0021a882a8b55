"""PostgreSQL connections and the migration runner."""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterator
from typing import Any

import psycopg
from eventsourcing.persistence import OperationalError as RecorderOperationalError

from infra.eventstore import create_event_tables

# Any fixed 64-bit key: every process that migrates takes this lock first.
MIGRATION_LOCK_KEY = 7_305_101_901


# PostgreSQL away (restarting, unreachable, shutting down) as psycopg and the event store's
# recorder raise it: transient, retried, said once (infra/logs.py).
UNAVAILABLE: tuple[type[Exception], ...] = (psycopg.OperationalError, RecorderOperationalError)


class DatabaseUnavailableError(Exception):
    """PostgreSQL could not be reached; the message is one line."""


def connect(database_url: str, timeout: float = 5.0, **kwargs: Any) -> psycopg.Connection:
    try:
        return psycopg.connect(database_url, connect_timeout=max(1, int(timeout)), **kwargs)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailableError(f"cannot connect to PostgreSQL: {reason}") from None


def migration_files() -> Iterator[tuple[str, str]]:
    root = importlib.resources.files("migrations")
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            yield entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8")


def migrate(database_url: str, timeout: float = 5.0) -> list[str]:
    """Applies pending migrations once each, each in its own transaction, under an advisory lock."""
    applied_now: list[str] = []
    with connect(database_url, timeout, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, sql_text in migration_files():
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql_text)
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                applied_now.append(version)
            create_event_tables(database_url)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied_now
