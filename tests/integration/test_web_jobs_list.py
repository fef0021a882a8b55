"""The jobs list, its statistics, bulk cancel and CSV export, and the queue tab (web/pages/jobs_list.py,
bulk_cancel.py, jobs_export.py, queue.py) through the real web app on real read models."""

from __future__ import annotations

import csv
import io
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import psycopg

from domain.aggregates.training_job import TrainingJob
from domain.job_status import CancelReason, FailureType, JobStatus
from domain.values import ArtifactRef
from tests.factories import T0, configuration, job_fields
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture

HTML = {"Accept": "text/html"}
ADAPTER = ArtifactRef("adapters", "job/adapter.tar", "d" * 64, 4_321)
XSS = "<script>alert(1)</script> probe"


def add_job(app, name: str, *, by: str = "alice", at=T0, preset: str = "balanced", tier: str = "spot",
            start: bool = True, **metadata) -> UUID:
    job_id = app.create_job(**job_fields(name=name, created_by=by, at=at, **metadata))
    app.configure_job(job_id, **configuration(preset=preset, gpu_tier=tier, at=at))
    if start:
        app.start_job(job_id, by, "member", at)
    return job_id


def run(app, job_id: UUID, hours: int, outcome: str, at=T0, tier: str = "spot") -> None:
    """A pod at $2.49/h for `hours`, ending completed or failed; the spend charged as the reactors do."""
    end = at + timedelta(hours=hours)
    pod = f"pod-{job_id.hex[:8]}"
    steps = [lambda j: j.start_provisioning(tier, at), lambda j: j.pod_started(pod, 1, Decimal("2.49"), at),
             lambda j: j.change_stage(JobStatus.TRAINING, 1, at + timedelta(minutes=5)),
             lambda j: j.record_progress(500, 1000, 1.0, 0.5, 1, at + timedelta(minutes=10)),
             lambda j: j.pod_stopped(pod, end)]
    if outcome == "completed":
        steps.append(lambda j: j.complete(ADAPTER, {"final_loss": 0.4}, 1, end))
    else:
        steps.append(lambda j: j.fail(FailureType.OOM, "CUDA out of memory", {}, end))
    for step in steps:
        app.update_job(job_id, step)
    app.record_job_spend(job_id, end)


@dataclass(frozen=True)
class Jobs:
    v1: UUID        # alice, balanced spot, completed after 20 h: $49.80; experiment, Acme
    v2: UUID        # bob, aggressive on-demand, completed after 45 h: $112.05; production, Acme / Q4
    coach: UUID     # alice, conservative, failed after 2 h: $4.98; "budgeting" in its description
    probe: UUID     # carol, queued; a <script> in its name
    old: UUID       # bob, created 40 days before T0, cancelled
    waiting: UUID   # alice, queued after the probe


def seed(web: WebRig) -> Jobs:
    app = web.store.app
    v1 = add_job(app, "Advisor tone v1", tags=["experiment"], client="Acme")
    v2 = add_job(app, "Advisor tone v2", by="bob", preset="aggressive", tier="on_demand", tags=["production"],
                 client="Acme", project="Q4", at=T0 + timedelta(minutes=1))
    coach = add_job(app, "Budget coach", preset="conservative", description="explores budgeting questions",
                    at=T0 + timedelta(minutes=2))
    run(app, v1, 20, "completed")
    run(app, v2, 45, "completed", at=T0 + timedelta(minutes=1), tier="on_demand")
    run(app, coach, 2, "failed", at=T0 + timedelta(minutes=2))
    probe = add_job(app, XSS, by="carol", at=T0 + timedelta(minutes=3))
    old = add_job(app, "Old baseline", by="bob", preset="conservative", at=T0 - timedelta(days=40))
    app.cancel_job(old, CancelReason.TESTING, "", "bob", T0 - timedelta(days=40))
    waiting = add_job(app, "Queued two", at=T0 + timedelta(minutes=4))
    web.project()
    return Jobs(v1, v2, coach, probe, old, waiting)


def rows(page: str) -> list[str]:
    """The job ids of the list's rows, in order."""
    table = page.split('id="jobs"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr data-job-id="([0-9a-f-]+)"', table)


def event_count(web: WebRig) -> int:
    with psycopg.connect(web.database_url) as conn:
        return conn.execute("SELECT count(*) FROM pipeline_events").fetchone()[0]


def stat(page: str, name: str) -> str:
    found = re.search(rf'data-stat="{name}">([^<]*)<', page)
    assert found, name
    return found.group(1).strip()


def test_the_jobs_list_shows_the_jobs_with_statistics_and_every_filter_narrows_it(web: WebRig) -> None:
    jobs = seed(web)
    alice = web.client("alice")
    page = alice.get("/jobs", headers=HTML)
    assert page.status_code == 200
    assert rows(page.text) == [str(j) for j in (jobs.waiting, jobs.probe, jobs.coach, jobs.v2, jobs.v1, jobs.old)]
    assert f'<a href="/jobs/{jobs.v2}">Advisor tone v2</a>' in page.text
    assert "$112.05" in page.text and "$49.80" in page.text and "45h 00m" in page.text
    assert '<span class="status status-completed">Completed</span>' in page.text
    assert '<span class="status status-failed">Failed</span>' in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; probe" in page.text and XSS not in page.text
    # One selection column: any job, ended ones too, can be ticked for the selection bar's compare,
    # export and cancel (FR5.1.1, FR2.3.1), without script.
    assert f'name="job_id" value="{jobs.v1}" aria-label="Select Advisor tone v1" data-ended' in page.text
    assert 'name="jobs"' not in page.text and page.text.count('type="checkbox" name="job_id"') == 6
    assert 'formaction="/jobs/selection" formnovalidate name="action" value="compare"' in page.text
    assert 'formaction="/jobs/selection" formnovalidate name="action" value="export"' in page.text
    # FR5.2.1 over all six: 2 completed, 1 failed (the cancelled one is left out of the rate).
    assert (stat(page.text, "jobs"), stat(page.text, "success_rate"), stat(page.text, "total_cost"),
            stat(page.text, "hours"), stat(page.text, "average_cost")) == ("6", "67%", "$166.83", "67 h", "$27.80")

    def shown(query: str) -> list[str]:
        answer = alice.get(f"/jobs?{query}", headers=HTML)
        assert answer.status_code == 200
        return rows(answer.text)

    assert shown("status=completed") == [str(jobs.v2), str(jobs.v1)]
    assert shown("status=completed&status=failed") == [str(j) for j in (jobs.coach, jobs.v2, jobs.v1)]
    assert shown("status=queued") == [str(jobs.waiting), str(jobs.probe)]
    assert shown("status=cancelled") == [str(jobs.old)]
    assert shown("created_by=bob") == [str(jobs.v2), str(jobs.old)]
    assert shown("preset=conservative") == [str(jobs.coach), str(jobs.old)]
    assert shown("gpu_tier=on_demand") == [str(jobs.v2)]
    assert shown("client=Acme") == [str(jobs.v2), str(jobs.v1)]
    assert shown("project=Q4&client=Acme") == [str(jobs.v2)]
    assert shown("tags=experiment") == [str(jobs.v1)]
    assert shown("q=budgeting") == [str(jobs.coach)]      # the description
    assert shown("q=advisor+tone&sort=relevance") and set(shown("q=advisor+tone")) == {str(jobs.v1), str(jobs.v2)}
    assert shown("period=30d") == [str(j) for j in (jobs.waiting, jobs.probe, jobs.coach, jobs.v2, jobs.v1)]
    assert shown("date_from=2026-10-01&date_to=2026-10-31") == [str(jobs.old)]
    assert shown("cost=lt50") == [str(j) for j in (jobs.waiting, jobs.probe, jobs.coach, jobs.v1, jobs.old)]
    assert shown("cost=100-200") == [str(jobs.v2)]
    assert shown("cost_min=4&cost_max=50") == [str(jobs.coach), str(jobs.v1)]

    completed = alice.get("/jobs?status=completed", headers=HTML).text
    assert (stat(completed, "jobs"), stat(completed, "success_rate"), stat(completed, "total_cost")) == \
        ("2", "100%", "$161.85")
    assert re.search(r'name="status" value="completed"\s+checked', completed)

    wrong = alice.get("/jobs?per_page=30&date_from=yesterday&cost_min=-5&sort=password&status=lost", headers=HTML)
    assert wrong.status_code == 200
    for message in ("Show 25, 50 or 100 jobs per page", "“yesterday” is not a date: dates look like 2026-11-24",
                    "“-5” is not a cost: costs are amounts in dollars, like 50 or 49.99", "Unknown status “lost”",
                    "Jobs can be sorted by created date, started, duration, cost, status, creator, job name"):
        assert message in wrong.text, message
    assert len(rows(wrong.text)) == 6
    reversed_dates = alice.get("/jobs?date_from=2026-11-30&date_to=2026-11-01", headers=HTML).text
    assert "The start date must be on or before the end date" in reversed_dates


def test_jobs_sort_and_page_25_50_or_100_at_a_time_and_htmx_gets_only_the_results(web: WebRig) -> None:
    jobs = seed(web)
    drafts = []
    for n in range(24):
        draft = TrainingJob.create(uuid.uuid4(), **job_fields(name=f"Draft {n:02d}", created_by="carol",
                                                              at=T0 - timedelta(days=1, minutes=n)))
        draft.configure(**configuration())
        drafts.append(draft)
    web.store.app.save(*drafts)
    web.project()
    alice = web.client("alice")

    first = alice.get("/jobs", headers=HTML).text
    assert len(rows(first)) == 25 and "Showing 1–25 of 30 jobs" in first
    assert 'href="/jobs?page=2" rel="next"' in first
    second = alice.get("/jobs?page=2", headers=HTML).text
    assert len(rows(second)) == 5 and "Showing 26–30 of 30 jobs" in second
    assert len(rows(alice.get("/jobs?per_page=50", headers=HTML).text)) == 30
    assert len(rows(alice.get("/jobs?status=not_started&per_page=100", headers=HTML).text)) == 24

    by_cost = rows(alice.get("/jobs?sort=cost&order=desc", headers=HTML).text)
    assert by_cost[:3] == [str(jobs.v2), str(jobs.v1), str(jobs.coach)]
    by_duration = rows(alice.get("/jobs?sort=duration&order=asc&status=completed&status=failed", headers=HTML).text)
    assert by_duration == [str(jobs.coach), str(jobs.v1), str(jobs.v2)]
    by_name = alice.get("/jobs?sort=name&order=asc&created_by=alice", headers=HTML).text
    assert rows(by_name) == [str(j) for j in (jobs.v1, jobs.coach, jobs.waiting)]
    assert 'aria-sort="ascending"' in by_name
    assert 'href="/jobs?created_by=alice&amp;sort=name&amp;order=desc&amp;page=1"' not in by_name  # page 1 is left out
    assert 'href="/jobs?created_by=alice&amp;sort=name&amp;order=desc"' in by_name  # the header flips the order

    partial = alice.get("/jobs?status=completed", headers={**HTML, "HX-Request": "true", "HX-Target": "jobs-results"})
    assert partial.text.lstrip().startswith('<section id="jobs-results"') and "<html" not in partial.text
    assert rows(partial.text) == [str(jobs.v2), str(jobs.v1)]
    assert web.client("alice").get("/", follow_redirects=False).headers["location"] == "/jobs"


def test_bulk_cancel_cancels_each_job_it_can_and_says_which_it_could_not_and_why(web: WebRig) -> None:
    jobs = seed(web)
    app = web.store.app
    back = "/jobs?status=queued"
    form = {"job_id": [str(jobs.probe), str(jobs.v1), str(jobs.old)], "reason": "too_expensive",
            "notes": "over budget", "confirm": "yes", "next": back}

    for missing, message in (("job_id", "Select at least one job to cancel"),
                             ("reason", "Choose a reason for cancellation"),
                             ("confirm", "Tick “I understand this action cannot be undone” to cancel the jobs")):
        refused = web.form("alice", "/jobs/bulk-cancel", {k: v for k, v in form.items() if k != missing})
        assert refused.status_code == 303
        page = web.client("alice").get(refused.headers["location"], headers=HTML)
        assert message in page.text, message
    assert app.get_job(jobs.probe).status == JobStatus.QUEUED  # nothing changed

    done = web.form("alice", "/jobs/bulk-cancel", form)
    assert done.status_code == 303 and done.headers["location"].startswith(back + "&")
    page = web.client("alice").get(done.headers["location"], headers=HTML).text
    assert "Cancelled 1 job: &lt;script&gt;alert(1)&lt;/script&gt; probe." in page
    assert "Could not cancel 2 jobs: Advisor tone v1 (already completed); Old baseline (already cancelled)." in page
    probe = app.get_job(jobs.probe)
    assert probe.status == JobStatus.CANCELLED
    assert probe.cancellation == {"reason": "too_expensive", "notes": "over budget", "actor": "alice"}
    assert app.get_job(jobs.v1).status == JobStatus.COMPLETED
    assert app.get_job(jobs.waiting).status == JobStatus.QUEUED

    outside = web.form("alice", "/jobs/bulk-cancel",
                       {**form, "job_id": [str(jobs.waiting)], "next": "https://evil.example/"})
    assert outside.headers["location"].startswith("/jobs?notice=")


def test_the_csv_export_streams_the_filtered_list_in_its_order(web: WebRig) -> None:
    jobs = seed(web)
    web.store.app.create_job(**job_fields(name="=HYPERLINK(1) formula", created_by="bob", at=T0))
    web.project()
    alice = web.client("alice")
    answer = alice.get("/jobs.csv?status=completed&sort=cost&order=asc")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert re.fullmatch(r'attachment; filename="training-jobs-\d{8}T\d{6}Z\.csv"',
                        answer.headers["content-disposition"])
    table = list(csv.DictReader(io.StringIO(answer.text.lstrip("\ufeff"))))
    assert [(r["Job ID"], r["Job Name"], r["Status"], r["Preset"], r["GPU"], r["Created By"], r["Cost (USD)"],
             r["Duration (hours)"], r["Client"], r["Tags"]) for r in table] == [
        (str(jobs.v1), "Advisor tone v1", "Completed", "Balanced", "Spot", "alice", "49.80", "20.00", "Acme",
         "experiment"),
        (str(jobs.v2), "Advisor tone v2", "Completed", "Aggressive", "On-demand", "bob", "112.05", "45.00", "Acme",
         "production")]
    everything = list(csv.reader(io.StringIO(alice.get("/jobs.csv").text.lstrip("\ufeff"))))
    assert len(everything) == 1 + 7
    assert [r[1] for r in everything if "HYPERLINK" in r[1]] == ["'=HYPERLINK(1) formula"]


def test_the_selection_bar_compares_2_to_4_jobs_and_exports_the_ticked_ones(web: WebRig) -> None:
    jobs = seed(web)
    back = "/jobs?status=completed"

    def act(action: str, *selected: UUID) -> str:
        answer = web.form("alice", "/jobs/selection", {"action": action, "job_id": [str(j) for j in selected],
                                                       "next": back, "reason": "", "notes": ""})
        assert answer.status_code == 303
        return answer.headers["location"]

    assert act("compare", jobs.v1, jobs.v2) == f"/compare?jobs={jobs.v1}&jobs={jobs.v2}"
    refused = act("compare", jobs.v1)
    assert refused.startswith(back + "&error=")
    assert "Select 2 to 4 jobs to compare (1 selected)" in web.client("alice").get(refused, headers=HTML).text
    assert "Select 2 to 4 jobs to compare (5 selected)" in web.client("alice").get(
        act("compare", jobs.v1, jobs.v2, jobs.coach, jobs.probe, jobs.old), headers=HTML).text
    assert "Select the jobs to export" in web.client("alice").get(act("export"), headers=HTML).text

    export = act("export", jobs.coach, jobs.v1, jobs.coach)
    assert export == f"/jobs.csv?job={jobs.coach}&job={jobs.v1}"
    table = list(csv.DictReader(io.StringIO(web.client("alice").get(export).text.lstrip("\ufeff"))))
    assert [r["Job ID"] for r in table] == [str(jobs.coach), str(jobs.v1)]  # the list's order: newest first
    assert act("dance", jobs.v1).startswith(back + "&error=")


def test_a_draft_discarded_at_review_is_listed_as_such_and_not_counted_as_a_cancelled_job(web: WebRig) -> None:
    jobs = seed(web)
    draft = add_job(web.store.app, "Never started", start=False, at=T0 + timedelta(minutes=5))
    assert web.form("alice", f"/jobs/{draft}/discard", {}).status_code == 303
    web.project()
    page = web.client("alice").get("/jobs", headers=HTML).text
    counts = " ".join(re.sub(r"<[^>]+>", " ", page.split('class="hint outcome-counts"', 1)[1].split("</p>", 1)[0])
                      .split())
    assert "1 cancelled" in counts and "1 discarded draft" in counts, counts  # Old baseline, and the draft
    row = page.split(f'data-job-id="{draft}"', 1)[1].split("</tr>", 1)[0]
    assert "Discarded draft" in row and "status-cancelled" not in row
    assert 'class="status status-cancelled">Cancelled<' in page.split(f'data-job-id="{jobs.old}"', 1)[1]
    assert stat(page, "jobs") == "7"


def test_the_filters_fold_under_the_search_while_there_are_few_jobs_and_none_is_in_use(web: WebRig) -> None:
    seed(web)
    alice = web.client("alice")
    assert 'id="filters-more">' in alice.get("/jobs", headers=HTML).text  # six jobs: folded
    narrowed = alice.get("/jobs?preset=balanced&sort=cost&order=asc", headers=HTML).text
    assert 'id="filters-more" open>' in narrowed and "(2 in use)" in narrowed
    assert 'id="filters-more">' in alice.get("/jobs?q=advisor", headers=HTML).text  # the search is always shown
    for n in range(5):
        add_job(web.store.app, f"Another run {n}", start=False)
    web.project()
    assert 'id="filters-more" open>' in alice.get("/jobs", headers=HTML).text  # eleven jobs


def test_the_queue_tab_orders_jobs_with_start_times_and_only_managers_promote(web: WebRig) -> None:
    jobs = seed(web)
    app = web.store.app
    busy = add_job(app, "Busy run", by="bob", at=T0 + timedelta(minutes=5))
    for step in (lambda j: j.start_provisioning("spot", T0),
                 lambda j: j.pod_started("pod-busy", 1, Decimal("2.49"), T0),
                 lambda j: j.change_stage(JobStatus.TRAINING, 1, T0),
                 lambda j: j.record_progress(500, 1000, 1.0, 0.5, 1, T0)):
        app.update_job(busy, step)
    web.project()
    page = web.client("alice").get("/queue", headers=HTML)
    assert page.status_code == 200
    running = page.text.split('id="running"', 1)[1].split("</table>", 1)[0]
    assert str(busy) in running and "Training" in running and "50%" in running
    assert "in 6h 4" in running  # half of its 13.5 h estimate left
    queue = page.text.split('id="queue"', 1)[1]
    assert queue.index(str(jobs.probe)) < queue.index(str(jobs.waiting))
    planned = web.client("alice").get("/api/queue").json()
    for entry in planned:
        start = entry["estimated_start"].replace("T", " ")[:16]
        assert start in queue
    assert "/promote" not in page.text  # members see no Promote button
    assert "Switch to on-demand" in page.text

    before = event_count(web)
    refused = web.form("alice", f"/queue/{jobs.waiting}/promote", {}, headers=HTML)
    assert refused.status_code == 403 and "Only managers and admins may do this" in refused.text
    assert event_count(web) == before and app.get_job(jobs.waiting).promoted_at is None

    manager = web.client("bob").get("/queue", headers=HTML).text
    assert f'action="/queue/{jobs.waiting}/promote"' in manager
    promoted = web.form("bob", f"/queue/{jobs.waiting}/promote", {})
    assert promoted.status_code == 303
    assert "Queued two moved to the front of the queue." in web.client("bob").get(promoted.headers["location"],
                                                                                  headers=HTML).text
    assert app.get_job(jobs.waiting).promoted_at is not None
    web.project()
    queue = web.client("alice").get("/queue", headers=HTML).text.split('id="queue"', 1)[1]
    assert queue.index(str(jobs.waiting)) < queue.index(str(jobs.probe)) and "Promoted" in queue

    again = web.form("bob", f"/queue/{jobs.v1}/promote", {})
    assert "Only a queued job can be promoted (this one is completed)" in \
        web.client("bob").get(again.headers["location"], headers=HTML).text

    switched = web.form("alice", f"/queue/{jobs.probe}/on-demand", {})
    assert switched.status_code == 303
    assert app.get_job(jobs.probe).configuration["gpu_tier"] == "on_demand"


def test_a_query_number_of_5000_digits_or_a_nul_character_is_refused_by_its_name(web: WebRig) -> None:
    digits = "9" * 5000
    api = web.client().get(f"/api/jobs?page={digits}", headers=web.token("alice"))
    assert (api.status_code, api.json()["detail"]) == (
        400, "The query parameter page is a number with 5,000 digits (at most 4,300)")  # not "Integer value out …"
    nul = web.client().get("/api/jobs", params={"text": "advisor\x00"}, headers=web.token("alice"))
    assert (nul.status_code, nul.json()["detail"]) == (
        400, "The query parameter text contains a NUL character (U+0000) at character 8: remove it")
    page = web.client("alice").get("/jobs", params={"q": "advisor\x00"}, headers=HTML)
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
    assert "The query parameter q contains a NUL character (U+0000) at character 8: remove it" in page.text
