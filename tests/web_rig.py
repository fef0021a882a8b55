"""The whole web app (web.app.create_app) on real PostgreSQL and a private nats-server, with signed-in
people of each role: what page and API tests use. Read models are brought up to date on demand by
`rig.project()` (the same rebuild `pipeline projections rebuild` runs), so tests need no workers.

    def test_something(web: WebRig) -> None:
        job = web.store.app...            # commands through the real application
        web.project()                     # read models now show it
        page = web.client("alice").get(f"/jobs/{job}")
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient

from infra.eventstore import EventStore
from infra.settings import Settings, load_settings
from tests.conftest import NatsHandle
from web import users

PASSWORD = "correct horse battery"
PEOPLE = {"alice": "member", "carol": "member", "bob": "manager", "root": "admin"}


@dataclass
class WebRig:
    database_url: str
    nats_url: str
    settings: Settings
    store: EventStore
    _stack: ExitStack
    _clients: dict[str, TestClient] = field(default_factory=dict)

    def client(self, user: str | None = None) -> TestClient:
        """A browser-like client signed in as `user` (one per user, cookies kept); None: signed out."""
        key = user or ""
        if key not in self._clients:
            from web.app import create_app

            client = self._stack.enter_context(
                TestClient(create_app(self.settings, self.database_url, self.nats_url), raise_server_exceptions=True))
            if user:
                answer = sign_in(client, user, follow_redirects=False)
                assert answer.status_code == 303, answer.text
            self._clients[key] = client
        return self._clients[key]

    def csrf(self, user: str) -> str:
        """The session's CSRF token, as a page carries it (meta tag)."""
        page = self.client(user).get("/files", headers={"Accept": "text/html"})
        found = re.search(r'<meta name="csrf-token" content="([^"]*)"', page.text)
        assert found and found.group(1), "no CSRF token on the page"
        return found.group(1)

    def form(self, user: str, path: str, data: dict, **kwargs) -> object:
        """POSTs a form as `user` with the session's CSRF token, not following the redirect."""
        return self.client(user).post(path, data={**data, "_csrf": self.csrf(user)}, follow_redirects=False,
                                      **kwargs)

    def token(self, user: str) -> dict[str, str]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return {"Authorization": f"Bearer {users.create_token(conn, user, 'test')}"}

    def store_adapter(self, job_id: Any, body: bytes) -> Any:
        """Puts `body` in the job's object-store bucket as its first attempt's adapter; its reference."""
        import asyncio
        import io

        from infra import bus
        from infra.objectstore import ObjectStore

        async def put() -> Any:
            nc = await bus.connect(self.nats_url, "test-adapter")
            try:
                bucket = await bus.ensure_job_bucket(nc.jetstream(), str(job_id))
                return await ObjectStore(nc.jetstream()).put_fileobj(bucket, f"{job_id}/adapter-attempt-1.tar",
                                                                     io.BytesIO(body))
            finally:
                await nc.close()

        return asyncio.run(put())

    def project(self, *names: str) -> None:
        """Rebuilds the read models (all event-store ones by default) from the event store."""
        from projections.runner import PROJECTIONS, rebuild_named

        applications = {app.name: app for app in self.store.applications()}
        with psycopg.connect(self.database_url) as conn:
            for name in names or tuple(PROJECTIONS):
                rebuild_named(conn, name, applications, self.nats_url)


def sign_in(client: Any, user: str, password: str = PASSWORD, next: str = "/", **options: Any) -> Any:  # noqa: A002
    """Signs in as a browser does: the sign-in page first (it leaves the form's token in a cookie and
    in the form), then the form. `client`: a TestClient or an httpx.Client (cookies kept)."""
    return client.post("/login", data={"username": user, "password": password, "next": next,
                                       "_login": login_token(client)}, **options)


def login_token(client: Any) -> str:
    page = client.get("/login")
    found = re.search(r'name="_login" value="([^"]+)"', page.text)
    assert found, "no sign-in form token on /login"
    return found.group(1)


@pytest.fixture
def web(migrated: str, nats_server: NatsHandle) -> Iterator[WebRig]:
    from infra import bus
    from tests.live_stack import declare

    declare(nats_server.url)
    assert bus  # streams declared as the running stack declares them
    with psycopg.connect(migrated, autocommit=True) as conn:
        for name, role in PEOPLE.items():
            users.add_user(conn, name, role, PASSWORD, email=f"{name}@example.com", display_name=name.title())
    settings = load_settings(database_url=migrated, nats_url=nats_server.url, approval_secret="s" * 32,
                             seed_sample=False, webhook_key="the test app's webhook sealing key (never a file)")
    store = EventStore.open(migrated, policy=settings.budget_policy())
    with ExitStack() as stack:
        rig = WebRig(migrated, nats_server.url, settings, store, stack)
        try:
            yield rig
        finally:
            stack.close()
            store.close()
