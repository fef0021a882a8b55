"""The training analytics page (FR5.1.2, FR7.3.1, FR8.1.1): the projections' analyses of a real
month, narrowed to a date range, and the range's validation messages."""

from __future__ import annotations

import psycopg

from domain.money import usd
from projections.analytics import by_preset, team_activity
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
    assert 'id="total-jobs">8<' in text and "4 completed, 1 failed, 2 cancelled" in text
    assert '<tr class="tier-spot">' in text and '<tr class="tier-on_demand">' in text
    assert "<td>oom</td>" in text
    assert 'id="spot-savings">$' in text
    assert '<script src="/static/analytics.js">' in text and 'id="analytics-chart-data"' in text


def test_a_date_range_narrows_the_analyses_to_jobs_created_in_it(web: WebRig) -> None:
    seed_busy_month(web)
    text = web.client("bob").get("/analytics?since=2026-11-04&until=2026-11-15", headers=HTML).text
    # Acme advisor v2, Beta chatbot aggressive, the untagged experiment and the overridden demo.
    assert 'id="total-jobs">4<' in text and "1 completed, 1 failed, 2 cancelled" in text
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
