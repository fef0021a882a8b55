"""FR4.2.2's training report: a completed job's PDF with the spec's sections and the job's own
figures (read back from the PDF's text), its file name, the preview, the export record, and the
refusal for a job that has not completed."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
from pypdf import PdfReader

from domain.job_status import JobStatus
from domain.money import usd
from domain.values import ArtifactRef
from projections.finance import Query, savings_rows
from tests.factories import queue_sample_job
from tests.integration.test_web_job_detail import ago, run, telemetry
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture

ADAPTER = ArtifactRef("jobs", "job/adapter-attempt-2.tar", "a" * 64, 1234)
CHECKPOINT = ArtifactRef("jobs", "job/attempt-1/checkpoint-step-1000.tar", "c" * 64, 999)


def completed_after_an_interruption(web: WebRig, name: str) -> object:
    """Two spot pods (the first preempted after a checkpoint at step 1000), 2,000 steps of
    telemetry with an evaluation every 100, completed with the agent's final metrics."""
    job_id = queue_sample_job(web.store.app, name=name)
    start = ago(600)
    at = lambda minutes: start + timedelta(minutes=minutes)  # noqa: E731 - a short clock
    run(web, job_id,
        lambda j: j.start_provisioning("spot", at(0)),
        lambda j: j.pod_started("pod-1", 1, Decimal("2.49"), at(1)),
        lambda j: j.change_stage(JobStatus.TRAINING, 1, at(10)),
        lambda j: j.record_checkpoint(1000, CHECKPOINT, 1, at(200)),
        lambda j: j.interrupt("spot preemption", 1100, 1, at(220)),
        lambda j: j.pod_stopped("pod-1", at(221)),
        lambda j: j.begin_recovery(at(222)),
        lambda j: j.start_provisioning("spot", at(223)),
        lambda j: j.pod_started("pod-2", 2, Decimal("2.59"), at(225)),
        lambda j: j.change_stage(JobStatus.TRAINING, 2, at(232)),
        lambda j: j.change_stage(JobStatus.FINALIZATION, 2, at(470)),
        lambda j: j.complete(ADAPTER, {"final_loss": 0.2871, "steps": 2000, "epochs": 3.0,
                                       "base_perplexity": 8.4, "adapter_perplexity": 3.1,
                                       "perplexity_improvement_percent": 63.1}, 2, at(480)),
        lambda j: j.pod_stopped("pod-2", at(481)))
    telemetry(web, job_id, range(1, 2001), start=start)
    web.project()
    return job_id


def filled(page: Any) -> float:
    """How far down the page its lowest line of text reaches (0 top, 1 bottom), the footer left out."""
    height = float(page.mediabox.height)
    lowest = [height]

    def seen(text: str, cm: list[float], tm: list[float], *_: object) -> None:
        y = cm[5] + tm[5] * cm[3]  # the text's baseline, from the page's bottom
        if text.strip() and y > 20 / 25.4 * 72:  # above the footer, 12 mm from the foot
            lowest[0] = min(lowest[0], y)

    page.extract_text(visitor_text=seen)
    return 1 - lowest[0] / height


def pdf_text(body: bytes) -> str:
    return " ".join(" ".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(body)).pages).split())


def test_a_completed_job_gets_its_training_report_with_its_own_figures(web: WebRig) -> None:
    job_id = completed_after_an_interruption(web, "Advisor tone v3 — Łódź & Zürich")
    job = web.store.app.get_job(job_id)
    answer = web.client("alice").get(f"/jobs/{job_id}/report.pdf")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    assert re.fullmatch(r'attachment; filename="Advisor-tone-v3-d-Z-rich-training-report-\d{8}-\d{6}\.pdf"',
                        answer.headers["content-disposition"]), answer.headers["content-disposition"]
    assert answer.content.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(answer.content))
    assert len(reader.pages) >= 3 and reader.metadata.title == "Advisor tone v3 — Łódź & Zürich - training report"
    # Sections follow one another: no page but the cover and the last ends in a large empty area.
    for number, page in enumerate(reader.pages[1:-1], start=2):
        assert filled(page) > 0.6, f"page {number} is only {filled(page):.0%} filled"
    text = pdf_text(answer.content)
    total = job.cost(job.updated_at).in_cents()["total"]
    for expected in ("Training Report", "Advisor tone v3 — Łódź & Zürich", "Executive summary",
                     "Training metrics", "Loss curves", "Learning rate schedule", "Cost breakdown", "Appendix",
                     "Checkpoint history", "Event log summary",
                     f"{job.file_name}: {job.conversation_count:,} conversations",
                     "Balanced preset", "spot instance",
                     "Final training loss 0.287 (baseline: 1.980) - 86% improvement",
                     "Perplexity (base → adapter) 8.40 → 3.10 (63% lower)",
                     f"Cost {usd(total)}", "Completed successfully after 1 interruption, resumed from checkpoints",
                     "Spot interruptions 1 (recovery overhead:", "$2.49/hr, $2.59/hr",
                     "Checkpoint saved at step 1,000", "Interrupted at step 1,100: spot preemption",
                     "cheaper than on-demand", "Loss plateaued at epoch"):
        assert expected in text, expected
    with psycopg.connect(web.database_url) as conn:  # the same comparison as the finance savings report
        [saving] = [r for r in savings_rows(conn, Query(web.settings.budget.team)) if r["job_id"] == str(job_id)]
    assert (f"{saving['savings_percent']:.0f}% cheaper than on-demand ({usd(saving['on_demand_cost'])} on-demand,"
            " without the redone work)") in text
    # The download is on the job's record; a preview is shown inline and is not.
    with psycopg.connect(web.database_url) as conn:
        exports = conn.execute("SELECT count(*) FROM pipeline_events WHERE originator_id = %s AND topic ="
                               " 'TrainingJob.MetricsExported'", (job_id,)).fetchone()[0]
    assert exports == 1 and web.store.app.get_job(job_id).exports == 1
    preview = web.client("alice").get(f"/jobs/{job_id}/report.pdf", params={"preview": "1"})
    assert preview.status_code == 200 and preview.headers["content-disposition"].startswith("inline;")
    assert web.store.app.get_job(job_id).exports == 1
    page = web.client("alice").get(f"/jobs/{job_id}", headers={"Accept": "text/html"}).text
    assert f'href="/jobs/{job_id}/report.pdf"' in page and "Generate Report" in page and "Preview report" in page


def test_a_job_that_has_not_completed_gets_no_report_and_an_unknown_one_a_404(web: WebRig) -> None:
    job_id = queue_sample_job(web.store.app, name="Still queued")
    web.project()
    refused = web.client("alice").get(f"/jobs/{job_id}/report.pdf", headers={"Accept": "text/html"})
    assert refused.status_code == 409
    assert "A training report is made for a completed job; this one is queued" in refused.text
    assert web.store.app.get_job(job_id).exports == 0
    page = web.client("alice").get(f"/jobs/{job_id}", headers={"Accept": "text/html"}).text
    assert "report.pdf" not in page
    missing = web.client("alice").get("/jobs/00000000-0000-4000-8000-000000000000/report.pdf",
                                      headers={"Accept": "text/html"})
    assert missing.status_code == 404


def test_a_shared_link_opens_the_report_without_signing_in_for_30_days(web: WebRig) -> None:
    from datetime import datetime, timezone

    from handlers.notifications import tokens
    from web import share_links

    job_id = completed_after_an_interruption(web, "Shared advisor")
    page = web.form("bob", f"/jobs/{job_id}/report/share", {}, headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text
    url = re.search(r'id="share-url" value="([^"]+)"', page.text) or re.search(r'value="([^"]+)" id="share-url"',
                                                                              page.text)
    assert url, page.text
    link = url.group(1)
    assert link.startswith(f"{web.settings.web.public_base_url}/shared/reports/") and "(30 days)" in page.text
    path = link.removeprefix(web.settings.web.public_base_url)
    stranger = web.client(None)
    opened = stranger.get(path)
    assert opened.status_code == 200 and opened.headers["content-type"] == "application/pdf"
    assert opened.headers["content-disposition"].startswith("inline;") and "Shared advisor" in pdf_text(opened.content)
    assert stranger.get(path).content == opened.content  # drawn once for the job as it stands, then kept
    assert stranger.get(f"/jobs/{job_id}/report.pdf", follow_redirects=False).status_code in (303, 401)  # not the rest
    head, _, tail = path.rpartition("/")[2].partition(".")
    tampered = stranger.get(f"/shared/reports/{head[:-2]}xx.{tail}", headers={"Accept": "text/html"})
    assert tampered.status_code == 403 and "This report link is not valid" in tampered.text
    secret = web.settings.notifications.approval_secret.get_secret_value()
    old, _ = share_links.share(share_links.REPORT, job_id, "bob", secret, datetime(2026, 1, 1, tzinfo=timezone.utc))
    expired = stranger.get(f"/shared/reports/{old}", headers={"Accept": "text/html"})
    assert expired.status_code == 410 and "This report link expired on 2026-01-31" in expired.text
    approval = tokens.sign(tokens.Approval(job_id, "2026-11", "approve", "bob", datetime(2100, 1, 1,
                                                                                          tzinfo=timezone.utc)), secret)
    assert stranger.get(f"/shared/reports/{approval}").status_code == 403  # another purpose's token
    web.project()
    with psycopg.connect(web.database_url) as conn:
        kinds = conn.execute("SELECT payload->>'kind' FROM event_log WHERE job_id = %s AND topic ="
                             " 'TrainingJob.MetricsExported'", (job_id,)).fetchall()
    assert kinds == [("training-report-link",)]
    queued = queue_sample_job(web.store.app, name="Not done")
    refused = web.form("bob", f"/jobs/{queued}/report/share", {}, headers={"Accept": "text/html"})
    assert refused.status_code == 409 and "A training report is made for a completed job" in refused.text
