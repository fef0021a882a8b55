"""Web instances are interchangeable (issue #21): a session signed in on one is signed in on another,
and a live stream that drops resumes on another instance from the browser's Last-Event-ID."""

from __future__ import annotations

import json

import psycopg
from litestar.testing import TestClient

from domain.job_status import CancelReason
from tests.helpers import wait_for
from tests.integration.test_web_job_detail import add_job, ago, sse_events, telemetry, training
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture


def second_instance(web: WebRig) -> TestClient:
    from web.app import create_app

    runtime = web.settings.runtime.model_copy(update={"instance": "web-b"})  # another process's name
    settings = web.settings.model_copy(update={"runtime": runtime})
    return web._stack.enter_context(TestClient(create_app(settings, web.database_url, web.nats_url)))


def test_a_session_and_its_live_stream_work_on_any_web_instance(web: WebRig) -> None:
    first = web.client("alice")
    other = second_instance(web)
    other.cookies.update(first.cookies)  # the load balancer sends the browser's next request elsewhere
    page = other.get("/jobs", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 200 and "alice" in page.text.lower()
    assert other.get("/api/jobs").status_code == 200
    job = add_job(web)
    training(web, job)
    telemetry(web, job, range(1, 31), eval_every=10)
    web.store.app.cancel_job(job, CancelReason.TESTING, "", "alice", ago(0))
    web.project()
    version = first.get(f"/jobs/{job}/cards").json()["version"]
    answer = other.get(f"/jobs/{job}/events-stream", params={"after": 0, "eval_after": 0, "version": version},
                       headers={"Accept": "text/event-stream", "Last-Event-ID": "25:20"})
    events = list(sse_events(iter(answer.text.splitlines())))
    assert [e["event"] for e in events] == ["points", "end"]
    assert json.loads(events[0]["data"])["steps"] == [26, 27, 28, 29, 30]

    def instances() -> int:
        with psycopg.connect(web.database_url) as conn:
            return conn.execute("SELECT count(*) FROM worker_instances WHERE kind = 'web'").fetchone()[0]

    assert wait_for(lambda: instances() == 2, timeout=10)  # each says it is alive, for /health
    health = other.get("/health").json()
    assert len([i for i in health["instances"] if i["kind"] == "web"]) == 2
