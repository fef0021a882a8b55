"""The job detail page (FR2.1.1, FR2.1.2, FR2.1.3, FR7.1.1, FR7.1.2): real values of seeded jobs, the
loss curve's points and live stream, the cancel / retry / note forms with their messages and rules,
the adapter download (web/pages/job_detail.py, job_forms.py, job_downloads.py, job_stream.py)."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import httpx
import psycopg
import pytest
import uvicorn

from domain.job_status import CancelReason, FailureType, JobStatus
from domain.presets import preset_named
from infra.embedded import free_port
from projections import metrics
from tests.factories import CHECKPOINT, configuration, eventful_job, job_fields
from tests.helpers import wait_for
from tests.web_rig import WebRig, sign_in, web  # noqa: F401 - the fixture

HTML = {"Accept": "text/html"}
NOW = datetime.now(timezone.utc)


@pytest.fixture(autouse=True)
def _now() -> None:
    """Times are minutes before the test starts: the page measures elapsed time and spend to now."""
    global NOW
    NOW = datetime.now(timezone.utc)


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def add_job(web: WebRig, name: str = "Advisor tone v1", cost_max: Decimal = Decimal("38.66"),
            created_by: str = "alice", at: datetime | None = None) -> UUID:
    app = web.store.app
    at = at or ago(180)
    job_id = app.create_job(**job_fields(name=name, created_by=created_by, at=at))
    app.configure_job(job_id, **configuration(hyperparameters=preset_named("balanced").as_config(),
                                              estimated_cost_min=cost_max * Decimal("0.74"),
                                              estimated_cost_max=cost_max, at=at))
    app.start_job(job_id, created_by, "member", at)
    return job_id


def run(web: WebRig, job_id: UUID, *steps) -> None:
    for step in steps:
        web.store.app.update_job(job_id, step)


def training(web: WebRig, job_id: UUID, started: float = 120, step: int = 850, total: int = 2000) -> None:
    """On a spot pod since `started` minutes ago, through the stages, now at `step` of `total` (3 epochs)."""
    run(web, job_id,
        lambda j: j.start_provisioning("spot", ago(started + 2)),
        lambda j: j.pod_started("pod-1", 1, Decimal("2.49"), ago(started)),
        lambda j: j.change_stage(JobStatus.PREPROCESSING, 1, ago(started - 1)),
        lambda j: j.change_stage(JobStatus.MODEL_LOADING, 1, ago(started - 4)),
        lambda j: j.change_stage(JobStatus.TRAINING, 1, ago(started - 15)),
        lambda j: j.record_progress(step, total, step / total * 3, 0.342, 1, ago(1)))


def spent(web: WebRig, job_id: UUID, hours: float) -> None:
    """A pod that ran `hours` and stopped (spend fixed at $2.49 × hours), then an OOM failure."""
    start = ago(hours * 60 + 30)
    run(web, job_id,
        lambda j: j.start_provisioning("spot", start),
        lambda j: j.pod_started("pod-1", 1, Decimal("2.49"), start),
        lambda j: j.change_stage(JobStatus.TRAINING, 1, start + timedelta(minutes=5)),
        lambda j: j.record_progress(400, 2000, 0.6, 0.5, 1, start + timedelta(minutes=50)),
        lambda j: j.pod_stopped("pod-1", start + timedelta(hours=hours)),
        lambda j: j.fail(FailureType.OOM, "CUDA out of memory", {"step": 400}, start + timedelta(hours=hours)))


def telemetry(web: WebRig, job_id: UUID, steps: range, attempt: int = 1, eval_every: int = 100,
              start: datetime | None = None) -> None:
    """Metric rows as the live consumer writes them (projections/metrics.py): a step row each,
    an evaluation merged into every `eval_every`-th."""
    start = start or ago(100)
    points = []
    for n in steps:
        at = start + timedelta(seconds=n * 5)
        values = (n / 700, 2.0 / (1 + n / 100), None, None, 2e-4 / (1 + n / 4000), 0.5, 1247.0, 87.0, 68.0)
        points.append(metrics.Point("step", job_id, n, attempt, values, at))
        if n % eval_every == 0:
            loss = 2.1 / (1 + n / 100)
            points.append(metrics.Point("eval", job_id, n, attempt, (n / 700, None, loss, 2.718 ** loss, None, None,
                                                                     None, None, None), at))
    with psycopg.connect(web.database_url) as conn, conn.transaction():
        metrics.write(conn, points)


def page(web: WebRig, user: str, path: str) -> httpx.Response:
    answer = web.client(user).get(path, headers=HTML)
    assert answer.status_code == 200, answer.text
    return answer


def text_of(html: str) -> str:
    """The page's visible text, tags dropped and spaces collapsed (to assert on sentences)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def event_count(web: WebRig) -> int:
    with psycopg.connect(web.database_url) as conn:
        return conn.execute("SELECT count(*) FROM pipeline_events").fetchone()[0]


# --- the page ---------------------------------------------------------------------------------

def test_the_page_shows_progress_stages_metrics_cost_and_interruptions_of_a_training_job(web: WebRig) -> None:
    job = add_job(web)
    training(web, job)
    run(web, job,
        lambda j: j.record_checkpoint(800, CHECKPOINT, 1, ago(20)),
        lambda j: j.interrupt("spot instance reclaimed", 850, 1, ago(12)),
        lambda j: j.pod_stopped("pod-1", ago(12)),
        lambda j: j.begin_recovery(ago(11)),
        lambda j: j.start_provisioning("spot", ago(11)),
        lambda j: j.pod_started("pod-2", 2, Decimal("2.49"), ago(5)),
        lambda j: j.change_stage(JobStatus.TRAINING, 2, ago(3)),
        lambda j: j.record_progress(850, 2000, 1.275, 0.342, 2, ago(1)))
    telemetry(web, job, range(1, 851))
    web.project()

    html = page(web, "alice", f"/jobs/{job}").text
    shown = text_of(html)
    assert "Advisor tone v1" in shown
    assert "42% Complete" in shown and "Step 850 of 2,000" in shown and "Epoch 2 of 3" in shown
    assert "Training epoch 2/3 - Step 850/2,000..." in shown  # the active stage says what it does
    assert re.search(r"Elapsed \d+h \d+m", shown) and re.search(r"\d+h \d+m remaining", shown)
    for stage in ("Preprocessing", "Model Loading", "Training", "Finalization"):
        assert stage in shown
    assert 'class="jd-stage jd-stage-complete"' in html and 'class="jd-stage jd-stage-active"' in html
    # metrics table: latest vs previous, from the metric history
    assert "Training loss 0.211 ↓ from 0.211 (-0.1%)" in shown  # 2 / (1 + step / 100) at steps 850 and 849
    assert "GPU utilization 87%" in shown and "GPU memory 68GB / 80GB (85%)" in shown
    assert "Tokens/second 1,247" in shown and "Steps/hour 720" in shown
    assert "Validation loss 0.233 ↓ from 0.263 (-11.1%)" in shown and "Perplexity 1.26" in shown
    assert "Learning rate 0.000165 (current schedule value)" in shown
    # 80 % of 13.5 h (85 % less the evaluation's 5 %, docs/domain.md); both attempts' time
    assert "Training active Estimated 10h 48m · actual 1h 36m" in shown
    # cost tracker: two pods at $2.49/hr, green well under the $38.66 estimate
    assert "Estimated cost: $28.61–$38.66" in shown and "$2.49/hr (spot)" in shown
    # $2.49/h × (108 + 5) min = $4.69 = 12 % of $38.66; projected $4.69 / 42.5 % = $11.04
    assert "jd-cost jd-cost-green" in html
    assert re.search(r"Current spend \$4\.(69|70|71) 12% of estimate", shown)  # a cent every 14 s while it runs
    assert re.search(r"Projected final cost \$11\.(04|05|06|07) \(within estimate\)", shown)
    assert "At current rate, job will complete in 2.7 hours" in shown
    assert "Spot interruption overhead (included above) $0.33 (1 interruption)" in shown
    assert "On track, continue monitoring" in shown
    # interruptions (FR3.2.1)
    assert "Interrupted 1× (auto-recovered)" in shown
    assert "Interrupted at step 850 (1h 48m), resumed at step 800 (1h 57m) - 9 min downtime" in shown
    # the chart degrades to a note; downloads and the refresh link are plain links
    assert f'href="/api/jobs/{job}/metrics.csv"' in html and f'href="/api/jobs/{job}/metrics.json"' in html
    assert "<noscript>" in html and 'id="jd-refresh" href="/jobs/' in html
    assert "Cancel Job" in shown and "I understand this action cannot be undone" in shown
    assert "Download Adapters" not in shown and "Retry Job" not in shown


def test_a_short_downtime_an_ended_run_and_a_small_learning_rate_read_as_they_are(web: WebRig) -> None:
    job = add_job(web)
    training(web, job, step=400, total=400)
    run(web, job,
        lambda j: j.record_checkpoint(400, CHECKPOINT, 1, ago(20)),
        lambda j: j.interrupt("spot instance reclaimed", 400, 1, ago(12)),
        lambda j: j.pod_stopped("pod-1", ago(12)),
        lambda j: j.begin_recovery(ago(12)),
        lambda j: j.start_provisioning("spot", ago(12)),
        lambda j: j.pod_started("pod-2", 2, Decimal("2.49"), ago(12)),
        lambda j: j.change_stage(JobStatus.TRAINING, 2, ago(12) + timedelta(seconds=12)),
        lambda j: j.complete(CHECKPOINT, {"final_loss": 0.4}, 2, ago(2)))
    telemetry(web, job, range(1, 400))
    with psycopg.connect(web.database_url) as conn, conn.transaction():  # the last step wiggles up 2 %
        at = ago(3)
        metrics.write(conn, [metrics.Point("step", job, 400, 2, (400 / 700, 2.0 / 5 * 1.02, None, None, 2e-05,
                                                                    0.5, 1247.0, 87.0, 68.0), at)])
    web.project()
    shown = text_of(page(web, "alice", f"/jobs/{job}").text)
    assert "resumed at step 400" in shown and "- 12 s downtime" in shown and "0 min downtime" not in shown
    assert "Learning rate 2e-05" in shown and "0.000000" not in shown
    assert "Training loss 0.408 ↓ from 1.980 at step 1 (-79.4%)" in shown  # against its start, not red
    assert "jd-trend worse" not in shown


# --- the loss curve and its live stream -----------------------------------------------------------

def test_the_metrics_endpoint_thins_a_long_history_and_keeps_every_validation_point(web: WebRig) -> None:
    job = add_job(web)
    training(web, job, step=10_000, total=12_000)
    telemetry(web, job, range(1, 10_001))
    web.project()
    alice = web.client("alice")
    points = alice.get(f"/jobs/{job}/metrics-points").json()
    assert len(points["steps"]) == 2100  # every 5th of 10,000 steps (k = ⌈10,000 / 2,000⌉), and the 100 evaluations
    assert points["steps"] == sorted(points["steps"]) and points["steps"][0] == 1 and points["last_step"] == 10_000
    evaluated = [s for s, v in zip(points["steps"], points["eval"], strict=True) if v is not None]
    assert evaluated == list(range(100, 10_001, 100)) and points["last_eval_step"] == 10_000
    assert points["loss"][-1] == pytest.approx(2.0 / 101)
    sparse = add_job(web, name="Logs every 10 steps")  # every k-th step would miss most rows: every k-th row
    telemetry(web, sparse, range(10, 45_001, 10))  # k = 23 steps would keep every 23rd row only
    thinned = alice.get(f"/jobs/{sparse}/metrics-points").json()
    every_third_row = {10 * (i + 1) for i in range(0, 4500, 3)}
    assert thinned["steps"] == sorted(every_third_row | set(range(100, 45_001, 100)))
    assert thinned["last_step"] == 45_000
    diverged = add_job(web, name="Diverged")
    with psycopg.connect(web.database_url) as conn, conn.transaction():
        metrics.write(conn, [metrics.Point("step", diverged, n, 1, (None, loss, *[None] * 7), ago(1))
                             for n, loss in ((1, 2.5), (2, float("nan")), (3, float("inf")))])
    assert alice.get(f"/jobs/{diverged}/metrics-points").json()["loss"] == [2.5, None, None]  # gaps in the curve
    newer = alice.get(f"/jobs/{job}/metrics-points?after=9990").json()
    assert newer["steps"] == list(range(9991, 10_001))
    assert alice.get(f"/jobs/{uuid.uuid4()}/metrics-points").json()["steps"] == []


class Served:
    """The real app under uvicorn on a free port (streams need a real server: the test client
    buffers a whole response), signed in as `user` with httpx."""

    def __init__(self, web: WebRig, user: str) -> None:
        from web.app import create_app

        self.app = create_app(web.settings, web.database_url, web.nats_url)
        port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="error",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, name="job-detail-web", daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started or not self.thread.is_alive(), timeout=30, message="the web app")
        self.base = f"http://127.0.0.1:{port}"
        self.client = httpx.Client(base_url=self.base, timeout=10)
        signed_in = sign_in(self.client, user)
        assert signed_in.status_code == 303, signed_in.text

    def close(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(30)

    def connections_in_use(self) -> int:
        stats = self.app.state.pool.get_stats()
        return stats["pool_size"] - stats["pool_available"]


@pytest.fixture
def served(web: WebRig) -> Iterator[Served]:
    found = Served(web, "alice")
    try:
        yield found
    finally:
        found.close()


def sse_events(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """Server-Sent Events with data from a stream of lines (comments and bare retry fields dropped)."""
    event: dict[str, str] = {}
    for line in lines:
        if not line:
            if "data" in event:
                yield event
            event = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            event[name] = event.get(name, "") + value.removeprefix(" ")


def test_the_stream_pushes_new_points_as_telemetry_is_projected_and_ends_when_the_client_leaves(
    web: WebRig, served: Served, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from web.pages import job_stream

    monkeypatch.setattr(job_stream, "POLL_S", 0.1)
    job = add_job(web)
    training(web, job)
    telemetry(web, job, range(1, 101))
    web.project()
    url = f"/jobs/{job}/events-stream?after=100&eval_after=100&attempt=1"
    with served.client.stream("GET", url, headers={"Accept": "text/event-stream"}) as answer:
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
        assert answer.headers["cache-control"] == "no-cache"
        events = sse_events(answer.iter_lines())
        cards = next(events)  # the page's version was not sent: the cards come first
        assert cards["event"] == "cards" and "42% Complete" in json.loads(cards["data"])["html"]["job-header"]
        # idle: no new rows; the stream holds no connection between polls
        assert wait_for(lambda: served.connections_in_use() == 0, timeout=5, interval=0.01) is not None
        telemetry(web, job, range(101, 121), eval_every=110)
        update = next(events)
        assert update["event"] == "points" and update["id"] == "120:110"
        points = json.loads(update["data"])
        assert points["steps"] == list(range(101, 121)) and points["eval"][9] == pytest.approx(2.1 / 2.1)
        # an evaluation merged later into a step already sent is sent again, alone
        with psycopg.connect(web.database_url) as conn, conn.transaction():
            metrics.write(conn, [metrics.Point("eval", job, 120, 1, (None, None, 0.7, None, None, None, None, None,
                                                                     None), ago(1))])
        late = json.loads(next(events)["data"])
        assert late["steps"] == [120] and late["eval"] == [0.7]
    requests = served.app.state.pool.get_stats().get("requests_num", 0)
    wait_for(lambda: served.connections_in_use() == 0, timeout=5)
    threading.Event().wait(0.5)
    assert served.app.state.pool.get_stats().get("requests_num", 0) <= requests + 1  # stopped polling


def test_the_stream_resumes_after_the_last_event_id_and_ends_with_the_job(web: WebRig, served: Served,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from web.pages import job_stream

    monkeypatch.setattr(job_stream, "POLL_S", 0.1)
    job = add_job(web)
    training(web, job)
    telemetry(web, job, range(1, 31), eval_every=10)
    web.store.app.cancel_job(job, CancelReason.TESTING, "", "alice", ago(0))
    web.project()
    headers = {"Accept": "text/event-stream", "Last-Event-ID": "25:20"}
    version = served.client.get(f"/jobs/{job}/cards").json()["version"]
    answer = served.client.get(f"/jobs/{job}/events-stream", headers=headers,
                               params={"after": 0, "eval_after": 0, "version": version})
    events = list(sse_events(iter(answer.text.splitlines())))
    assert [e["event"] for e in events] == ["points", "end"]
    assert json.loads(events[0]["data"])["steps"] == [26, 27, 28, 29, 30]
    assert served.client.get(f"/jobs/{uuid.uuid4()}/events-stream").status_code == 404


def test_a_page_from_an_earlier_attempt_is_told_the_attempt_that_replaced_it_once(
        web: WebRig, served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page rendered before the pod started (attempt 0) gets one `reset` naming the current
    attempt, which its next connection sends: it is not reset again (no reconnect storm)."""
    from web.pages import job_stream

    monkeypatch.setattr(job_stream, "POLL_S", 0.1)
    job = add_job(web)
    training(web, job)
    telemetry(web, job, range(1, 6))
    web.store.app.cancel_job(job, CancelReason.TESTING, "", "alice", ago(0))
    web.project()
    version = served.client.get(f"/jobs/{job}/cards").json()["version"]

    def events(attempt: int) -> list[dict[str, str]]:
        answer = served.client.get(f"/jobs/{job}/events-stream", headers={"Accept": "text/event-stream"},
                                   params={"after": 5, "eval_after": 5, "version": version, "attempt": attempt})
        return list(sse_events(iter(answer.text.splitlines())))

    first = events(0)
    assert first[0]["event"] == "reset"
    told = json.loads(first[0]["data"])["attempt"]
    assert told >= 1 and [e["event"] for e in events(told)] == ["end"]


# --- cost colours, event log ------------------------------------------------------------------------

COST_CASES = (  # estimate's maximum → colour and alert for a $24.90 spend (FR7.1.1)
    ("35.00", "green", None),
    ("30.00", "yellow", "Job approaching cost estimate ($24.90 of $30.00). Monitor closely."),
    ("24.90", "yellow", "Job approaching cost estimate ($24.90 of $24.90). Monitor closely."),
    ("22.00", "red", "Job exceeded cost estimate ($24.90 of $22.00). Consider cancelling."),
    ("20.00", "red", "Job significantly over budget ($24.90 of $20.00). Review immediately."),
)


def test_the_cost_tracker_takes_the_spec_colour_and_alert_at_each_threshold(web: WebRig) -> None:
    jobs = {}
    for cost_max, _, _ in COST_CASES:
        jobs[cost_max] = add_job(web, name=f"Estimate {cost_max}", cost_max=Decimal(cost_max), at=ago(12 * 60))
        spent(web, jobs[cost_max], hours=10)  # $2.49 × 10 h
    web.project()
    for cost_max, level, alert in COST_CASES:
        html = page(web, "bob", f"/jobs/{jobs[cost_max]}").text
        assert f"jd-cost jd-cost-{level}" in html, cost_max
        percent = Decimal("24.90") / Decimal(cost_max) * 100
        assert f"Final cost $24.90 {percent:.0f}% of estimate" in text_of(html)
        alerts = re.findall(r'class="jd-cost-alert" role="alert">⚠ ([^<]*)<', html)
        assert alerts == ([alert] if alert else []), cost_max


def test_the_event_log_tab_pages_filters_and_searches_without_script(web: WebRig) -> None:
    job = eventful_job(web.store.app)
    run(web, job, *(lambda j, n=n: j.add_note(f"Observation {n}", "carol", ago(60 - n)) for n in range(40)))
    web.project()
    first = text_of(page(web, "alice", f"/jobs/{job}?tab=events").text)
    total = int(re.search(r"(\d+) events · page 1 of 2", first).group(1))
    assert total > 50
    one = page(web, "alice", f"/jobs/{job}?tab=events").text
    two = page(web, "alice", f"/jobs/{job}?tab=events&page=2").text
    assert one.count('<tr class="jd-ev-') == 50 and two.count('<tr class="jd-ev-') == total - 50
    assert "Created by alice: Advisor tone v1" in one and "Page 1 of 2" in one and 'rel="next"' in one
    assert "Observation 39" in two and 'rel="prev"' in two
    errors = text_of(page(web, "alice", f"/jobs/{job}?tab=events&category=error").text)
    assert "2 events matching · page 1 of 1" in errors
    assert "Provisioning failed (attempt 1): no spot capacity" in errors
    assert "Failed (oom): CUDA out of memory" in errors
    found = text_of(page(web, "alice", f"/jobs/{job}?tab=events&q=CHECKPOINT").text)
    assert "Checkpoint saved at step 300" in found and "Recovery attempt 1 started from checkpoint" in found
    assert "Observation" not in found
    warnings = page(web, "alice", f"/jobs/{job}?tab=events&category=warning&q=step").text
    assert text_of(warnings).count("Interrupted at step 850: pod exited with 143") == 1
    assert 'class="jd-evtype jd-evtype-warning">Warning<' in warnings
    assert '<pre class="jd-payload">' in warnings and "&#34;step&#34;: 850" in warnings  # the payload, expandable
    unknown = page(web, "alice", f"/jobs/{job}?tab=events&category=bogus").text
    assert "Unknown event type &#39;bogus&#39;: showing all events" in unknown and f"{total} events" in unknown
    exported = web.client("alice").get(f"/jobs/{job}/event-log.json?category=error").json()
    assert [e["message"] for e in exported] == ["Provisioning failed (attempt 1): no spot capacity",
                                                "Failed (oom): CUDA out of memory"]
    csv_text = web.client("alice").get(f"/jobs/{job}/event-log.csv?q=observation").text
    assert csv_text.splitlines()[0] == "timestamp,event_type,topic,message,actor,payload"
    assert len(csv_text.splitlines()) == 41


# --- forms ------------------------------------------------------------------------------------------

def test_notes_are_timestamped_markdown_shown_escaped_and_checked(web: WebRig) -> None:
    job = add_job(web)
    unconfigured = web.store.app.create_job(**job_fields(name="Only created", at=ago(5)))
    web.project()
    bare = text_of(page(web, "alice", f"/jobs/{unconfigured}").text)  # nothing to show yet, and no error
    assert "0% Complete" in bare and "No steps yet" in bare and "Estimated cost: —" in bare
    missing = web.client("alice").get(f"/jobs/{uuid.uuid4()}", headers=HTML)
    assert missing.status_code == 404 and "There is no training job" in missing.text
    before = event_count(web)
    for text, message in (("   ", "A note must not be empty"),
                          ("x" * 2001, "Notes must be at most 2000 characters (got 2001)")):
        refused = web.form("alice", f"/jobs/{job}/notes", {"text": text}, headers=HTML)
        assert refused.status_code == 400 and message in refused.text
    forged = web.client("alice").post(f"/jobs/{job}/notes", data={"text": "hello"}, headers=HTML)
    assert forged.status_code == 403 and "CSRF check failed" in forged.text
    assert event_count(web) == before
    added = web.form("carol", f"/jobs/{job}/notes", {"text": "Loss looks **fine** <script>alert(1)</script>"})
    assert added.status_code == 303 and added.headers["location"] == f"/jobs/{job}?notice=Note+added."
    web.project()
    html = page(web, "alice", f"/jobs/{job}").text
    assert "<strong>fine</strong>" in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC · carol", text_of(html))
    log = page(web, "alice", f"/jobs/{job}?tab=events&q=alert").text
    assert "Note by carol: Loss looks **fine** &lt;script&gt;alert(1)&lt;/script&gt;" in log


def test_cancel_needs_a_reason_and_the_confirmation_and_says_what_it_cost(web: WebRig) -> None:
    job = add_job(web)
    training(web, job)
    web.project()
    before = event_count(web)
    for form, message in (
        ({"reason": "", "confirm": "yes"}, "Choose a reason for cancellation"),
        ({"reason": "provisioning_timeout", "confirm": "yes"}, "Choose a reason for cancellation"),
        ({"reason": "testing"}, "Tick “I understand this action cannot be undone” to cancel the job"),
        ({"reason": "testing", "confirm": "yes", "notes": "n" * 2001}, "Notes must be at most 2000 characters"),
    ):
        refused = web.form("alice", f"/jobs/{job}/cancel", form, headers=HTML)
        assert refused.status_code == 400 and message in refused.text, form
    assert 'option value="testing" selected' in refused.text  # the form keeps what was chosen
    forged = web.client("alice").post(f"/jobs/{job}/cancel", data={"reason": "testing", "confirm": "yes"},
                                      headers=HTML)
    assert forged.status_code == 403
    assert event_count(web) == before
    done = web.form("carol", f"/jobs/{job}/cancel", {"reason": "too_expensive", "notes": "over <b>budget</b>",
                                                     "confirm": "yes"})
    assert done.status_code == 303
    notice = httpx.URL(done.headers["location"]).params["notice"]
    assert re.fullmatch(r"Job cancelled\. Cost so far: \$\d+\.\d\d\. The GPU instance is being terminated "
                        r"\(within 60 seconds\)\.", notice)  # its pod still runs until the reactor stops it
    cancelled = web.store.app.get_job(job)
    assert cancelled.status == JobStatus.CANCELLED
    assert cancelled.cancellation == {"reason": "too_expensive", "notes": "over <b>budget</b>", "actor": "carol"}
    web.project()
    html = page(web, "alice", done.headers["location"]).text
    assert notice in text_of(html).replace("&#39;", "'") and "Cancel Job" not in html
    assert "over &lt;b&gt;budget&lt;/b&gt;" in page(web, "alice", f"/jobs/{job}?tab=events").text
    overview = text_of(page(web, "alice", f"/jobs/{job}").text)
    assert "Cancelled by carol: Too expensive." in overview, overview  # the reason and the notes
    assert "over &lt;b&gt;budget&lt;/b&gt;" in overview
    stopped = add_job(web, name="Never ran")
    answer = web.form("bob", f"/jobs/{stopped}/cancel", {"reason": "testing", "confirm": "yes"})
    assert "Final+cost%3A+%240.00.+GPU+instance+terminated." in answer.headers["location"]
    completed = web.form("bob", f"/jobs/{job}/cancel", {"reason": "testing", "confirm": "yes"}, headers=HTML)
    assert completed.status_code == 303  # cancelling a cancelled job changes nothing
    missing = web.form("bob", f"/jobs/{uuid.uuid4()}/cancel", {"reason": "testing", "confirm": "yes"}, headers=HTML)
    assert missing.status_code == 404


def test_retry_suggested_fix_and_resume_go_through_the_retry_logic_with_its_messages_and_rules(web: WebRig) -> None:
    job = add_job(web, at=ago(12 * 60))
    spent(web, job, hours=2)  # failed with OOM
    web.project()
    html = page(web, "alice", f"/jobs/{job}").text
    shown = text_of(html)
    assert "Retry Job" in shown and "Retry with Suggested Fix" in shown
    assert "Your previous job failed with OOM error. Retry with batch_size=1 (suggested)?" in shown
    assert "<code>per_device_train_batch_size</code>: <del>2</del> → <strong>1</strong>" in html
    assert "Resume from Checkpoint" not in shown  # no checkpoint was saved
    assert "retry #1 of this job" in shown
    assert "Budget override justification" not in shown  # members are not offered the override
    assert "Budget override justification" in page(web, "bob", f"/jobs/{job}").text
    before = event_count(web)
    for form, message in (
        ({"mode": "again"}, "Choose retry, retry with the suggested fix, or resume from the checkpoint"),
        ({"mode": "same", "num_train_epochs": "two"}, "Epochs must be a whole number"),
        ({"mode": "same", "num_train_epochs": "11"}, "Epochs must be between 1 and 10"),
        ({"mode": "same", "learning_rate": "0.5"}, "Learning rate must be between 1e-06 and 0.01"),
        ({"mode": "same", "gpu_tier": "tpu"}, "GPU type must be spot or on-demand"),
        ({"mode": "resume"}, "This job saved no checkpoint: retry it from the start instead"),
    ):
        refused = web.form("alice", f"/jobs/{job}/retry", form, headers=HTML)
        assert refused.status_code == 400 and message in refused.text, form
    member_override = web.form("alice", f"/jobs/{job}/retry", {"mode": "same", "override_justification": "x" * 60},
                               headers=HTML)
    assert member_override.status_code == 403 and "Only a manager or admin may override" in member_override.text
    forged = web.client("alice").post(f"/jobs/{job}/retry", data={"mode": "same"}, headers=HTML)
    assert forged.status_code == 403
    assert event_count(web) == before
    fixed = web.form("alice", f"/jobs/{job}/retry", {"mode": "suggested", "num_train_epochs": "2"})
    assert fixed.status_code == 303
    new_id = UUID(fixed.headers["location"].split("/")[2].split("?")[0])
    assert httpx.URL(fixed.headers["location"]).params["notice"] == (
        "Retry with the suggested fix queued (per_device_train_batch_size: 2 → 1; num_train_epochs: 3 → 2).")
    retried = web.store.app.get_job(new_id)
    assert (retried.retry_of, retried.retry_number, retried.created_by) == (job, 1, "alice")
    assert retried.configuration["hyperparameters"]["per_device_train_batch_size"] == 1
    pending = web.client("alice").get(fixed.headers["location"], headers=HTML)  # not projected yet
    assert pending.status_code == 200 and 'http-equiv="refresh"' in pending.text
    web.project()
    new_page = text_of(page(web, "alice", f"/jobs/{new_id}").text)
    assert "Advisor tone v1 (Retry #1)" in new_page and f"retry #1 of job {str(job)[:8]}" in new_page
    original = text_of(page(web, "alice", f"/jobs/{job}").text)
    assert "Retries and resumes of this job" in original and "Advisor tone v1 (Retry #1) — retry" in original


def test_a_job_with_a_checkpoint_offers_resume_from_its_step(web: WebRig) -> None:
    job = add_job(web, at=ago(12 * 60))
    training(web, job, started=200)
    run(web, job, lambda j: j.record_checkpoint(800, CHECKPOINT, 1, ago(20)),
        lambda j: j.fail(FailureType.TIMEOUT, "Training took too long", {}, ago(10)))
    web.project()
    shown = text_of(page(web, "bob", f"/jobs/{job}").text)
    assert "Resume from Step 800 (40% complete)" in shown
    assert "Your previous job timed out. Retry with 2 epochs (suggested)?" in shown
    resumed = web.form("bob", f"/jobs/{job}/retry", {"mode": "resume", "gpu_tier": "on_demand"})
    assert resumed.status_code == 303
    new_id = UUID(resumed.headers["location"].split("/")[2].split("?")[0])
    new = web.store.app.get_job(new_id)
    assert new.resumed_from == job and new.latest_checkpoint == CHECKPOINT
    assert new.configuration["gpu_tier"] == "on_demand"


# --- the adapter -------------------------------------------------------------------------------------

def test_the_adapter_of_a_completed_job_downloads_from_the_object_store_under_the_spec_name(web: WebRig) -> None:
    body = b"adapter bytes " * 20_000  # several object-store chunks
    job = add_job(web, name="Advisor <tone> v1")
    training(web, job)
    ref = web.store_adapter(job, body)
    run(web, job, lambda j: j.complete(ref, {"final_loss": 0.31}, 1, ago(0)))
    web.project()
    completed = page(web, "alice", f"/jobs/{job}").text
    assert f'href="/jobs/{job}/adapter">Download Adapters' in completed
    assert "<h1>Advisor &lt;tone&gt; v1</h1>" in completed and "<tone>" not in completed  # the JSON block too
    assert "Final cost" in completed and "Cancel Job" not in completed
    download = web.client("alice").get(f"/jobs/{job}/adapter")
    assert download.status_code == 200 and download.content == body
    assert download.headers["content-disposition"] == f'attachment; filename="Advisor-tone-v1-adapters-{job}.tar"'
    assert web.store.app.get_job(job).exports == 1  # recorded for the audit trail

    running = add_job(web, name="Still training")
    training(web, running)
    none_yet = web.client("alice").get(f"/jobs/{running}/adapter", headers=HTML)
    assert none_yet.status_code == 404 and "This job has no adapter to download: it is training." in none_yet.text
    lost = add_job(web, name="Lost adapter")
    training(web, lost)
    run(web, lost, lambda j: j.complete(CHECKPOINT, {}, 1, ago(0)))
    missing = web.client("alice").get(f"/jobs/{lost}/adapter", headers=HTML)
    assert missing.status_code == 404 and "is missing from the object store" in missing.text
    assert web.client("alice").get(f"/jobs/{uuid.uuid4()}/adapter", headers=HTML).status_code == 404


def test_a_nul_character_in_a_note_or_cancel_notes_is_refused_by_name_and_nothing_is_recorded(web: WebRig) -> None:
    job = add_job(web)
    training(web, job)
    web.project()
    before = event_count(web)
    note = web.form("alice", f"/jobs/{job}/notes", {"text": "Loss\x00 flat"}, headers=HTML)
    assert note.status_code == 400 and note.headers["content-type"].startswith("text/html")
    assert "The field text contains a NUL character (U+0000) at character 5: remove it" in text_of(note.text)
    cancel = web.form("alice", f"/jobs/{job}/cancel", {"reason": "testing", "confirm": "yes", "notes": "\x00"},
                      headers=HTML)
    assert cancel.status_code == 400 and "The field notes contains a NUL character" in text_of(cancel.text)
    api = web.client().post(f"/api/jobs/{job}/cancel", json={"reason": "testing", "notes": "over\x00budget"},
                            headers=web.token("alice"))
    assert api.status_code == 400
    assert api.json()["detail"] == "notes contains a NUL character (U+0000) at character 5: remove it"
    assert "PostgreSQL" not in note.text + cancel.text + api.text
    assert event_count(web) == before and web.store.app.get_job(job).status is JobStatus.TRAINING
    web.project()  # the read models rebuild: nothing unstorable was recorded
