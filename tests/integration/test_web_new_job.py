"""The new-job flow and the review & start page through HTTP (web/pages/new_job.py, review_job.py): create a
configured job, review it, start it (queued, its budget reserved), with every refusal."""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import re
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import psycopg

from domain.budget_month import budget_month
from domain.cost_model import estimate_cost, insufficient_budget
from domain.gpu import PricingTier, gpu_option
from domain.job_status import JobStatus
from domain.money import usd
from domain.presets import AGGRESSIVE, BALANCED, CONSERVATIVE
from domain.training_file import summarize, validate
from domain.values import ArtifactRef
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture

SAMPLE = Path(__file__).parents[2] / "samples" / "financial-advisory.json"
HTML = {"Accept": "text/html"}
P18 = Decimal("0.18")  # no spot history yet: the spec's rate (domain.gpu.DEFAULT_INTERRUPTION_RATE)
JUSTIFICATION = "Quarterly client delivery for Acme: the contract covers this extra GPU spend in full."


def add_file(web: WebRig, conversations: int | None = None, name: str = "financial-advisory.json",
             pairs: int | None = None) -> UUID:
    """A catalogued training file: the sample, or its first N conversations; `pairs` fakes a bigger file."""
    data = SAMPLE.read_bytes()
    if conversations is not None:
        doc = json.loads(data)
        doc["conversations"] = doc["conversations"][:conversations]
        data = json.dumps(doc).encode()
    report, stats = validate(data), summarize(data)
    sha = hashlib.sha256(data + (str(pairs).encode() if pairs else b"")).hexdigest()
    if pairs is not None:
        stats = dataclasses.replace(stats, conversation_count=2 * stats.conversation_count, training_pair_count=pairs,
                                    sha256=sha)
    ref = ArtifactRef("files", f"abc/{name}", sha, len(data))
    return web.store.app.register_training_file(name, ref, report, stats, "alice", datetime.now(timezone.utc))


def job_form(file_id: UUID, **overrides: object) -> dict[str, object]:
    return {"training_file_id": str(file_id), "preset": "balanced", "gpu_tier": "spot",
            "name": "Advisor tone v2", "name_default": "", "description": "First production model for Acme",
            "notes": "Hypothesis: *warmer* answers", "tags": ["experiment", "client-delivery"],
            "custom_tags": "iteration-3", "client": "Acme Financial", "project": "Q4 2025 Model Enhancement",
            "action": "review"} | overrides


def plain(page: str) -> str:
    """The page's text as a person reads it: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def created(answer: object) -> UUID:
    assert answer.status_code == 303, answer.text
    found = re.fullmatch(r"/jobs/([0-9a-f-]{36})/review", answer.headers["location"])
    assert found, answer.headers["location"]
    return UUID(found.group(1))


CHECKED = {"check_reviewed": "1", "check_cost": "1", "check_approval": "1"}


def month() -> str:
    return budget_month(datetime.now(timezone.utc), "UTC")


def versions(web: WebRig, job_id: UUID) -> tuple[int, int | None]:
    """The job's and this month's budget's versions: equal before and after = nothing changed."""
    budget = web.store.app.budget(month())
    return web.store.app.get_job(job_id).version, budget.version if budget else None


def test_a_job_is_created_configured_reviewed_then_started_with_its_budget_reserved(web: WebRig) -> None:
    file_id = add_file(web)
    web.project()
    alice = web.client("alice")
    page = alice.get(f"/jobs/new?file={file_id}", headers=HTML)
    assert page.status_code == 200
    text = plain(page.text)
    expected = estimate_cost(BALANCED, 1419, gpu_option(PricingTier.SPOT), interruption_probability=P18).for_display()
    assert "financial-advisory.json" in text and "300 conversations, 1,419 training pairs" in text
    assert f"{usd(expected.cost_min)} - {usd(expected.cost_max)}" in text  # the cost panel, from the domain
    assert re.search(r'value="balanced" checked', page.text)  # 150-300 conversations: Balanced (FR1.1.2)
    assert "Spot Instance (Recommended)" in text and "$2.49" in text and "Save 69% ($5.50/hr)" in text
    assert "Production-ready configuration for most use cases" in text
    assert "Remaining budget this month: $500.00" in text
    assert f"financial-advisory.json - Balanced - {datetime.now(timezone.utc).date()}" in text  # default name

    job_id = created(web.form("alice", "/jobs/new", job_form(file_id)))
    job = web.store.app.get_job(job_id)
    assert job.status is JobStatus.CONFIGURED and job.queued_at is None  # created, not started
    assert (job.name, job.tags, job.client) == ("Advisor tone v2", ["experiment", "client-delivery", "iteration-3"],
                                                "Acme Financial")
    assert job.configuration["estimated_cost_max"] == estimate_cost(
        BALANCED, 1419, gpu_option(PricingTier.SPOT), interruption_probability=P18).cost_max
    assert web.store.app.budget(month()) is None  # nothing reserved yet

    review = alice.get(f"/jobs/{job_id}/review", headers=HTML)
    assert review.status_code == 200
    text = plain(review.text)
    cost_range = f"{usd(expected.cost_min)}-{usd(expected.cost_max)}"
    for shown in ("Review Training Configuration - Final Check Before Starting", f"Total Estimated Cost: {cost_range}",
                  "LoRA Rank (r)", "Gradient Accumulation", "2 steps", "H100 PCIe 80GB", "$2.49/hr",
                  "I have reviewed the complete training configuration above and confirm all settings are correct",
                  f"I understand the estimated cost ({cost_range}) and agree to proceed with charges within this range",
                  "I have obtained necessary budget approval", "ℹ First Training Run", "Acme Financial → Q4 2025",
                  f"This job cost: +{usd(expected.cost_max)} (estimated max)", "Remaining budget after this job"):
        assert shown in text, shown

    unchecked = web.form("alice", f"/jobs/{job_id}/start", {"check_reviewed": "1", "check_cost": "1"})
    assert unchecked.status_code == 400
    assert "Check all three confirmations before starting the training." in unchecked.text
    assert web.store.app.get_job(job_id).status is JobStatus.CONFIGURED

    started = web.form("alice", f"/jobs/{job_id}/start", CHECKED)
    assert started.status_code == 303 and started.headers["location"].startswith(f"/jobs/{job_id}?notice=")
    job = web.store.app.get_job(job_id)
    assert job.status is JobStatus.QUEUED
    assert web.store.app.budget(month()).reservations[str(job_id)] == job.estimated_cost_max
    assert alice.get(f"/jobs/{job_id}/review", headers=HTML, follow_redirects=False).headers["location"] == \
        f"/jobs/{job_id}"  # started: no second review


def test_every_invalid_field_shows_the_spec_message_and_the_form_keeps_its_values(web: WebRig) -> None:
    file_id, small, tiny = add_file(web), add_file(web, 60, "small.json"), add_file(web, 40, "tiny.json")
    web.project()
    cases = [
        ({"name": "ab"}, "Job name must be between 3 and 100 characters"),
        ({"name": "x" * 101}, "Job name must be between 3 and 100 characters"),
        ({"custom_tags": "Bad_Tag"},
         "Tag 'bad_tag' must be 3-30 characters: lowercase letters, digits and hyphens only"),
        ({"custom_tags": " ".join(f"tag-{n}" for n in range(10))}, "Maximum 10 tags allowed"),
        ({"description": "d" * 501}, "Description must be at most 500 characters (got 501)"),
        ({"notes": "n" * 2001}, "Notes must be at most 2000 characters (got 2001)"),
        ({"client": "c" * 101}, "Client must be at most 100 characters"),
        ({"training_file_id": ""}, "Choose a training file"),
        ({"training_file_id": str(tiny)}, "Insufficient conversations"),
        ({"training_file_id": str(small), "preset": "aggressive"}, "Unlock after 3 successful training runs"),
        ({"gpu_tier": "gold"}, "Choose Spot Instance or On-Demand Instance"),
    ]
    for change, message in cases:
        answer = web.form("alice", "/jobs/new", job_form(file_id, description="Keep me <b>here</b>") | change)
        assert answer.status_code == 400, (change, answer.status_code)
        assert message in plain(answer.text), change
        if "description" not in change:
            assert "Keep me &lt;b&gt;here&lt;/b&gt;</textarea>" in answer.text  # kept, escaped
    web.project()
    with psycopg.connect(web.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0  # nothing was created


def test_on_demand_over_150_dollars_asks_for_confirmation_first(web: WebRig) -> None:
    big = add_file(web, pairs=4000, name="big.json")
    web.project()
    spot = estimate_cost(BALANCED, 4000, gpu_option(PricingTier.SPOT), interruption_probability=P18)
    on_demand = estimate_cost(BALANCED, 4000, gpu_option(PricingTier.ON_DEMAND), interruption_probability=P18)
    asked = web.form("alice", "/jobs/new", job_form(big, gpu_tier="on_demand"))
    assert asked.status_code == 400
    text = plain(asked.text)
    assert (f"High-Cost On-Demand Instance - Estimated cost: {usd(on_demand.total_cost)}. Spot instance would save"
            f" {usd(on_demand.total_cost - spot.total_cost)}. Are you sure?") in text
    assert "Continue with On-Demand" in text and "Long training run - on-demand guarantees completion" in text
    confirmed = job_form(big, gpu_tier="on_demand", confirm_on_demand=["", "1"])  # the hidden field, the button
    job_id = created(web.form("alice", "/jobs/new", confirmed))
    assert web.store.app.get_job(job_id).configuration["gpu_tier"] == "on_demand"
    spot_instead = created(web.form("alice", "/jobs/new", job_form(big, gpu_tier="on_demand", use_spot="1",
                                                                   name="Spot after all")))
    assert web.store.app.get_job(spot_instead).configuration["gpu_tier"] == "spot"


def test_the_estimate_endpoints_return_the_domains_numbers(web: WebRig) -> None:
    file_id = add_file(web)
    web.project()
    alice = web.client("alice")
    answer = alice.get("/jobs/new/estimate.json", params={"training_file_id": str(file_id), "preset": "aggressive",
                                                          "gpu_tier": "on_demand"})
    assert answer.status_code == 200, answer.text
    expected = estimate_cost(AGGRESSIVE, 1419, gpu_option(PricingTier.ON_DEMAND), interruption_probability=P18)
    shown = expected.for_display()
    body = answer.json()
    assert {k: body[k] for k in ("duration_hours", "cost_min", "cost_max", "total_cost", "base_gpu_cost",
                                 "interruption_overhead", "hourly_rate")} == {
        k: str(getattr(shown, k)) for k in ("duration_hours", "cost_min", "cost_max", "total_cost", "base_gpu_cost",
                                            "interruption_overhead", "hourly_rate")}
    assert body["budget"] == {"month": month(), "limit": "500.00", "remaining": "500.00", "fits": True,
                              "blocked": False, "message": None, "refusal": None}
    fragment = alice.get("/jobs/new/estimate", headers=HTML, params={
        "training_file_id": str(file_id), "preset": "conservative", "gpu_tier": "spot",
        "previous_total": str(shown.total_cost)})
    conservative = estimate_cost(CONSERVATIVE, 1419, gpu_option(PricingTier.SPOT),
                                 interruption_probability=P18).for_display()
    text = plain(fragment.text)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert f"{usd(conservative.cost_min)} - {usd(conservative.cost_max)}" in text
    assert f"↓ {usd(shown.total_cost - conservative.total_cost)} savings vs previous" in text
    assert alice.get("/jobs/new/estimate.json", params={"training_file_id": str(file_id),
                                                        "preset": "turbo"}).status_code == 400
    assert alice.get("/jobs/new/estimate.json", params={"training_file_id": "nope"}).status_code == 400


def test_the_api_and_the_cost_panel_price_a_job_alike_once_spot_history_exists(web: WebRig) -> None:
    from tests.integration.test_web_job_detail import add_job, run, training

    file_id = add_file(web)
    earlier = add_job(web, name="Earlier spot run")
    training(web, earlier)
    run(web, earlier, lambda j: j.interrupt("preempted", 850, 1, datetime.now(timezone.utc)))
    web.project()
    alice = web.client("alice")
    panel = alice.get("/jobs/new/estimate.json", params={"training_file_id": str(file_id), "preset": "balanced",
                                                         "gpu_tier": "spot"}).json()
    assert panel["interruption_probability"] == "1"  # 1 of 1 recent spot job was interrupted, not the spec's 18 %
    answer = web.client().post("/api/jobs", headers=web.token("alice"),
                               json={"training_file_id": str(file_id), "preset": "balanced", "start": False})
    assert answer.status_code == 201, answer.text
    job = web.store.app.get_job(UUID(answer.json()["id"]))
    assert str(usd(job.configuration["estimated_cost_max"])) == f"${panel['cost_max']}"


def test_a_member_over_budget_is_refused_and_a_manager_overrides_with_a_justification(web: WebRig) -> None:
    file_id = add_file(web)
    now = datetime.now(timezone.utc)
    web.store.app.change_limit(month(), Decimal("20"), "bob", "manager", JUSTIFICATION, now)
    web.project()
    page = web.client("alice").get(f"/jobs/new?file={file_id}", headers=HTML)
    estimate = estimate_cost(BALANCED, 1419, gpu_option(PricingTier.SPOT), interruption_probability=P18)
    assert insufficient_budget(estimate, Decimal(20)) in plain(page.text)
    assert "Request limit increase" in page.text and "Manager Override" not in page.text  # alice is a member
    assert "Manager Override" in web.client("bob").get(f"/jobs/new?file={file_id}", headers=HTML).text

    job_id = created(web.form("alice", "/jobs/new", job_form(file_id)))
    before = versions(web, job_id)
    refused = web.form("alice", f"/jobs/{job_id}/start", CHECKED)
    assert refused.status_code == 409
    text = plain(refused.text)
    assert (f"❌ Budget Exceeded - Estimated Cost: {usd(estimate.cost_max)}, Remaining Budget: $20.00, Shortfall:"
            f" {usd(estimate.cost_max - 20)}") in text
    # Issue #23: said once (the refusal's figures), and Start is disabled with the reason beside it.
    assert text.count("Budget Exceeded") == 1 and "Insufficient Budget" not in text
    assert 'disabled aria-describedby="rv-start-blocked"' in refused.text and "Start is not available" in text
    forbidden = web.form("alice", f"/jobs/{job_id}/start", CHECKED | {"override_justification": JUSTIFICATION})
    assert forbidden.status_code == 403 and "Only a manager or admin may override the budget limit" in forbidden.text
    assert versions(web, job_id) == before  # nothing changed

    bob = web.client("bob")
    assert "Justification Required" in bob.get(f"/jobs/{job_id}/review", headers=HTML).text
    short = web.form("bob", f"/jobs/{job_id}/start", CHECKED | {"override_justification": "because"})
    assert short.status_code == 400
    assert "An override needs a justification of at least 20 characters" in short.text
    assert versions(web, job_id) == before
    overridden = web.form("bob", f"/jobs/{job_id}/start", CHECKED | {"override_justification": JUSTIFICATION})
    assert overridden.status_code == 303
    assert web.store.app.get_job(job_id).status is JobStatus.QUEUED
    web.project()
    with psycopg.connect(web.database_url) as conn:
        row = conn.execute("SELECT actor, justification FROM budget_decisions WHERE kind = 'override'").fetchone()
    assert row == ("bob", JUSTIFICATION)


def test_a_month_past_its_limit_says_so_and_never_shows_a_negative_remaining_budget(web: WebRig) -> None:
    from datetime import timedelta

    file_id = add_file(web)
    now = datetime.now(timezone.utc)
    app = web.store.app
    app.change_limit(month(), Decimal("20"), "bob", "manager", JUSTIFICATION, now)
    web.project()
    job_id = created(web.form("bob", "/jobs/new", job_form(file_id)))
    assert web.form("bob", f"/jobs/{job_id}/start", CHECKED | {"override_justification": JUSTIFICATION}
                    ).status_code == 303
    hours = Decimal("8.5141")  # at $2.49/h: $21.20 spent, 106 % of the $20 limit
    app.update_job(job_id, lambda j: j.start_provisioning("spot", now - timedelta(hours=float(hours))))
    app.update_job(job_id, lambda j: j.pod_started("pod-1", 1, Decimal("2.49"), now - timedelta(hours=float(hours))))
    app.record_job_spend(job_id, now)
    web.project()
    text = plain(web.client("alice").get(f"/jobs/new?file={file_id}", headers=HTML).text)
    assert "⚠ Budget Exceeded: 106% of monthly budget used ($21.20 of $20.00), $1.20 over the limit." in text
    assert "Critical Budget Alert" not in text
    assert "Remaining budget this month: $0.00: already $15.81 over the limit" in text  # $21.20 spent + $14.61 held
    assert re.search(r"(^|[\s(])-\$", text) is None  # no negative amount anywhere


def test_a_member_starts_a_job_past_the_limit_when_the_budget_does_not_block_new_jobs(web: WebRig) -> None:
    """FR7.2.1 "Block new jobs" off: the panel says the job can still start, the start goes through
    with the over-budget warning and no override, and the decision is recorded."""
    file_id = add_file(web)
    now = datetime.now(timezone.utc)
    web.store.app.change_limit(month(), Decimal("20"), "bob", "manager", JUSTIFICATION, now)
    web.project()
    params = {"training_file_id": str(file_id), "preset": "balanced", "gpu_tier": "spot"}
    assert web.client("alice").get("/jobs/new/estimate.json", params=params).json()["budget"]["blocked"] is True
    web.store.app.set_budget_blocking(month(), False, "bob", "manager", "Client pays for overruns", now)
    web.project()
    budget = web.client("alice").get("/jobs/new/estimate.json", params=params).json()["budget"]
    assert budget["blocked"] is False and budget["refusal"] is None
    panel = plain(web.client("alice").get(f"/jobs/new?file={file_id}", headers=HTML).text)
    assert "new jobs are not blocked when the budget is exceeded (Budget Controls): the job can still start" in panel
    job_id = created(web.form("alice", "/jobs/new", job_form(file_id)))
    started = web.form("alice", f"/jobs/{job_id}/start", CHECKED)
    assert started.status_code == 303, started.text
    assert web.store.app.get_job(job_id).status is JobStatus.QUEUED
    web.project()
    with psycopg.connect(web.database_url) as conn:
        kinds = conn.execute("SELECT kind, actor FROM budget_decisions WHERE job_id = %s", (job_id,)).fetchall()
        logged = conn.execute("SELECT category FROM event_log WHERE job_id = %s AND topic = 'Budget.OverLimitAllowed'",
                              (job_id,)).fetchall()
    assert kinds == [("over_limit_allowed", "alice")] and logged == [("warning",)]


def test_a_limit_increase_is_requested_from_the_panel_and_from_the_review(web: WebRig) -> None:
    file_id = add_file(web)
    web.store.app.change_limit(month(), Decimal("20"), "bob", "manager", JUSTIFICATION, datetime.now(timezone.utc))
    web.project()
    form = job_form(file_id, name="Keep this name", new_limit="600", limit_month=month())
    short = web.form("alice", "/jobs/new/limit-increase", form | {"limit_justification": "please"})
    assert short.status_code == 400
    assert "Justification (required) must be at least 50 characters" in short.text
    assert 'value="Keep this name"' in short.text
    assert web.store.app.budget(month()).requests == {}
    sent = web.form("alice", "/jobs/new/limit-increase", form | {"limit_justification": JUSTIFICATION})
    assert sent.status_code == 200 and "Budget increase to $600.00 for" in sent.text
    assert 'value="Keep this name"' in sent.text
    [request] = web.store.app.budget(month()).requests.values()
    assert (request["new_limit"], request["requested_by"], request["status"]) == (Decimal(600), "alice", "pending")

    job_id = created(web.form("alice", "/jobs/new", job_form(file_id)))
    lower = web.form("alice", f"/jobs/{job_id}/limit-increase",
                     {"new_limit": "10", "limit_justification": JUSTIFICATION, "limit_month": month()})
    assert lower.status_code == 400 and "The new limit must be above the current $20.00" in lower.text
    again = web.form("carol", f"/jobs/{job_id}/limit-increase", {"new_limit": "700", "limit_month": month(),
                                                                  "limit_justification": JUSTIFICATION})
    assert again.status_code == 303 and again.headers["location"].startswith(f"/jobs/{job_id}/review?notice=")
    assert len(web.store.app.budget(month()).requests) == 2


def test_a_configured_job_is_edited_or_discarded_before_it_starts(web: WebRig) -> None:
    file_id = add_file(web)
    web.project()
    job_id = created(web.form("alice", "/jobs/new", job_form(file_id)))
    edit = web.client("alice").get(f"/jobs/new?edit={job_id}", headers=HTML)
    assert edit.status_code == 200 and 'value="Advisor tone v2"' in edit.text and f'value="{job_id}"' in edit.text
    assert re.search(r'value="client-delivery" checked', edit.text)
    again = web.form("alice", "/jobs/new", job_form(file_id, job_id=str(job_id), name="Advisor tone v3",
                                                     preset="conservative", notes="", tags=["test"], custom_tags=""))
    assert created(again) == job_id
    job = web.store.app.get_job(job_id)
    expected = estimate_cost(CONSERVATIVE, 1419, gpu_option(PricingTier.SPOT), interruption_probability=P18)
    assert (job.name, job.tags, job.configuration["preset"]) == ("Advisor tone v3", ["test"], "conservative")
    assert job.configuration["estimated_cost_max"] == expected.cost_max and job.status is JobStatus.CONFIGURED

    twin = created(web.form("alice", "/jobs/new", job_form(file_id, name="advisor tone V3")))
    web.project()
    assert "⚠ Similar job name already exists. Consider adding version number or distinguishing details." in \
        plain(web.client("alice").get(f"/jobs/{twin}/review", headers=HTML).text)

    discarded = web.form("alice", f"/jobs/{job_id}/discard", {})
    assert discarded.status_code == 303 and discarded.headers["location"].startswith("/jobs?notice=")
    job = web.store.app.get_job(job_id)
    assert job.status is JobStatus.CANCELLED and job.queued_at is None
    assert web.store.app.budget(month()) is None  # never reserved, never charged


def test_a_script_in_the_name_or_notes_is_shown_escaped_on_the_review_page(web: WebRig) -> None:
    file_id = add_file(web)
    web.project()
    job_id = created(web.form("alice", "/jobs/new", job_form(
        file_id, name="<script>alert(1)</script> run", description="<img src=x onerror=alert(3)>",
        notes="<script>alert(2)</script> **bold**")))
    page = web.client("alice").get(f"/jobs/{job_id}/review", headers=HTML)
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; run" in page.text
    assert "&lt;script&gt;alert(2)&lt;/script&gt; <strong>bold</strong>" in page.text


def test_the_cost_estimate_downloads_as_a_pdf_with_the_panels_figures(web: WebRig) -> None:
    """FR1.2.1 "Download Cost Estimate": configuration, breakdown, the alternatives, historical
    accuracy and the budget, the same figures as the estimate endpoint."""
    import io

    from pypdf import PdfReader

    file_id = add_file(web)
    web.project()
    alice = web.client("alice")
    params = {"training_file_id": str(file_id), "preset": "balanced", "gpu_tier": "spot"}
    body = alice.get("/jobs/new/estimate.json", params=params).json()
    panel = alice.get(f"/jobs/new?file={file_id}", headers=HTML).text
    assert 'id="nj-estimate-pdf"' in panel and "/jobs/new/estimate.pdf?training_file_id=" in panel
    answer = alice.get("/jobs/new/estimate.pdf", params=params)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    assert re.fullmatch(r'attachment; filename="cost-estimate-financial-advisory\.json-balanced-spot-\d{8}-\d{6}\.pdf"',
                        answer.headers["content-disposition"]), answer.headers["content-disposition"]
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(answer.content)).pages).split())
    conservative = estimate_cost(CONSERVATIVE, 1419, gpu_option(PricingTier.ON_DEMAND),
                                 interruption_probability=P18).for_display()
    for expected in ("Cost estimate: Balanced preset, Spot Instance", "1,419 training pairs",
                     f"Total estimate {usd(Decimal(body['cost_min']))} - {usd(Decimal(body['cost_max']))}",
                     f"Expected cost {usd(Decimal(body['total_cost']))}",
                     f"GPU compute {usd(Decimal(body['base_gpu_cost']))}", "Spot interruption buffer",
                     "Alternative configurations", "Balanced (this estimate)",
                     f"{usd(conservative.cost_min)} - {usd(conservative.cost_max)}",
                     "Historical accuracy", f"Budget ({month()})", "Fits the remaining budget"):
        assert expected in text, (expected, text)
    wrong = alice.get("/jobs/new/estimate.pdf", params=params | {"preset": "turbo"}, headers=HTML)
    assert wrong.status_code == 400 and "turbo" in wrong.text
    missing = alice.get("/jobs/new/estimate.pdf", params=params | {"training_file_id": "nope"}, headers=HTML)
    assert missing.status_code == 400 and "Choose a valid training file" in missing.text


INTERNALS = ("PostgreSQL", "bigint", "numeric", "sys.set_int_max_str_digits", "Integer value out of range", "msgspec",
             "Traceback")


def says_nothing_internal(text: str) -> bool:
    return not any(word in text for word in INTERNALS)


def job_events(web: WebRig) -> list[str]:
    with psycopg.connect(web.database_url) as conn:
        return [t for (t,) in conn.execute("SELECT topic FROM pipeline_events WHERE topic LIKE 'TrainingJob.%'")]


def test_a_nul_character_in_a_job_field_is_refused_by_name_on_the_api_and_the_form(web: WebRig) -> None:
    file_id = add_file(web)
    web.project()
    token = web.token("alice")
    for field in ("name", "description", "notes", "client", "project"):
        body = {"training_file_id": str(file_id), "name": "Advisor tone", "start": False, field: "Acme\x00 run"}
        answer = web.client().post("/api/jobs", json=body, headers=token)
        assert answer.status_code == 400, (field, answer.text)
        assert answer.json()["detail"] == f"{field} contains a NUL character (U+0000) at character 5: remove it"
    page = web.form("alice", "/jobs/new", job_form(file_id, notes="Hypothesis\x00"), headers=HTML)
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
    assert "The field notes contains a NUL character (U+0000) at character 11: remove it" in plain(page.text)
    assert says_nothing_internal(page.text)
    assert job_events(web) == []
    web.project()  # the read models still rebuild: nothing unstorable was recorded


def test_a_json_body_too_deep_or_with_a_huge_number_is_refused_at_its_line_and_column(web: WebRig) -> None:
    file_id = add_file(web)
    token = web.token("alice") | {"Content-Type": "application/json"}
    start = f'{{"training_file_id": "{file_id}",\n "name": "Advisor tone", "start": false, '  # line 2: 41 characters
    cases = {
        start + '"count": ' + "9" * 5000 + "}":
            "The request body cannot be read as JSON: a number with 5,000 digits (at most 4,300) at line 2, column 51",
        start + '"deep": ' + "[" * 10_000 + "]" * 10_000 + "}":
            "The request body cannot be read as JSON: arrays and objects nested more than 100 levels deep at line 2,"
            " column 149",
        start + '"cost": 1e400}':
            "The request body cannot be read as JSON: the number 1e400, too large to read (at most about 1.8e308)"
            " at line 2, column 50",
        start + '"name": "x\\ud800"}': "The request body cannot be read as JSON: \\ud800, half of a surrogate pair,"
                                      " which is not a character at line 2, column 52",
        start + "}": "The request body is not valid JSON: trailing comma in object at line 2, column 42",
        start: "The request body is not valid JSON: it ends at line 2, column 42 before its JSON does",
    }
    for body, detail in cases.items():
        answer = web.client().post("/api/jobs", content=body.encode(), headers=token)
        assert (answer.status_code, answer.json()["detail"]) == (400, detail), body[:80]
    assert job_events(web) == []


def test_a_job_is_started_once_and_a_second_start_says_it_already_started(web: WebRig) -> None:
    file_id = add_file(web)
    web.project()
    token = web.token("alice")
    made = web.client().post("/api/jobs", json={"training_file_id": str(file_id), "name": "Started at once"},
                             headers=token)
    assert made.status_code == 201 and made.json()["started"] is True  # `start` defaults to true
    job_id = made.json()["id"]
    assert web.store.app.get_job(UUID(job_id)).status is JobStatus.QUEUED
    before = versions(web, UUID(job_id))
    again = web.client().post(f"/api/jobs/{job_id}/start", headers=token)
    assert again.status_code == 409
    assert again.json()["detail"] == "This job has already started (status: queued)"
    page = web.form("alice", f"/jobs/{job_id}/start", CHECKED)
    assert page.status_code == 303 and page.headers["location"].startswith(f"/jobs/{job_id}?error=")
    web.project()
    shown = web.client("alice").get(page.headers["location"], headers=HTML)
    assert "This job has already started (status: queued)" in plain(shown.text)
    assert versions(web, UUID(job_id)) == before  # nothing reserved twice
