"""Every page in a real browser at a desktop size (1440×900) and a phone's (390×844), against one
whole stack: no page wider than the viewport on the phone (a wide table scrolls inside its own box),
no axe-core violation of serious or critical impact at either size (axe vendored in
tests/e2e/vendor), a screenshot of each; the skip link, and the emoji the spec's messages use drawn
with the app's own font where the system has none (issue #23 items 3, 6, 7)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pytest

from domain.aggregates.template import ConfigurationTemplate
from handlers.notifications import tokens
from tests.e2e import api
from tests.e2e.browser import LiveStack, browser, live_stack, sign_in  # noqa: F401
from tests.e2e.test_queue import upload_variant
from tests.helpers import wait_for
from web import share_links

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(600)]  # the stack, a job trained, 38 pages
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SIZES = {"desktop": (1440, 900), "phone": (390, 844)}
SECRET = "browser-tests-approval-secret-0123456789"  # approval and share links
STACK_ENV = {"PIPELINE_APPROVAL_SECRET": SECRET}
SYMBOLS = "❌ 💡 ⚠ ✓"
# axe.run in the page: its violations of serious or critical impact, each with up to three places.
RUN_AXE = """async () => {
  const found = await axe.run(document, {resultTypes: ["violations"]});
  return found.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v =>
    `${v.id} (${v.impact}): ${v.help} at ` + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join("; "));
}"""
# What sticks out past the viewport's right edge, for the failure message.
WIDER = """() => [...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > innerWidth + 1)
  .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
  (typeof e.className === "string" && e.className ? "." + e.className.trim().split(/\\s+/).join(".") : "") +
  " → " + Math.round(e.getBoundingClientRect().right) + "px")"""


@pytest.fixture(scope="module")
def jobs(live_stack: LiveStack) -> dict[str, str]:
    """A completed job named with the spec's symbols and CJK, one started after it, a draft to
    review and a draft discarded at review (the list shows it as such, not as a cancelled job)."""
    base = live_stack.base
    sample = wait_for(lambda: api.get(f"{base}/api/files").json(), timeout=120, interval=0.5,
                      message="the seeded sample file")[0]["id"]
    done = create(base, f"Advisor tone 完成 {SYMBOLS}", sample)
    wait_for(lambda: api.get(f"{base}/api/jobs/{done}").json().get("status") == "completed", timeout=300,
             interval=1, message="the first job to complete")
    second = create(base, "A second run with a rather long name that has to wrap", upload_variant(base, "second"))
    draft = create(base, "Draft to review", upload_variant(base, "draft"), start=False)
    discarded = create(base, "Draft to discard", upload_variant(base, "discarded"), start=False)
    assert api.post(f"{base}/api/jobs/{discarded}/cancel", json={"reason": "other"}).status_code == 200
    return {"done": done, "second": second, "draft": draft, "discarded": discarded}


def create(base: str, name: str, file_id: str, start: bool = True) -> str:
    created = api.post(f"{base}/api/jobs", json={"name": name, "training_file_id": file_id, "preset": "conservative",
                                                 "start": start})
    assert created.status_code == 201, created.text
    job = created.json()["id"]
    wait_for(lambda: api.get(f"{base}/api/jobs/{job}").status_code == 200, timeout=60, interval=0.2,
             message=f"{name} in the read model")
    return job


@pytest.fixture(scope="module")
def links(live_stack: LiveStack, jobs: dict[str, str]) -> dict[str, str]:
    """What a signed-out visitor opens: the completed job made public (FR8.1.2), a report link revoked
    on the job (its page then says so), a package link past its 48 hours, and a manager's approve link
    for a pending limit increase (FR1.2.2). A valid report or package link serves a PDF or a zip, no
    page; the pages at those addresses are these refusals. The blind review of the completed job's
    generated replies (FR6.2.1) waits for its evaluation."""
    base, done = live_stack.base, jobs["done"]
    assert api.post(f"{base}/api/jobs/{done}/sharing", json={"visibility": "public"}).status_code == 200
    made = api.post(f"{base}/jobs/{done}/report/share")
    assert made.status_code == 200, made.text
    report = re.search(r"/shared/reports/([\w.-]+)", made.text)
    assert report, made.text
    sharing = api.get(f"{base}/api/jobs/{done}/sharing").json()
    link = next(lk["link_id"] for lk in sharing["links"] if lk["purpose"] == share_links.REPORT.key)
    assert api.post(f"{base}/api/jobs/{done}/share-links/{link}/revoke").status_code == 200
    now = datetime.now(timezone.utc)
    package, _ = share_links.share(share_links.PACKAGE, UUID(done), "admin", SECRET, now - timedelta(days=3))
    asked = api.post(f"{base}/budget/requests", data={"new_limit": "1000000", "justification":
                                                      "A second product line needs its own adapters this month"})
    assert asked.status_code == 303, asked.text
    month = parse_qs(urlsplit(asked.headers["location"]).query)["month"][0]
    request_id = wait_for(  # /budget lists it once the budget's read model has it
        lambda: re.search(r"/budget/requests/([0-9a-f-]{36})", api.get(f"{base}/budget?month={month}").text),
        timeout=60, interval=0.5, message="the pending limit increase on /budget")
    approve = tokens.links(UUID(request_id[1]), month, "admin", SECRET, timedelta(days=2), now, "")["approve"]
    wait_for(lambda: api.get(f"{base}/jobs/{done}/replies").status_code == 200, timeout=120, interval=1,
             message="the completed job's replies to review")
    return {"report": report[1], "package": package, "approval": approve}


def pages(jobs: dict[str, str]) -> dict[str, str]:
    done = jobs["done"]
    return {"jobs": "/jobs", "new-job": "/jobs/new", "review": f"/jobs/{jobs['draft']}/review",
            "job": f"/jobs/{done}", "job-events": f"/jobs/{done}?tab=events",
            "job-quality": f"/jobs/{done}?tab=quality", "replies": f"/jobs/{done}/replies",
            "files": "/files", "suites": "/suites", "templates": "/templates",
            "template": f"/templates/{ConfigurationTemplate.default_id('quick-test')}", "queue": "/queue",
            "budget": "/budget",
            "analytics": "/analytics", "compare": f"/compare?jobs={done}&jobs={jobs['second']}",
            "compare-picker": "/compare", "storage": "/storage", "notifications": "/notifications",
            "settings": "/settings/notifications", "not-found": "/no-such-page"}


def signed_out_pages(jobs: dict[str, str], links: dict[str, str]) -> dict[str, tuple[str, int, str]]:
    """Name → (path, HTTP status, words the page shows)."""
    return {"public-job": (f"/training-jobs/{jobs['done']}", 200, "Created by Administrator"),
            "approval": (links["approval"], 200, "A second product line"),
            "shared-report-revoked": (f"/shared/reports/{links['report']}", 410, "report link was revoked"),
            "shared-package-expired": (f"/shared/packages/{links['package']}", 410, "link expired on")}


@pytest.fixture
def tabs(browser: Browser, live_stack: LiveStack) -> Iterator[dict[str, Page]]:
    """A signed-in tab per size, each in its own context."""
    contexts: list[BrowserContext] = []
    opened = {}
    for size, (width, height) in SIZES.items():
        context = browser.new_context(viewport={"width": width, "height": height}, locale="en-US", timezone_id="UTC")
        context.set_default_timeout(30_000)
        contexts.append(context)
        opened[size] = context.new_page()
    try:
        yield opened
    finally:
        for context in contexts:
            context.close()


def check(tab: Page, size: str, name: str, shots: Path) -> list[str]:
    """The page's problems: wider than the viewport on the phone, axe's serious or critical findings."""
    problems = []
    width = tab.evaluate("document.scrollingElement.scrollWidth")
    if size == "phone" and width > tab.viewport_size["width"]:
        problems.append(f"{size} {name}: {width}px wide, wider than {tab.viewport_size['width']}px: "
                        + ", ".join(tab.evaluate(WIDER)))
    tab.screenshot(path=str(shots / f"{size}-{name}.png"), full_page=True)
    tab.evaluate(AXE.read_text() + "\n;0")  # through the debugger, so the page's CSP allows it
    problems += [f"{size} {name}: {finding}" for finding in tab.evaluate(RUN_AXE)]
    return problems


def test_every_page_fits_a_phone_and_has_no_serious_accessibility_problem_at_either_size(
    tabs: dict[str, Page], browser: Browser, live_stack: LiveStack, jobs: dict[str, str], links: dict[str, str],
    tmp_path: Path
) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    problems: list[str] = []
    script_errors: list[str] = []
    for size, (width, height) in SIZES.items():  # signed out: a fresh context, no session cookie
        context = browser.new_context(viewport={"width": width, "height": height}, locale="en-US", timezone_id="UTC")
        try:
            tab = context.new_page()
            tab.on("pageerror", lambda error, size=size: script_errors.append(f"{size} signed out: {error}"))
            for name, (path, status, words) in signed_out_pages(jobs, links).items():
                answer = tab.goto(live_stack.url(path))
                tab.wait_for_load_state("load")
                assert urlsplit(tab.url).path == path, f"{path} went to {tab.url}"
                assert answer is not None and answer.status == status, f"{name}: {answer and answer.status}"
                assert words in tab.locator("body").inner_text(), f"{name}: {tab.locator('body').inner_text()[:300]}"
                problems += check(tab, size, name, shots)
        finally:
            context.close()
    for size, tab in tabs.items():
        tab.on("pageerror", lambda error, size=size: script_errors.append(f"{size}: {error}"))
        tab.goto(live_stack.url("/login"))
        problems += check(tab, size, "login", shots)
        sign_in(tab, live_stack.base, *live_stack.admin)
        for name, path in pages(jobs).items():
            tab.goto(live_stack.url(path))
            tab.wait_for_load_state("load")
            assert urlsplit(tab.url).path == urlsplit(path).path, f"{path} went to {tab.url}"
            problems += check(tab, size, name, shots)
            if (size, name) == ("phone", "replies"):  # each characteristic a card across the screen
                across = tab.locator("#rv-scores tbody th").first.bounding_box()["width"]
                problems += [f"phone replies: a characteristic {across:.0f}px wide"] if across < 300 else []
    print(f"screenshots: {shots}")
    assert problems == [], "\n".join(problems)
    assert script_errors == []


def test_the_skip_link_the_folded_filters_and_the_spec_symbols_in_the_apps_own_font(
    tabs: dict[str, Page], live_stack: LiveStack, jobs: dict[str, str]
) -> None:
    tab = sign_in(tabs["phone"], live_stack.base, *live_stack.admin)
    tab.goto(live_stack.url("/jobs"))
    tab.keyboard.press("Tab")
    assert tab.evaluate("document.activeElement.textContent") == "Skip to main content"
    assert tab.locator(".skip-link").bounding_box()["y"] >= 0  # shown when focused
    tab.keyboard.press("Enter")
    assert tab.evaluate("document.activeElement.id") == "main"

    # Four jobs: the filters stay folded under the search; the discarded draft is no cancelled job.
    assert tab.locator("#filters-more").evaluate("d => d.open") is False
    assert tab.locator("#job-search").is_visible()
    counts = " ".join(tab.locator(".outcome-counts").inner_text().split())
    assert "0 cancelled" in counts and "1 discarded draft" in counts, counts
    row = tab.locator(f"tr[data-job-id='{jobs['discarded']}'] .status")
    assert row.inner_text() == "Discarded draft"

    # ❌ and 💡 are in no font of this machine's Chromium: the page's own emoji font draws them.
    name = tab.locator(f"tr[data-job-id='{jobs['done']}'] td.name a")
    assert SYMBOLS in name.inner_text()
    loaded = tab.evaluate("""async symbols => (await document.fonts.load('16px "Pipeline Emoji"', symbols))
                              .map(f => f.family)""", "❌💡")
    assert loaded == ['"Pipeline Emoji"'] or loaded == ["Pipeline Emoji"], loaded
    assert tab.evaluate("""symbols => document.fonts.check('16px "Pipeline Emoji"', symbols)""", "❌💡")
    font = tab.request.get(live_stack.url("/static/NotoEmoji-Regular.ttf"))
    assert font.status == 200 and font.body()[:4] == b"\x00\x01\x00\x00"  # a TrueType font
    assert re.search(r"Pipeline Emoji", tab.evaluate("getComputedStyle(document.body).fontFamily"))
