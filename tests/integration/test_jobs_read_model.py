"""The jobs read model (FR2.3.1, FR2.1.1, FR2.1.2): what the list filters, sorts and searches on,
the stage timeline and interruptions, batches applied live equal to one by one and to a replay,
`search_jobs`, `job_detail`, and GET /api/jobs and /api/jobs/{id}/detail."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import psycopg
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from psycopg_pool import AsyncConnectionPool

from domain.job_status import JobStatus
from infra.eventstore import EventStore
from projections.base import process, process_batch
from projections.job_detail import job_detail
from projections.job_search import search_jobs
from projections.jobs import JobsProjection
from projections.replay import replay
from tests.factories import CHECKPOINT, job_fields
from tests.finance_month import POLICY, SPOT, Month, add_job, busy_month, run_steps, utc
from web import job_views
from web.app import api_list_jobs
from web.stage_timeline import stage_view

PROJECTION = JobsProjection()
LATER = utc(11, 28, 12, 0)


@dataclass
class Projected:
    store: EventStore
    month: Month
    running: UUID
    conn: psycopg.Connection

    def job(self, job_id: UUID):
        return self.store.app.get_job(job_id)


def running_job(app) -> UUID:
    """Spot, preempted at step 850 after a checkpoint at 800, resumed on a second pod and still
    training at step 1,200 of 2,000."""
    job = add_job(app, "Resumed advisor run", "erin", utc(11, 27, 8, 0), "spot", SPOT, Decimal(40), "balanced",
                  "Acme Financial", "Q2 Advisors")
    t = utc(11, 27, 8, 1)
    run_steps(app, job, [
        (t, lambda j: j.start_provisioning("spot", t)),
        (t, lambda j: j.pod_started("pod-r1", 1, SPOT, t + timedelta(minutes=1))),
        (t, lambda j: j.change_stage(JobStatus.PREPROCESSING, 1, t + timedelta(minutes=2))),
        (t, lambda j: j.change_stage(JobStatus.DOWNLOADING_MODEL, 1, t + timedelta(minutes=4))),
        (t, lambda j: j.change_stage(JobStatus.MODEL_LOADING, 1, t + timedelta(minutes=11))),
        (t, lambda j: j.change_stage(JobStatus.TRAINING, 1, t + timedelta(minutes=14))),
        (t, lambda j: j.record_progress(400, 2000, 0.6, 0.61, 1, t + timedelta(minutes=60))),
        (t, lambda j: j.record_checkpoint(800, CHECKPOINT, 1, t + timedelta(minutes=100))),
        (t, lambda j: j.record_progress(850, 2000, 1.27, 0.48, 1, t + timedelta(minutes=105))),
        (t, lambda j: j.complete_epoch(1, 0.52, 1, t + timedelta(minutes=106))),
        (t, lambda j: j.interrupt("spot instance preempted", 850, 1, t + timedelta(minutes=110))),
        (t, lambda j: j.pod_stopped("pod-r1", t + timedelta(minutes=110, seconds=5))),
        (t, lambda j: j.begin_recovery(t + timedelta(minutes=111))),
        (t, lambda j: j.start_provisioning("spot", t + timedelta(minutes=111))),
        (t, lambda j: j.pod_started("pod-r2", 2, Decimal("2.61"), t + timedelta(minutes=115))),
        (t, lambda j: j.change_stage(JobStatus.TRAINING, 2, t + timedelta(minutes=120))),
        (t, lambda j: j.record_progress(1200, 2000, 1.8, 0.41, 2, t + timedelta(minutes=160))),
    ])
    return job


def decorate(app, month: Month) -> None:
    """Descriptions, tags and notes for the search."""
    app.update_job(month.completed_spot, lambda j: j.update_metadata(
        description="Warm tone for wealth advisors", tags=["tone", "production"], client="Acme Financial",
        project="Q1 Advisors", at=LATER))
    app.update_job(month.recovered_spot, lambda j: j.update_metadata(
        description="Same data, conservative preset", tags=["tone", "experiment"], client="Acme Financial",
        project="Q1 Advisors", at=LATER))
    app.update_job(month.failed_spot, lambda j: j.add_note("OOM at batch size 4: retry with batch size 2", "carol",
                                                           LATER))
    app.update_job(month.failed_spot, lambda j: j.add_note("Checked the tokenizer lengths", "carol", LATER))


@pytest.fixture
def projected(migrated: str) -> Iterator[Projected]:
    store = EventStore.open(migrated, policy=POLICY)
    month = busy_month(store.app)
    running = running_job(store.app)
    decorate(store.app, month)
    with psycopg.connect(migrated) as conn:
        with conn.transaction():
            replay(conn, [PROJECTION], {"pipeline": store.app})
        yield Projected(store, month, running, conn)
    store.close()


def row(conn: psycopg.Connection, job_id: UUID) -> dict:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute("SELECT * FROM jobs WHERE id = %s", (job_id,)).fetchone()


def test_the_spend_is_the_domain_ledgers_total_exactly(projected: Projected) -> None:
    for job_id in (*projected.month.november, projected.month.october, projected.running):
        job, found = projected.job(job_id), row(projected.conn, job_id)
        assert found["cost"] == job.cost(found["cost_as_of"]).total_cost, job.name
        assert found["running_rate"] == sum((p.hourly_rate for p in job.pods.values() if p.stopped_at is None),
                                            Decimal(0))
        assert found["started_at"] == min((p.started_at for p in job.pods.values()), default=None)
    # Still running: the detail and the list add the running pod's time since the last pod event.
    now = utc(11, 27, 11, 0)
    spent = projected.job(projected.running).cost(now).total_cost
    detail = job_detail(projected.conn, projected.running, now)
    assert detail["cost"]["current_spend"] == spent.quantize(Decimal("0.01"))
    listed = search_jobs(projected.conn, client="Acme Financial", project="Q2 Advisors", now=now).jobs
    assert [j["cost_so_far"] for j in listed] == [spent.quantize(Decimal("0.01"))]


def test_the_row_carries_metadata_progress_losses_interruptions_and_links(projected: Projected) -> None:
    running = row(projected.conn, projected.running)
    assert (running["status"], running["attempt"], running["step"], running["total_steps"]) == (
        "training", 2, 1200, 2000)
    assert (running["progress_percent"], running["loss"], running["validation_loss"]) == (Decimal("60.0"), 0.41, 0.52)
    assert (running["interruptions"], running["checkpoint_step"]) == (1, 800)
    assert running["downtime_seconds"] == projected.job(projected.running).downtime_seconds == Decimal(600)
    assert running["ended_at"] is None and running["gpu_type"] == "H100_PCIE_80GB"
    completed = row(projected.conn, projected.month.completed_spot)
    assert (completed["final_loss"], completed["progress_percent"], completed["tags"]) == (0.312, 100,
                                                                                           ["tone", "production"])
    failed = row(projected.conn, projected.month.failed_spot)
    assert (failed["failure_type"], failed["failure_message"]) == ("oom", "CUDA out of memory")
    assert [n["text"] for n in failed["notes"]] == ["OOM at batch size 4: retry with batch size 2",
                                                    "Checked the tokenizer lengths"]
    assert failed["ended_at"] == utc(11, 12, 9, 15, 33)


def test_the_stage_timeline_and_interruptions_of_a_resumed_job(projected: Projected) -> None:
    t = utc(11, 27, 8, 1)
    detail = job_detail(projected.conn, projected.running, t + timedelta(minutes=170))
    stages = [(s["attempt"], s["stage"], s["outcome"], s["actual_seconds"], s["estimated_seconds"])
              for s in detail["stages"]]
    hours = Decimal("13.5") * 3600  # the factories' estimated duration
    assert stages == [
        (1, "provisioning", "completed", 120, 300),
        (1, "preprocessing", "completed", 120, hours * Decimal("0.02")),
        (1, "downloading_model", "completed", 420, hours * Decimal("0.05")),  # model loading's 8 %, split
        (1, "model_loading", "completed", 180, hours * Decimal("0.03")),
        (1, "training", "interrupted", 96 * 60, hours * Decimal("0.80")),
        (2, "provisioning", "completed", 9 * 60, 300),
        (2, "training", None, 50 * 60, hours * Decimal("0.80")),  # running: so far
    ]
    timeline = {row["label"]: (row["status"], row["actual"], row["estimated"]) for row in stage_view(detail)}
    assert timeline["Model Download"] == ("complete", "0h 7m", "0h 40m")  # the download's own time
    assert timeline["Model Loading"] == ("complete", "0h 3m", "0h 24m")
    [interruption] = detail["interruptions"]
    assert (interruption["step"], interruption["reason"], interruption["checkpoint_step"]) == (
        850, "spot instance preempted", 800)
    assert (interruption["at"], interruption["resumed_at"], interruption["downtime_seconds"]) == (
        t + timedelta(minutes=110), t + timedelta(minutes=120), Decimal(600))
    progress = detail["progress"]
    assert (progress["percent"], progress["elapsed_seconds"]) == (Decimal("60.0"), Decimal(169 * 60))  # from pod-r1
    assert progress["remaining_seconds"] == Decimal(169 * 60) / 1200 * 800


def test_the_cost_tracker_projects_the_final_cost_from_the_progress(projected: Projected) -> None:
    now = utc(11, 27, 11, 0)
    cost = job_detail(projected.conn, projected.running, now)["cost"]
    spent = projected.job(projected.running).cost(now).total_cost
    assert cost["current_spend"] == spent.quantize(Decimal("0.01"))
    assert cost["percent_of_estimate"] == (spent / 40 * 100).quantize(Decimal("0.1"))
    assert cost["projected_final_cost"] == (spent / Decimal("0.6")).quantize(Decimal("0.01"))
    assert (cost["estimated_cost_max"], cost["hourly_rate"], cost["gpu_tier"]) == (Decimal(40), SPOT, "spot")
    ended = job_detail(projected.conn, projected.month.completed_spot, now)["cost"]
    assert ended["projected_final_cost"] == ended["current_spend"]


def test_retries_and_resumes_are_linked_to_the_job_they_came_from(projected: Projected) -> None:
    app, failed = projected.store.app, projected.month.failed_spot
    retry = app.create_job(**job_fields(name="Untagged experiment (Retry #1)", retry_of=failed, retry_number=1,
                                        at=LATER))
    resumed = app.create_job(**job_fields(name="Untagged experiment (resumed)", resumed_from=failed,
                                          at=LATER + timedelta(minutes=1)))
    with projected.conn.transaction():
        for n in app.recorder.select_notifications(1, 10_000, topics=PROJECTION.topics):
            process(projected.conn, PROJECTION, "pipeline", n.id, app.mapper.to_domain_event(n))
    links = job_detail(projected.conn, failed)["retries"]
    assert [(link["id"], link["relation"], link["retry_number"]) for link in links] == [
        (retry, "retry", 1), (resumed, "resume", 0)]
    assert job_detail(projected.conn, retry)["job"]["retry_of"] == failed
    assert job_detail(projected.conn, UUID(int=0)) is None


def names(page) -> list[str]:
    return [job["name"] for job in page.jobs]


def test_filters_combine_and_the_total_counts_every_match(projected: Projected) -> None:
    conn = projected.conn
    assert names(search_jobs(conn, status="completed", sort="created_at", descending=False)) == [
        "Acme advisor v0", "Acme advisor v1", "Acme advisor v2", "Beta chatbot v1"]
    assert names(search_jobs(conn, status="active")) == ["Resumed advisor run"]
    assert set(names(search_jobs(conn, status=["failed", "cancelled"]))) == {
        "Untagged experiment", "Beta chatbot aggressive", "Beta chatbot demo"}
    assert names(search_jobs(conn, gpu_tier="on_demand", created_by="bob", sort="name", descending=False)) == [
        "Beta chatbot aggressive", "Beta chatbot v1"]
    assert search_jobs(conn, preset="balanced").total == 6
    assert search_jobs(conn, client="Acme Financial", project="Q1 Advisors").total == 3
    assert names(search_jobs(conn, tags=["tone"], sort="name", descending=False)) == ["Acme advisor v1",
                                                                                      "Acme advisor v2"]
    assert names(search_jobs(conn, tags=["tone", "production"])) == ["Acme advisor v1"]
    assert names(search_jobs(conn, created_from=utc(11, 10, 0, 0), created_to=utc(11, 14, 10, 0),
                             descending=False)) == ["Beta chatbot aggressive", "Untagged experiment"]
    ledger = {job.name: job.cost(LATER).total_cost for job in map(projected.job, (j["id"] for j in
                                                                                  search_jobs(conn).jobs))}
    assert set(names(search_jobs(conn, cost_from=Decimal(10), cost_to=Decimal(20), now=LATER))) == {
        name for name, cost in ledger.items() if 10 <= cost < 20} != set()
    page = search_jobs(conn, per_page=3, page=3, sort="name", descending=False)
    assert (page.total, page.pages, names(page)) == (9, 3, ["Not yet", "Resumed advisor run", "Untagged experiment"])
    assert search_jobs(conn, per_page=3, page=4).jobs == []


def test_the_text_search_reaches_names_descriptions_tags_and_notes_by_word_prefix(projected: Projected) -> None:
    conn = projected.conn
    assert names(search_jobs(conn, text="chatbot V1")) == ["Beta chatbot v1"]
    assert names(search_jobs(conn, text="wealth")) == ["Acme advisor v1"]  # the description
    assert names(search_jobs(conn, text="experim", sort="name", descending=False)) == [
        "Acme advisor v2", "Untagged experiment"]  # a tag; the name
    assert names(search_jobs(conn, text="tokenizer")) == ["Untagged experiment"]  # the second note
    ranked = names(search_jobs(conn, text="tone", sort="relevance"))
    assert set(ranked) == {"Acme advisor v1", "Acme advisor v2"} and ranked[0] == "Acme advisor v1"
    assert search_jobs(conn, text="nothing-like-this").total == 0
    assert search_jobs(conn, text="%'&|!:*()").total == search_jobs(conn).total  # no words: no text filter


def test_sorts_put_missing_values_last_and_refuse_unknown_keys(projected: Projected) -> None:
    conn = projected.conn
    by_cost = search_jobs(conn, sort="cost", now=LATER).jobs
    costs = [j["cost_so_far"] for j in by_cost]
    assert costs == sorted(costs, reverse=True) and by_cost[-1]["cost_so_far"] == 0
    by_duration = names(search_jobs(conn, sort="duration", descending=False, now=LATER))
    assert set(by_duration[-2:]) == {"Beta chatbot demo", "Not yet"}  # never started
    assert names(search_jobs(conn, sort="started_at"))[0] == "Resumed advisor run"
    for bad in ({"sort": "id; DROP TABLE jobs"}, {"status": "asleep"}, {"per_page": 500}, {"page": 0},
                {"sort": "relevance"}):
        with pytest.raises(ValueError):
            search_jobs(conn, **bad)


def test_batches_of_any_size_give_the_rows_one_by_one_application_gives(migrated: str) -> None:
    store = EventStore.open(migrated, policy=POLICY)
    try:
        busy_month(store.app)
        running_job(store.app)
        app = store.app
        items = [(n.id, app.mapper.to_domain_event(n))
                 for n in app.recorder.select_notifications(1, 10_000, topics=PROJECTION.topics)]
        with psycopg.connect(migrated) as conn:
            for notification_id, event in items:
                process(conn, PROJECTION, "pipeline", notification_id, event)
            one_by_one = tables(conn)
            rng = random.Random(11)
            for attempt in range(3):
                clear(conn)
                rest = list(items)
                while rest:  # random sizes; each batch ends with redelivered copies of an earlier event
                    size = rng.randint(1, 40)  # and of its own last one (its aggregate's newest)
                    batch, rest = rest[:size], rest[size:]
                    again = [rng.choice(items[: items.index(batch[-1]) + 1]), batch[-1]]
                    outcomes = process_batch(conn, PROJECTION, "pipeline", [*batch, *again])
                    assert outcomes == [True] * len(batch) + [False, False]
                assert tables(conn) == one_by_one, f"attempt {attempt}"
    finally:
        store.close()


def tables(conn: psycopg.Connection) -> list[str]:
    """Every row of the three tables (repr, so that a NaN loss compares equal)."""
    return [repr(conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall())  # noqa: S608 - fixed names
            for t in PROJECTION.tables]


def clear(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("TRUNCATE jobs, job_stages, job_interruptions")
        conn.execute("DELETE FROM projection_positions")


@pytest.fixture
def client(projected: Projected, migrated: str) -> Iterator[TestClient]:
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with AsyncConnectionPool(migrated, min_size=1, max_size=2) as pool:
            app.state.pool = pool
            yield

    with TestClient(Litestar(route_handlers=[api_list_jobs, job_views.api_job_detail], lifespan=[lifespan])) as c:
        yield c


def test_the_api_lists_filters_and_details_jobs(client: TestClient, projected: Projected) -> None:
    everything = client.get("/api/jobs")
    assert everything.status_code == 200 and everything.headers["x-total-count"] == "9"
    first = everything.json()[0]
    assert first["name"] == "Resumed advisor run"  # newest first, as before
    assert {"id", "name", "status", "training_file", "created_by", "created_at", "updated_at", "preset", "gpu_tier",
            "estimated_cost_min", "estimated_cost_max"} <= set(first)  # the fields it always had
    assert (first["step"], first["interruptions"], first["tags"]) == (1200, 1, [])
    found = client.get("/api/jobs", params={"status": ["completed", "failed"], "tags": "tone", "text": "advisor",
                                            "sort": "name", "descending": "false", "per_page": 1})
    assert found.headers["x-total-count"] == "2" and [j["name"] for j in found.json()] == ["Acme advisor v1"]
    assert client.get("/api/jobs", params={"sort": "password"}).status_code == 400
    detail = client.get(f"/api/jobs/{projected.running}/detail")
    assert detail.status_code == 200
    body = detail.json()
    assert [s["stage"] for s in body["stages"]][-1] == "training" and body["interruptions"][0]["step"] == 850
    assert body["cost"]["estimated_cost_max"] == "40.00" and body["job"]["cost_so_far"]
    assert client.get(f"/api/jobs/{UUID(int=1)}/detail").status_code == 404


def test_a_page_or_a_cost_past_what_the_database_compares_is_refused_by_its_name(client: TestClient) -> None:
    for params, detail in (
        ({"page": str(2**70)}, "page must be between 1 and 1,000,000"),
        ({"page": "0"}, "page must be between 1 and 1,000,000"),
        ({"cost_from": "1e999999"}, "cost_from must be an amount in dollars from 0 to under 1,000,000,000"
                                    " (got 1E+999999)"),
        ({"cost_to": "NaN"}, "cost_to must be an amount in dollars from 0 to under 1,000,000,000 (got NaN)"),
    ):
        answer = client.get("/api/jobs", params=params)
        assert (answer.status_code, answer.json()["detail"]) == (400, detail), params  # not "bigint out of range"
    assert client.get("/api/jobs", params={"page": "1000000", "cost_from": "999999999.99"}).json() == []


def test_created_rows_only_appear_once_their_created_event_is_in(migrated: str) -> None:
    """A batch may start a job and change it in the same transaction."""
    store = EventStore.open(migrated, policy=POLICY)
    try:
        job = add_job(store.app, "Started in one batch", "alice", datetime(2026, 11, 2, tzinfo=timezone.utc), "spot",
                      SPOT, Decimal(20), "balanced")
        store.app.update_job(job, lambda j: j.cancel("testing", "", "alice", LATER))
        items = [(n.id, store.app.mapper.to_domain_event(n))
                 for n in store.app.recorder.select_notifications(1, 100, topics=PROJECTION.topics)]
        with psycopg.connect(migrated) as conn:
            assert process_batch(conn, PROJECTION, "pipeline", items) == [True] * len(items)
            assert (row(conn, job)["status"], row(conn, job)["ended_at"]) == ("cancelled", LATER)
    finally:
        store.close()
