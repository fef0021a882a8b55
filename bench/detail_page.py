"""Job detail page benchmark (issue #7): server time of GET /jobs/{id} and of its loss-curve
endpoint for a job with 10,000 metric points, against a trivial page of the same app in the same
run; and the page fully rendered in a real browser (chart drawn).

    python bench/detail_page.py [--points 10000] [--requests 400] [--other-jobs 100] [--browser-loads 5]
                                [--no-browser] [--embedded-pg]

Standalone script (not a pytest test); services as in bench/relay_throughput.py (a scratch database
on 127.0.0.1:5432 or an embedded PostgreSQL, a private nats-server), removed at the end.

1. Data (untimed): the job through the real domain (queued, a pod, the stages, a ProgressRecorded
   every 25 steps and a checkpoint every 100: ~500 events), `--points` metric rows written as the
   live consumer writes them (an evaluation every 100 steps), `--other-jobs` other jobs with 1,000
   rows each; every read model rebuilt. One signed-in member.
2. Server time: the real app (web.app.create_app) under uvicorn in a thread, wrapped in an ASGI
   timer (request received → last body byte sent). A trivial page is registered on that app only
   here — `GET /bench/trivial`, a one-line template — so it passes the same middleware (session
   look-up), CSRF guard, banners hook and security headers. One client sends the three requests
   in turn, `--requests` rounds after a warm-up, with the session cookie and `Accept: text/html`
   (JSON for the points). Target: p99 of the page and of the points each ≤ 3 × the trivial page's.
3. Browser: Debian's Chromium driven by Playwright, signed in; each load of /jobs/{id} until the
   chart has drawn its first frame (the page records `performance.now()` then, in
   `#loss-chart[data-drawn-ms]`: from navigation start, so it includes the page, its CSS and
   scripts, the points request and the drawing). The first load (cold cache) and the median of the
   others. Target (FR2.1.1): < 2 s for < 10K points.

Prints p50 / p99 per request and the ratios, the browser times, and PASS/FAIL; exits 0 either way.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

import logging  # noqa: E402

import httpx  # noqa: E402
import psycopg  # noqa: E402
import uvicorn  # noqa: E402
from litestar import MediaType, get  # noqa: E402
from litestar.response import Template  # noqa: E402

from bench.relay_throughput import Services  # noqa: E402
from domain.aggregates.training_job import TrainingJob  # noqa: E402
from domain.job_status import JobStatus  # noqa: E402
from domain.presets import preset_named  # noqa: E402
from domain.values import ArtifactRef  # noqa: E402
from infra import db  # noqa: E402
from infra.embedded import free_port  # noqa: E402
from infra.eventstore import EventStore  # noqa: E402
from infra.settings import load_settings  # noqa: E402
from projections import metrics  # noqa: E402
from projections.runner import PROJECTIONS, rebuild_named  # noqa: E402
from tests.factories import configuration, job_fields  # noqa: E402
from tests.live_stack import declare  # noqa: E402
from web import users  # noqa: E402

TARGET_RATIO = 3.0
TARGET_BROWSER_S = 2.0
USER, PASSWORD = "bench", "bench-password-123"
WARM_UP = 30


@get("/bench/trivial", media_type=MediaType.HTML, sync_to_thread=False)
def trivial_page() -> Template:
    return Template(template_str="<!doctype html><title>ok</title><p>ok</p>")


class Timer:
    """ASGI wrapper: per path label, seconds from the request to its last body byte."""

    def __init__(self, app, labels: dict[str, str]) -> None:
        self.app, self.labels = app, labels
        self.times: dict[str, list[float]] = defaultdict(list)

    async def __call__(self, scope, receive, send) -> None:
        label = self.labels.get(scope.get("path", "")) if scope["type"] == "http" else None
        if label is None:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed(message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.times[label].append(time.perf_counter() - start)

        await self.app(scope, receive, timed)


def seed(services: Services, points: int, other_jobs: int) -> uuid.UUID:
    """Untimed: the benchmarked job, other jobs, metric rows, read models, a user."""
    db.migrate(services.database_url)
    declare(services.nats_url)
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        users.add_user(conn, USER, "member", PASSWORD)
    settings = load_settings(database_url=services.database_url, nats_url=services.nats_url, seed_sample=False)
    store = EventStore.open(services.database_url, policy=settings.budget_policy())
    now = datetime.now(timezone.utc)
    start = now - timedelta(seconds=points * 5 + 1200)
    checkpoint = ArtifactRef("checkpoints", "bench/checkpoint.tar", "c" * 64, 1)
    jobs = []
    for i in range(other_jobs + 1):
        steps = points if i == 0 else 1000
        total = steps * 2
        job = TrainingJob.create(uuid.uuid4(), **job_fields(name=f"Bench job {i:03d}", at=start))
        job.configure(**configuration(hyperparameters=preset_named("balanced").as_config(), at=start,
                                      estimated_duration_hours=Decimal(steps * 10 / 3600)))
        job.queue(start)
        job.start_provisioning("spot", start)
        job.pod_started(f"pod-{i}", 1, Decimal("2.49"), start + timedelta(minutes=1))
        job.change_stage(JobStatus.PREPROCESSING, 1, start + timedelta(minutes=2))
        job.change_stage(JobStatus.MODEL_LOADING, 1, start + timedelta(minutes=5))
        job.change_stage(JobStatus.TRAINING, 1, start + timedelta(minutes=15))
        for n in range(25, steps + 1, 25):
            at = start + timedelta(minutes=20, seconds=n * 5)
            job.record_progress(n, total, n / total * 3, 2.0 / (1 + n / 100), 1, at)
            if n % 100 == 0:
                job.record_checkpoint(n, checkpoint, 1, at)
        jobs.append(job)
    for first in range(0, len(jobs), 20):
        store.app.save(*jobs[first:first + 20])
    with psycopg.connect(services.database_url) as conn:
        for job in jobs:
            steps = points if job is jobs[0] else 1000
            rows = []
            for n in range(1, steps + 1):
                at = start + timedelta(minutes=20, seconds=n * 5)
                rows.append(metrics.Point("step", job.id, n, 1, (n / steps * 1.5, 2.0 / (1 + n / 100), None, None,
                                                                 2e-4, 0.5, 1247.0, 87.0, 68.0), at))
                if n % 100 == 0:
                    rows.append(metrics.Point("eval", job.id, n, 1, (None, None, 2.1 / (1 + n / 100), None, None,
                                                                     None, None, None, None), at))
            with conn.transaction():
                metrics.write(conn, rows)
        applications = {app.name: app for app in store.applications()}
        for name in PROJECTIONS:  # the metric rows above are that read model already (no TELEMETRY to rebuild from)
            rebuild_named(conn, name, applications, services.nats_url)
        conn.execute("ANALYZE")
        conn.commit()
    store.close()
    return jobs[0].id


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def serve(services: Services, timer_labels: dict[str, str]) -> tuple[uvicorn.Server, threading.Thread, Timer, str]:
    from web.app import create_app

    settings = load_settings(database_url=services.database_url, nats_url=services.nats_url, seed_sample=False)
    app = create_app(settings, services.database_url, services.nats_url)
    app.register(trivial_page)  # the baseline exists in this run only, never in the product
    timer = Timer(app, timer_labels)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(timer, host="127.0.0.1", port=port, log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, name="bench-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web app did not start")
        time.sleep(0.05)
    return server, thread, timer, f"http://127.0.0.1:{port}"


def login_token(page: str) -> str:
    """The sign-in form's token (web/auth.py: the form and a cookie carry it)."""
    found = re.search(r'name="_login" value="([^"]+)"', page)
    assert found, "no sign-in form token on /login"
    return found.group(1)


def server_times(base: str, job_id: uuid.UUID, timer: Timer, rounds: int) -> dict[str, list[float]]:
    requests = [("trivial", "/bench/trivial", "text/html"), ("page", f"/jobs/{job_id}", "text/html"),
                ("points", f"/jobs/{job_id}/metrics-points", "application/json")]
    with httpx.Client(base_url=base, timeout=30) as client:
        token = login_token(client.get("/login").text)
        signed_in = client.post("/login", data={"username": USER, "password": PASSWORD, "next": "/", "_login": token})
        assert signed_in.status_code == 303, signed_in.text
        for i in range(WARM_UP + rounds):
            if i == WARM_UP:
                timer.times.clear()
            for label, path, accept in requests:
                answer = client.get(path, headers={"Accept": accept})
                assert answer.status_code == 200, (label, answer.status_code, answer.text[:300])
                if i == 0 and label == "points":
                    print(f"  points endpoint: {len(answer.json()['steps']):,} points of {len(answer.content):,} bytes")
                if i == 0 and label == "page":
                    print(f"  page: {len(answer.content):,} bytes")
    return dict(timer.times)


def browser_times(base: str, job_id: uuid.UUID, loads: int) -> list[float]:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    from tests.e2e.browser import find_chromium

    executable = find_chromium()
    if executable is None:
        raise RuntimeError("no Chromium found (apt-get install chromium, or PIPELINE_CHROMIUM)")
    found = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            token = login_token(context.request.get(f"{base}/login").text())
            form = {"username": USER, "password": PASSWORD, "next": "/", "_login": token}
            signed_in = context.request.post(f"{base}/login", max_redirects=0, form=form)
            assert signed_in.status == 303, signed_in.text()
            tab = context.new_page()
            problems: list[str] = []
            tab.on("pageerror", lambda exc: problems.append(str(exc)))
            tab.on("console", lambda m: problems.append(m.text + str(m.location)) if m.type == "error" else None)
            for _ in range(loads):
                tab.goto(f"{base}/jobs/{job_id}", wait_until="commit")
                try:
                    tab.wait_for_selector("#loss-chart[data-drawn-ms]", timeout=30_000)
                except PlaywrightTimeout:
                    tab.screenshot(path="/tmp/bench-detail-failed.png")
                    problems.append(tab.evaluate("JSON.stringify(document.getElementById('loss-chart').dataset)"))
                    raise RuntimeError(f"the chart did not draw: {problems}") from None
                found.append(float(tab.get_attribute("#loss-chart", "data-drawn-ms")) / 1000)
                tab.goto("about:blank")  # closes the page's event stream before the next load
        finally:
            browser.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--other-jobs", type=int, default=100)
    parser.add_argument("--browser-loads", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--embedded-pg", action="store_true")
    args = parser.parse_args()

    logging.getLogger("httpx").setLevel(logging.WARNING)
    services = Services(Path(tempfile.mkdtemp(prefix="bench-detail-")))
    services.start(args.embedded_pg)
    server = thread = None
    try:
        print(f"services: {services.where}; nats {services.nats_url}")
        began = time.perf_counter()
        job_id = seed(services, args.points, args.other_jobs)
        print(f"seeded in {time.perf_counter() - began:.1f} s: job {job_id} with {args.points:,} metric points,"
              f" {args.other_jobs} other jobs with 1,000 each")
        labels = {"/bench/trivial": "trivial", f"/jobs/{job_id}": "page",
                  f"/jobs/{job_id}/metrics-points": "points"}
        server, thread, timer, base = serve(services, labels)
        times = server_times(base, job_id, timer, args.requests)
        print(f"\nserver time, {args.requests} rounds after {WARM_UP} warm-up (ms; ratios to the trivial page):")
        print(f"  {'request':<40} {'p50':>8} {'p99':>8} {'p50 ratio':>10} {'p99 ratio':>10}")
        trivial, trivial_p50 = percentile(times["trivial"], 99), percentile(times["trivial"], 50)
        verdicts = []
        for label, name in (("trivial", "trivial page (GET /bench/trivial)"), ("page", "job page (GET /jobs/{id})"),
                            ("points", "points (GET /jobs/{id}/metrics-points)")):
            p50, p99 = percentile(times[label], 50) * 1000, percentile(times[label], 99) * 1000
            ratio = percentile(times[label], 99) / trivial
            print(f"  {name:<40} {p50:8.2f} {p99:8.2f} {p50 / 1000 / trivial_p50:9.2f}× {ratio:9.2f}×")
            if label != "trivial":
                verdicts.append(ratio <= TARGET_RATIO)
        if not args.no_browser:
            loads = browser_times(base, job_id, args.browser_loads)
            warm = statistics.median(loads[1:]) if len(loads) > 1 else loads[0]
            print(f"\nbrowser, /jobs/{{id}} until the chart has drawn (s): first {loads[0]:.3f}, median of the"
                  f" next {len(loads) - 1}: {warm:.3f}, all: {', '.join(f'{t:.3f}' for t in loads)}")
            verdicts.append(max(loads) < TARGET_BROWSER_S)
        print(f"\n{'PASS' if all(verdicts) else 'FAIL'}: p99 ≤ {TARGET_RATIO:g}× the trivial page"
              + ("" if args.no_browser else f", every browser load < {TARGET_BROWSER_S:g} s"))
    finally:
        if server is not None:
            server.should_exit = True
            thread.join(30)
        services.stop()
        shutil.rmtree(services.tmpdir, ignore_errors=True)


if __name__ == "__main__":
    main()
