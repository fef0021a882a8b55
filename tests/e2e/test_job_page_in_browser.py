"""The job page and the notification area in a real browser (issue #23), against the web app on real
PostgreSQL with seeded jobs (tests/web_rig.py): the loss chart in the first screen at 1440×900 and
390×844 with its legend's values shown without hovering, the primary action following the job's state
(a cancel shows "Cancelled" at once and the read model's confirmation when it lands), and the bell's
unread count with "Mark all read"."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from tests.e2e.browser import launch_chromium, page, page_problems, screenshot, sign_in  # noqa: F401
from tests.helpers import wait_for
from tests.integration.test_web_job_detail import Served, add_job, ago, run, telemetry, training
from tests.web_rig import PASSWORD, WebRig, web  # noqa: F401 - the fixture

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.slow, pytest.mark.browser]
DESKTOP, PHONE = {"width": 1440, "height": 900}, {"width": 390, "height": 844}


@pytest.fixture
def browser(web: WebRig) -> Iterator[Browser]:
    """Chromium, started after the rig: Playwright's sync API keeps an event loop running in this
    thread, where the rig's set-up (declaring the streams) runs one of its own."""
    yield from launch_chromium()


def off_the_loop(work: Callable[[], Any]) -> None:
    """Runs `work` (which may start an event loop of its own: the metric history's rebuild) in a thread."""
    failed: list[BaseException] = []

    def run_it() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            failed.append(exc)

    thread = threading.Thread(target=run_it)
    thread.start()
    thread.join(120)
    if failed:
        raise failed[0]


@pytest.fixture
def site(web: WebRig, browser: Browser) -> Iterator[Served]:
    """The app under uvicorn (the live stream needs a real server)."""
    served = Served(web, "alice")
    try:
        yield served
    finally:
        served.close()


def chart_drawn(tab: Page) -> bool:
    return tab.locator("#loss-chart").get_attribute("data-state") == "drawn"


def first_action(tab: Page) -> str:
    return tab.locator("#jd-actions .jd-actions > :first-child").first.inner_text().split("\n")[0].strip()


def test_the_loss_chart_is_in_the_first_screen_on_a_desktop_and_a_phone(
    web: WebRig, site: Served, page: Page, screenshot, page_problems: list[str],
) -> None:
    job = add_job(web)
    training(web, job)
    telemetry(web, job, range(1, 851))
    off_the_loop(web.project)
    sign_in(page, site.base, "alice", PASSWORD)
    for size, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        page.goto(f"{site.base}/jobs/{job}")
        wait_for(lambda: chart_drawn(page), timeout=30, interval=0.1, message="the loss chart drawn")
        box = page.locator("#loss-chart").bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= size["height"], (name, box)
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"], name
        # the legend says the latest values without hovering
        legend = page.locator("#jd-legend").inner_text()
        assert "Training loss" in legend and "Validation loss" in legend and "0.233" in legend, legend
        assert "1,247" in page.locator("#job-throughput").inner_text()  # tokens/s beside the curve
        screenshot(f"job-page-{name}")
    page.set_viewport_size(DESKTOP)
    page.locator("#jd-log").check()  # a log scale, and smoothing off: the same points drawn again
    page.locator("#jd-smoothing").evaluate("el => { el.value = '0'; el.dispatchEvent(new Event('input')); }")
    wait_for(lambda: "raw" not in page.locator("#jd-legend").inner_text(), timeout=10, interval=0.1,
             message="the legend without smoothing")
    assert page.locator("#loss-chart .u-axis").count() == 2  # one loss axis shared by both curves
    assert [p for p in page_problems if not p.endswith("net::ERR_ABORTED")] == []


def test_the_primary_action_follows_the_state_and_a_cancel_never_contradicts_itself(
    web: WebRig, site: Served, page: Page, screenshot, page_problems: list[str],
) -> None:
    job, paused = add_job(web), add_job(web, name="Paused run")
    training(web, job)
    training(web, paused)
    run(web, paused, lambda j: j.request_pause("alice", "member", ago(3)),
        lambda j: j.interrupt("sigterm", 850, 1, ago(2)), lambda j: j.pod_stopped("pod-1", ago(1)))
    off_the_loop(web.project)
    sign_in(page, site.base, "alice", PASSWORD)
    page.set_viewport_size(DESKTOP)
    page.goto(f"{site.base}/jobs/{paused}")
    assert first_action(page) == "Resume"
    page.goto(f"{site.base}/jobs/{job}")
    assert first_action(page) == "Cancel Job"
    page.locator("#jd-menu summary").click()
    assert page.locator("#jd-pause button").is_visible()  # the rest is in the menu
    page.keyboard.press("Escape")
    page.locator("details.jd-cancel summary").click()
    page.select_option(".jd-cancel-form select[name=reason]", "testing")
    page.locator(".jd-cancel-form input[name=confirm]").check()
    with page.expect_navigation():
        page.locator(".jd-cancel-form button[type=submit]").click()
    # No projection has run: the read model still says training, the page says what was recorded.
    header = page.locator("#job-header").inner_text()
    assert "Cancelled" in header and "confirming" in header and "Training" not in header, header
    assert page.locator("details.jd-cancel").count() == 0 and first_action(page) != "Cancel Job"
    assert "notice=" not in page.url  # said once: a reload does not repeat it
    screenshot("cancelled-confirming")
    off_the_loop(web.project)  # the read model's confirmation lands: the live stream ends and the page is drawn again
    wait_for(lambda: "confirming" not in page.locator("#job-header").inner_text()
             and page.locator("#jd-outcome").count() == 0, timeout=30, interval=0.2,
             message="the read model's confirmation, then the ended job's page drawn again")
    assert "Cancelled" in page.locator("#job-header").inner_text() and first_action(page) != "Cancel Job"
    screenshot("cancelled")
    assert [p for p in page_problems if not p.endswith("net::ERR_ABORTED")] == []


def test_the_bell_counts_unread_notifications_and_mark_all_read_clears_them(
    web: WebRig, site: Served, page: Page, screenshot, page_problems: list[str],
) -> None:
    job = add_job(web)
    off_the_loop(web.project)
    with psycopg.connect(web.database_url, autocommit=True) as conn:  # as the notifier writes them
        for n, kind in enumerate(("interrupted", "completed")):
            conn.execute("INSERT INTO notification_banners (event_key, team, user_name, kind, level, message, link,"
                         " job_id, event_version) VALUES (%s, 'default', 'alice', %s, 'info', %s, %s, %s, %s)",
                         (f"pipeline:{n}", kind, f"Advisor tone v1 {kind}", f"/jobs/{job}", job, n + 1))
        conn.execute("UPDATE notification_banners SET dismissed_at = now(), superseded_by = 'pipeline:1'"
                     " WHERE event_key = 'pipeline:0'")  # a job's older notification, replaced by its newer one
        conn.execute("INSERT INTO notification_banners (event_key, team, kind, level, message, link) VALUES"
                     " ('budget:1', 'default', 'budget_90', 'warning', '90% of the monthly budget used', '/budget')")
    sign_in(page, site.base, "alice", PASSWORD)
    page.set_viewport_size(DESKTOP)
    page.goto(f"{site.base}/jobs")
    assert page.locator("#inbox-count").inner_text() == "2"
    assert page.locator("section.banners").count() == 0  # nothing needs action now: no banner under the header
    page.locator("#inbox summary").click()
    items = page.locator("#inbox .inbox-item")
    assert items.count() == 2 and page.locator("#inbox .inbox-unread").count() == 2
    assert "interrupted" not in page.locator("#inbox").inner_text()
    screenshot("bell-open")
    with page.expect_navigation():
        page.locator("#inbox-read-all button").click()
    assert page.locator("#inbox-count").count() == 0
    page.locator("#inbox summary").click()
    assert items.count() == 2 and page.locator("#inbox .inbox-unread").count() == 0
    screenshot("bell-read")
    # per person: bob still has the team's notification to read
    page.context.clear_cookies()
    sign_in(page, site.base, "bob", PASSWORD)
    assert page.locator("#inbox-count").inner_text() == "1"
    assert [p for p in page_problems if not p.endswith("net::ERR_ABORTED")] == []
