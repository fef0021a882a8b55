"""In-app banners on real PostgreSQL: written by the notifier from job and budget events, read by
`banners_for` and the JSON API, dismissed by their user (or, for a team's banner, by each person for
themself). Pages show them through the notification area: test_notification_area.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from uuid import UUID

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from psycopg_pool import AsyncConnectionPool

from domain.aggregates.budget import Budget
from infra.settings import load_settings
from tests.factories import T0
from tests.integration.test_notifications import (  # noqa: F401 - `rig` is a fixture
    Rig,
    completed_job,
    rig,
    training_job,
)
from web import banners

ALICE = {"X-Pipeline-User": "alice"}
BOB = {"X-Pipeline-User": "bob"}


@pytest.fixture
def client(rig: Rig) -> Iterator[TestClient]:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with AsyncConnectionPool(rig.url, min_size=1, max_size=2) as pool:
            app.state.update(pool=pool, settings=load_settings(trust_identity_headers=True))
            yield

    with TestClient(Litestar(route_handlers=[banners.router], lifespan=[lifespan])) as c:
        yield c


def budget_exceeded(rig: Rig) -> None:
    budget = Budget.open("default", "2026-12", Decimal(500), T0)
    budget.record_spend(UUID(int=7), Decimal(505), T0)
    rig.app.save(budget)


def test_a_jobs_banner_is_its_creators_and_a_budget_banner_the_whole_teams(rig: Rig, client: TestClient) -> None:
    job_id = completed_job(rig.app)
    budget_exceeded(rig)
    assert rig.feed() == [None] * len(rig.bodies)

    mine = client.get("/api/banners", headers=ALICE).json()
    assert [(b["kind"], b["level"], b["link"]) for b in mine] == [
        ("budget_100", "error", "/budget?month=2026-12"), ("completed", "info", f"/jobs/{job_id}")]
    assert mine[1]["message"] == "✓ Training completed: Advisor tone v1 (13.2hrs, $32.37, 31% perplexity improvement)"
    assert set(mine[0]) == {"key", "kind", "level", "message", "link", "created_at"}
    assert [b["kind"] for b in client.get("/api/banners", headers=BOB).json()] == ["budget_100"]
    assert len(client.get("/api/banners", headers=ALICE, params={"limit": 1}).json()) == 1


def test_banners_are_dismissed_only_by_those_who_see_them(rig: Rig, client: TestClient) -> None:
    completed_job(rig.app)
    budget_exceeded(rig)
    rig.feed()
    team, job = (b["key"] for b in client.get("/api/banners", headers=ALICE).json())

    assert client.post(f"/api/banners/{job}/dismiss", headers=BOB).status_code == 404  # alice's
    assert client.post("/api/banners/nothing:1/dismiss", headers=ALICE).status_code == 404
    assert client.post(f"/api/banners/{job}/dismiss", headers=ALICE).json() == {"key": job, "dismissed": True}
    assert client.post(f"/api/banners/{job}/dismiss", headers=ALICE).status_code == 200  # twice is fine
    # The team's banner goes away for bob only; alice still sees it.
    back = client.post(f"/banners/{team}/dismiss", headers=BOB, data={"next": "/jobs?page=2"},
                       follow_redirects=False)
    assert (back.status_code, back.headers["location"]) == (303, "/jobs?page=2")
    assert client.get("/api/banners", headers=BOB).json() == []
    assert [b["key"] for b in client.get("/api/banners", headers=ALICE).json()] == [team]
    away = client.post(f"/banners/{team}/dismiss", headers=ALICE, data={"next": "https://evil.example/"},
                       follow_redirects=False)
    assert (away.status_code, away.headers["location"]) == (303, "/")
    with psycopg.connect(rig.url) as conn:
        assert conn.execute("SELECT dismissed_by FROM notification_banners WHERE event_key = %s",
                            (job,)).fetchone() == ("alice",)


def test_each_page_reads_banners_with_the_open_banner_indexes(rig: Rig) -> None:
    training_job(rig.app)
    with psycopg.connect(rig.url) as conn:
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in conn.execute(
            "EXPLAIN " + banners.OPEN_BANNERS, {"user": "alice", "team": "default", "limit": 5, "days": 30}))
    assert "notification_banners_user_open_idx" in plan and "notification_banners_team_open_idx" in plan


def test_the_budget_reset_banner_shows_on_a_months_first_day_once_to_the_whole_team(rig: Rig,
                                                                                    client: TestClient) -> None:
    """FR1.2.2 "✓ Budget Reset": posted once, on the first day in the team's time zone, with the new
    month's limit (set ahead here) and last month's spend to the cent; gone when the day ends."""
    from datetime import datetime, timedelta, timezone

    from domain.budget_month import previous_month
    from handlers.notifications.budget_reset import ResetBanners
    from pipeline.workers.notifications import READ_MODELS, post_reset
    from projections.runner import rebuild_all

    now = datetime.now(timezone.utc)
    first = (now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) + timedelta(days=32)).replace(day=1)
    month = f"{first.year:04d}-{first.month:02d}"
    before = Budget.open("default", previous_month(month), Decimal(500), now)
    before.reserve(UUID(int=9), Decimal("490"), "alice", "member", now)
    before.record_spend(UUID(int=9), Decimal("487.3249"), now)
    before.release(UUID(int=9), now)
    ahead = Budget.open("default", month, Decimal(750), now)
    rig.app.save(before, ahead)
    with psycopg.connect(rig.url) as conn, conn.transaction():
        rebuild_all(conn, {"pipeline": rig.app})
    resets = ResetBanners("default", "UTC", Decimal(500), READ_MODELS)
    expected = "✓ Budget Reset: Your monthly training budget has been reset to $750.00. Last month's spend: $487.32."
    with psycopg.connect(rig.url) as conn:
        assert resets.post_due(conn, first - timedelta(seconds=1)) is None  # the last second of the month before
    post_reset(rig.pool, resets, first)  # what the worker's clock calls every minute
    with psycopg.connect(rig.url) as conn:
        assert conn.execute("SELECT message FROM notification_banners").fetchall() == [(expected,)]
        assert resets.post_due(conn, first + timedelta(hours=23)) is None  # once a month
        assert resets.post_due(conn, first + timedelta(days=1)) is None  # the second day: not due
        conn.commit()
    shown = client.get("/api/banners", headers=ALICE).json()
    assert [(b["kind"], b["level"], b["message"], b["link"]) for b in shown] == [
        ("budget_reset", "info", expected, "/budget")]
    assert [b["message"] for b in client.get("/api/banners", headers=BOB).json()] == [expected]
    with psycopg.connect(rig.url) as conn:  # the day is over
        conn.execute("UPDATE notification_banners SET expires_at = now() - interval '1 second'")
    assert client.get("/api/banners", headers=ALICE).json() == []
    # Another team's zone: the first day starts at its own midnight; no budget: the default limit.
    east = ResetBanners("east", "Asia/Tokyo", Decimal(500), READ_MODELS)
    with psycopg.connect(rig.url) as conn:
        tokyo_first = first - timedelta(hours=9)
        assert east.post_due(conn, tokyo_first - timedelta(seconds=1)) is None
        assert east.post_due(conn, tokyo_first) == (
            "✓ Budget Reset: Your monthly training budget has been reset to $500.00. Last month's spend: $0.00.")
        ends = conn.execute("SELECT expires_at FROM notification_banners WHERE team = 'east'").fetchone()[0]
    assert ends == tokyo_first + timedelta(days=1)
    # Jobs of last month still running there: its spend is not final yet, and the banner says so.
    busy = Budget.open("busy", previous_month(month), Decimal(500), now)
    busy.reserve(UUID(int=10), Decimal("100"), "alice", "member", now)
    busy.record_spend(UUID(int=10), Decimal("12.5"), now)
    rig.app.save(busy)
    with psycopg.connect(rig.url) as conn, conn.transaction():
        rebuild_all(conn, {"pipeline": rig.app})
    with psycopg.connect(rig.url) as conn:
        assert ResetBanners("busy", "UTC", Decimal(500), READ_MODELS).post_due(conn, first) == (
            "✓ Budget Reset: Your monthly training budget has been reset to $500.00. Last month's spend so far:"
            " $12.50 (jobs started then are still running).")
