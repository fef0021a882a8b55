"""The notification area (issue #23, web/notification_area.py) on real PostgreSQL, fed by the real
notifier: the bell's unread count and list per person, "Mark all read", opening one, a job's latest
notification replacing its earlier ones, and page banners only for what needs action now."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from decimal import Decimal
from uuid import UUID

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from psycopg_pool import AsyncConnectionPool

from domain.aggregates.budget import Budget
from domain.budget_month import budget_month
from domain.job_status import CancelReason
from infra.settings import load_settings
from projections.runner import rebuild_all
from tests.integration.test_notifications import (  # noqa: F401 - `rig` is a fixture
    Rig,
    at,
    completed_job,
    rig,
    training_job,
)
from web.pages import notification_list

ALICE = {"X-Pipeline-User": "alice"}
BOB = {"X-Pipeline-User": "bob"}
MONTH = budget_month(datetime.now(timezone.utc), "UTC")


@pytest.fixture
def client(rig: Rig) -> Iterator[TestClient]:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with AsyncConnectionPool(rig.url, min_size=1, max_size=2) as pool:
            app.state.update(pool=pool, settings=load_settings(trust_identity_headers=True))
            yield

    with TestClient(Litestar(route_handlers=notification_list.routes, lifespan=[lifespan])) as c:
        yield c


def project(rig: Rig) -> None:
    with psycopg.connect(rig.url) as conn, conn.transaction():
        rebuild_all(conn, {"pipeline": rig.app})


def budget_exceeded(rig: Rig) -> None:
    """This month's budget spent past its limit: the notifier posts the team's 100 % notification."""
    budget = Budget.open("default", MONTH, Decimal(500), datetime.now(timezone.utc))
    budget.record_spend(UUID(int=7), Decimal(505), datetime.now(timezone.utc))
    rig.app.save(budget)


def inbox(client: TestClient, who: dict[str, str]) -> dict:
    answer = client.get("/api/notifications", headers=who)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_bell_counts_each_persons_unread_notifications_and_mark_all_read_clears_only_theirs(
    rig: Rig, client: TestClient,
) -> None:
    job_id = completed_job(rig.app)
    budget_exceeded(rig)
    rig.feed()

    mine = inbox(client, ALICE)
    assert mine["unread"] == 2  # her job's completion and the team's budget alert
    assert [(n["kind"], n["unread"]) for n in mine["items"]] == [("budget_100", True), ("completed", True)]
    assert mine["items"][1]["link"] == f"/jobs/{job_id}" and mine["items"][1]["ago"] == "just now"
    assert inbox(client, BOB)["unread"] == 1  # the team's alert only

    marked = client.post("/api/notifications/read-all", headers=ALICE)
    assert marked.json() == {"marked": 2}
    after = inbox(client, ALICE)
    assert after["unread"] == 0 and [n["unread"] for n in after["items"]] == [False, False]  # read, still listed
    assert inbox(client, BOB)["unread"] == 1  # bob's copy of the team's alert is his to read
    back = client.post("/notifications/read-all", headers=BOB, data={"next": "/jobs?page=2"}, follow_redirects=False)
    assert (back.status_code, back.headers["location"]) == (303, "/jobs?page=2")
    assert inbox(client, BOB)["unread"] == 0
    assert client.post("/api/notifications/read-all", headers=BOB).json() == {"marked": 0}


def test_opening_a_notification_reads_it_and_goes_to_its_page_and_another_persons_is_not_found(
    rig: Rig, client: TestClient,
) -> None:
    job_id = completed_job(rig.app)
    rig.feed()
    [item] = inbox(client, ALICE)["items"]
    assert client.get(f"/notifications/{item['key']}/open", headers=BOB, follow_redirects=False).status_code == 404
    opened = client.get(f"/notifications/{item['key']}/open", headers=ALICE, follow_redirects=False)
    assert (opened.status_code, opened.headers["location"]) == (303, f"/jobs/{job_id}")
    assert inbox(client, ALICE)["unread"] == 0


def test_a_jobs_latest_notification_replaces_its_earlier_ones_in_the_list(rig: Rig, client: TestClient) -> None:
    """An interruption, then the job cancelled: the list keeps the cancellation only, so no stale
    "interrupted" (or "queued") line outlives the job's end."""
    job_id = training_job(rig.app)
    rig.app.update_job(job_id, lambda j: j.interrupt("spot instance reclaimed", 500, 1, at(70)))
    rig.feed()
    assert [n["kind"] for n in inbox(client, ALICE)["items"]] == ["interrupted"]
    rig.app.cancel_job(job_id, CancelReason.TESTING, "", "alice", at(80))
    rig.feed()
    shown = inbox(client, ALICE)
    assert [n["kind"] for n in shown["items"]] == ["cancelled"] and shown["unread"] == 1


def test_page_banners_are_kept_for_what_needs_action_now(rig: Rig, client: TestClient) -> None:
    """The budget at 100 % while it still is; a completed job's adapter while the quality gate blocks
    it; nothing for a plain completion (that is the bell's)."""
    job_id = completed_job(rig.app)
    budget_exceeded(rig)
    rig.feed()
    project(rig)
    banners = inbox(client, ALICE)["banners"]
    assert [(b["level"], b["link"], b["action"]) for b in banners] == [
        ("error", f"/budget?month={MONTH}", "Review the budget")]
    assert banners[0]["message"].startswith(f"The {MONTH} training budget is used up")

    with psycopg.connect(rig.url) as conn:  # the read model as an evaluation that blocks delivery leaves it
        conn.execute("UPDATE jobs SET quality_outcome = 'block' WHERE id = %s", (job_id,))
    blocked = [b for b in inbox(client, ALICE)["banners"] if b["link"].startswith("/jobs/")]
    assert [(b["link"], b["action"]) for b in blocked] == [(f"/jobs/{job_id}?tab=quality", "Review Quality")]
    assert "did not pass the quality gate" in blocked[0]["message"]
    assert not [b for b in inbox(client, BOB)["banners"] if b["link"].startswith("/jobs/")]  # alice's job

    with psycopg.connect(rig.url) as conn:  # a manager released it, and the limit was raised
        conn.execute("UPDATE jobs SET quality_overridden = true WHERE id = %s", (job_id,))
    rig.app.change_limit(MONTH, Decimal(800), "bob", "manager", "x" * 60, datetime.now(timezone.utc))
    project(rig)
    assert inbox(client, ALICE)["banners"] == []
    assert inbox(client, ALICE)["unread"] == 2  # the notifications themselves stay in the bell
