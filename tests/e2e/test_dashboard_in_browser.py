"""The dashboard in a real browser against a whole stack: sign in, create and start a job through the
pages, watch its loss curve grow live, cancel another, every page screenshotted; and the vendored
front-end libraries (web/static/vendor) load and run without a CDN."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from tests.e2e.browser import LiveStack, browser, live_stack, page, page_problems, screenshot, sign_in  # noqa: F401
from tests.e2e.test_queue import upload_variant
from tests.helpers import wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.slow, pytest.mark.browser]
# Long enough runs to watch: each step of the tiny model takes 60 ms longer (a test-only fault).
STACK_ENV = {"PIPELINE_AGENT_MAX_STEPS": "150", "PIPELINE_AGENT_CHECKPOINT_EVERY": "50",
             "PIPELINE_AGENT_FAULT": "slow_steps:60"}
PASSWORD = "alice's long password"


def open_page(tab: Page, stack: LiveStack, path: str, shoot) -> Page:
    """Opens `path`; where sign-in is asked for first, shows the form, signs in as the admin, goes on."""
    tab.goto(stack.url(path))
    if urlsplit(tab.url).path == "/login":
        assert tab.locator("form#login").is_visible()
        shoot("login")
        sign_in(tab, stack.base, *stack.admin)
        tab.goto(stack.url(path))
    assert urlsplit(tab.url).path != "/login", f"{path} still asks for sign-in"
    return tab


def test_the_jobs_and_files_pages_open_with_their_titles_and_headings(
    page: Page, live_stack: LiveStack, screenshot, page_problems: list[str]
) -> None:
    open_page(page, live_stack, "/", screenshot)
    assert urlsplit(page.url).path in ("/", "/jobs"), page.url
    assert "LoRA Pipeline" in page.title()
    assert page.locator("h1").first.inner_text() == "Training jobs"
    screenshot("jobs")

    open_page(page, live_stack, "/files", screenshot)
    assert urlsplit(page.url).path == "/files", page.url
    assert page.title().startswith("Training files")
    assert page.locator("h1").first.inner_text() == "Training files"
    assert "Financial advisory - sample" in page.locator("table#files").inner_text()
    screenshot("files")
    assert page_problems == []


def test_the_vendored_htmx_sse_and_uplot_run_in_the_browser_and_a_chart_exports_as_png(
    page: Page, live_stack: LiveStack, screenshot, page_problems: list[str]
) -> None:
    page.goto(live_stack.url("/login"))  # any page of the site: /static needs no sign-in
    page.add_style_tag(url="/static/vendor/uPlot.min.css")
    for script in ("htmx.min.js", "htmx-ext-sse.min.js", "uPlot.iife.min.js"):
        page.add_script_tag(url=f"/static/vendor/{script}")
    assert page.evaluate("htmx.version") == "2.0.11"
    assert page.evaluate("typeof htmx.createEventSource") == "function"  # the SSE extension registered
    png = page.evaluate("""() => {
        const box = document.createElement("div"); box.id = "chart"; document.body.append(box);
        const steps = [...Array(50).keys()], loss = steps.map(s => 2.5 * Math.exp(-s / 15) + 0.2);
        const plot = new uPlot({title: "Training loss", width: 640, height: 300, scales: {x: {time: false}},
                                series: [{label: "step"}, {label: "loss", stroke: "#2563eb"}]}, [steps, loss], box);
        return plot.ctx.canvas.toDataURL("image/png");
    }""")
    assert png.startswith("data:image/png;base64,")
    assert base64.b64decode(png.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.locator("#chart .u-title").inner_text() == "Training loss"
    screenshot("vendored-chart")
    assert page_problems == []


def create_and_start(tab: Page, stack: LiveStack, name: str, file_id: str | None = None, shoot=None) -> str:
    """Through the pages: a training file (the first ready one by default), the Conservative preset,
    spot, a name → review → start."""
    files = tab.locator(f"input[name=training_file_id][value='{file_id}']" if file_id
                        else "input[name=training_file_id]")
    wait_for(lambda: tab.goto(stack.url("/jobs/new")) and files.count(), timeout=30, interval=0.5,
             message="the file on the new-job page")  # a new upload reaches the catalog read model soon after
    files.first.check()
    tab.locator("input[name=preset][value=conservative]").check()
    tab.locator("input[name=gpu_tier][value=spot]").check()
    tab.fill("#nj-name", name)
    # The cost panel follows every choice without a reload (FR1.2.1).
    wait_for(lambda: tab.locator("#cost-panel .nj-panel-choice").inner_text().startswith("Conservative"),
             timeout=10, interval=0.05, message="the cost panel to show the Conservative estimate")
    if shoot:
        shoot("new-job")
    with tab.expect_navigation():
        tab.locator("button[name=action][value=review]").click()
    assert urlsplit(tab.url).path.endswith("/review"), tab.url
    for box in tab.locator("#rv-start-form input[type=checkbox]").all():
        box.check()
    if shoot:
        shoot("review")
    with tab.expect_navigation():
        tab.locator("#rv-start-form button[type=submit]").click()
    path = urlsplit(tab.url).path
    assert path.startswith("/jobs/") and not path.endswith("/review"), tab.url
    return path.rsplit("/", 1)[1]


def chart_points(tab: Page) -> int:
    return int(tab.locator("#loss-chart").get_attribute("data-points") or 0)


def test_a_member_creates_and_starts_a_job_in_the_pages_watches_its_curve_grow_and_cancels_another(
    page: Page, live_stack: LiveStack, screenshot, page_problems: list[str]
) -> None:
    live_stack.add_user("alice", PASSWORD, "member")
    sign_in(page, live_stack.base, "alice", PASSWORD)
    job = create_and_start(page, live_stack, "Advisor tone in the browser", shoot=screenshot)
    page.evaluate("window.sameDocument = true")  # gone if the page reloads
    screenshot("job-detail-started")
    first = wait_for(lambda: chart_points(page), timeout=120, interval=0.1, message="the first points of the curve")
    grown = wait_for(lambda: (n := chart_points(page)) > first and n, timeout=60, interval=0.1,
                     message="the curve to grow")
    assert page.evaluate("window.sameDocument === true"), "the page reloaded instead of growing live"
    assert grown > first
    screenshot("job-detail-live-curve")

    # The sample is in use by the running job: the second job trains on a file of its own.
    other = create_and_start(page, live_stack, "Advisor tone to cancel", upload_variant(live_stack.base, "variant"))
    page.locator("details.jd-cancel summary").click()
    page.select_option(".jd-cancel-form select[name=reason]", "testing")
    page.fill(".jd-cancel-form textarea[name=notes]", "Started by mistake <script>window.pwned = 1</script>")
    page.locator(".jd-cancel-form input[name=confirm]").check()
    screenshot("cancel-dialog")
    with page.expect_navigation():
        page.locator(".jd-cancel-form button[type=submit]").click()
    def shown_cancelled() -> bool:
        page.reload()
        return "Cancelled" in page.locator("#job-header").inner_text()

    wait_for(shown_cancelled, timeout=30, interval=0.5, message="the job shown cancelled")
    assert page.evaluate("window.pwned === undefined")
    screenshot("job-cancelled")

    for name, path in (("jobs", "/jobs"), ("queue", "/queue"), ("budget", "/budget"), ("analytics", "/analytics"),
                       ("compare", f"/compare?jobs={job}&jobs={other}"), ("files", "/files"),
                       ("settings", "/settings/notifications"), ("event-log", f"/jobs/{job}?tab=events")):
        page.goto(live_stack.url(path))
        assert urlsplit(page.url).path == urlsplit(path).path, page.url
        screenshot(name)
    # Leaving a page aborts what it still loads (its live stream above all); a reconnect storm would show here.
    aborted = [p for p in page_problems if p.endswith("net::ERR_ABORTED")]
    assert len([p for p in aborted if "/events-stream" in p]) < 10, aborted[:3]
    assert [p for p in page_problems if p not in aborted] == []
