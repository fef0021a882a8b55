"""The training analytics page (FR5.1.2, FR7.3.1, FR8.1.1): the projections' analyses of a real
month, narrowed to a date range, and the range's validation messages."""

from __future__ import annotations

import re

import psycopg

from domain.money import usd
from projections.analytics import by_preset, cost_quality, team_activity
from tests.integration.test_web_budget import seed_busy_month
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture

HTML = {"Accept": "text/html"}


def test_the_analytics_show_presets_tiers_failures_and_creators_of_all_jobs(web: WebRig) -> None:
    seed_busy_month(web)
    page = web.client("alice").get("/analytics", headers=HTML)
    assert page.status_code == 200, page.text
    text = page.text
    with psycopg.connect(web.database_url) as conn:
        presets, creators = by_preset(conn, "default"), team_activity(conn, "default")
    for row in presets:
        assert f'<tr class="preset-{row["preset"]}' in text
        if row["average_cost"] is not None:
            assert usd(row["average_cost"]) in text
    assert "Best performer — Conservative preset: 100% success rate" in text
    for row in creators:
        assert f'data-creator="{row["created_by"]}"' in text and usd(row["total_cost"]) in text
    assert 'id="total-jobs">8<' in text and outcomes(text) == "4 completed 1 failed 2 cancelled"
    assert '<tr class="tier-spot">' in text and '<tr class="tier-on_demand">' in text
    assert "<td>oom</td>" in text
    assert 'id="spot-savings">$' in text
    assert '<script src="/static/analytics.js">' in text and 'id="analytics-chart-data"' in text


def outcomes(page: str) -> str:
    """The summary's outcome counts, each a badge in its status's colours (partials/status.html)."""
    found = page.split('class="label outcome-counts">', 1)[1].split("</div>", 1)[0]
    assert found.count('<span class="status status-') == 3, found
    return " ".join(re.sub(r"<[^>]+>", " ", found).split())


def test_a_date_range_narrows_the_analyses_to_jobs_created_in_it(web: WebRig) -> None:
    seed_busy_month(web)
    text = web.client("bob").get("/analytics?since=2026-11-04&until=2026-11-15", headers=HTML).text
    # Acme advisor v2, Beta chatbot aggressive, the untagged experiment and the overridden demo.
    assert 'id="total-jobs">4<' in text and outcomes(text) == "1 completed 1 failed 2 cancelled"
    assert 'value="2026-11-04"' in text and 'value="2026-11-15"' in text
    assert 'data-creator="alice"' in text and "<td>oom</td>" in text
    empty = web.client("bob").get("/analytics?since=2026-12-01", headers=HTML).text
    assert 'id="total-jobs">0<' in empty and "No failed job in this period." in empty
    assert web.client("bob").get("/analytics?period=30", headers=HTML).status_code == 200


def test_a_wrong_date_range_is_refused_with_its_message(web: WebRig) -> None:
    client = web.client("alice")
    bad = client.get("/analytics?since=2026-13-01", headers=HTML)
    assert bad.status_code == 400 and "Dates must be YYYY-MM-DD" in bad.text
    reversed_ = client.get("/analytics?since=2026-11-10&until=2026-11-01", headers=HTML)
    assert reversed_.status_code == 400 and "The start date must not be after the end date" in reversed_.text
    unknown = client.get("/analytics?period=12", headers=HTML)
    assert unknown.status_code == 400 and "unknown period" in unknown.text


def test_cost_against_quality_is_a_dot_per_completed_job_linked_to_it(web: WebRig) -> None:
    """FR5.1.2's scatter: the completed jobs of the month, the validation loss where the job was
    evaluated (else its final training loss, marked), in the page's SVG and the JSON analysis."""
    from tests.finance_month import utc

    month = seed_busy_month(web)
    evaluated = month.completed_spot
    with psycopg.connect(web.database_url) as conn:
        conn.execute("INSERT INTO job_metrics (job_id, step, attempt, loss, eval_loss, at) VALUES"
                     " (%s, 850, 1, 0.33, 0.2875, %s), (%s, 900, 1, 0.31, 'NaN', %s)",
                     (evaluated, utc(11, 3, 13, 30), evaluated, utc(11, 3, 13, 39)))
        points = {p["job_id"]: p for p in cost_quality(conn, "default")}
    # completed only
    assert set(points) == {month.completed_spot, month.recovered_spot, month.completed_on_demand, month.october}
    # NaN skipped
    assert (points[month.completed_spot]["loss"], points[month.completed_spot]["loss_kind"]) == (0.2875, "validation")
    assert (points[month.recovered_spot]["loss"], points[month.recovered_spot]["loss_kind"]) == (0.312, "training")
    with psycopg.connect(web.database_url) as conn:  # no final loss reported: the last finite logged one
        conn.execute("UPDATE job_costs SET final_loss = NULL WHERE job_id = %s", (month.october,))
        conn.execute("INSERT INTO job_metrics (job_id, step, attempt, loss, at) VALUES (%s, 10, 1, 0.45, %s),"
                     " (%s, 11, 1, 'NaN', %s)", (month.october, utc(11, 1, 4, 0), month.october, utc(11, 1, 4, 1)))
        fallback = {p["job_id"]: p for p in cost_quality(conn, "default")}[month.october]
        conn.execute("UPDATE job_costs SET final_loss = 0.312 WHERE job_id = %s", (month.october,))
        conn.execute("DELETE FROM job_metrics WHERE job_id = %s", (month.october,))
    assert (fallback["loss"], fallback["loss_kind"]) == (0.45, "training")
    text = web.client("alice").get("/analytics", headers=HTML).text
    chart = text[text.index('id="cost-quality"'):text.index('id="trend"')]
    for job_id, p in points.items():
        assert re.search(rf'<a href="/jobs/{job_id}" aria-label="[^"]+: {re.escape(usd(p["total_cost"]))}, [^"]+">'
                         rf'<circle class="dot preset-dot-{p["preset"]}', chart)  # a link with its name
        assert usd(p["total_cost"]) in chart
    assert chart.count("<circle class=\"dot preset-dot-") == 4 + len({p["preset"] for p in points.values()})  # + legend
    assert "0.2875</td>" in chart and "0.3120 (training)</td>" in chart
    answer = web.client("alice").get("/api/analytics/cost-quality")
    assert answer.status_code == 200
    assert ({row["job_id"]: row["loss"] for row in answer.json()["rows"]}
            == {str(k): v["loss"] for k, v in points.items()})
    narrowed = web.client("alice").get("/analytics?since=2026-11-04&until=2026-11-15", headers=HTML).text
    section = narrowed[narrowed.index('id="cost-quality"'):narrowed.index('id="trend"')]
    assert section.count("<circle class=\"dot preset-dot-") - section.count("<svg width=") == 1  # v2 alone
    assert f'data-job="{month.recovered_spot}"' in narrowed and f'data-job="{month.completed_spot}"' not in narrowed
