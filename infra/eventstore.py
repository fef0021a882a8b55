"""The event store: eventsourcing applications persisted in PostgreSQL through psycopg."""

from __future__ import annotations

import os
from dataclasses import dataclass

from eventsourcing.application import Application
from psycopg.conninfo import conninfo_to_dict

from domain.applications import BudgetPolicy, Pipeline

APPLICATION_CLASSES: tuple[type[Application], ...] = (Pipeline,)


def application_env(database_url: str, *, create_table: bool = False, pool_size: int = 5) -> dict[str, str]:
    params = conninfo_to_dict(database_url)
    if attrs := params.get("target_session_attrs"):
        # eventsourcing hands its pool host, port, user and password only (several hosts work as
        # libpq's lists): libpq reads which of them to use from its environment.
        os.environ["PGTARGETSESSIONATTRS"] = str(attrs)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(params.get("dbname", "postgres")),
        "POSTGRES_HOST": str(params.get("host", "localhost")),
        "POSTGRES_PORT": str(params.get("port", "5432")),
        "POSTGRES_USER": str(params.get("user", "postgres")),
        # eventsourcing refuses an empty password even under trust auth (brief §2).
        "POSTGRES_PASSWORD": str(params.get("password") or "trust-auth"),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_CONNECT_TIMEOUT": "5",
        # Off on purpose: with it on, commits land out of order and subscriptions skip events.
        "POSTGRES_ENABLE_DB_FUNCTIONS": "no",
        "CREATE_TABLE": "yes" if create_table else "no",
        # A month's Budget gathers an event per charge (every 30 s per running pod): replaying it
        # on every command made reactions slow (bench/reaction_time.py). Cached aggregates are
        # fast-forwarded with the events stored since (by any process) and handed out as copies.
        "AGGREGATE_CACHE_MAXSIZE": "1000",
    }


def create_event_tables(database_url: str) -> None:
    """Creates the applications' tables; called by the migration runner while it holds its lock."""
    for cls in APPLICATION_CLASSES:
        app = cls(env=application_env(database_url, create_table=True, pool_size=1))
        app.close()


@dataclass
class EventStore:
    """The application(s) one process uses, built from one database URL."""

    app: Pipeline

    @classmethod
    def open(cls, database_url: str, pool_size: int = 5, policy: BudgetPolicy | None = None) -> EventStore:
        return cls(app=Pipeline(env=application_env(database_url, pool_size=pool_size), policy=policy))

    def applications(self) -> tuple[Application, ...]:
        return (self.app,)

    def close(self) -> None:
        for app in self.applications():
            app.close()
