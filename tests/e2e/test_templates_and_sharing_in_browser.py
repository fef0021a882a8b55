"""Configuration templates (FR5.2.2) and job sharing (FR8.1.2) in a real browser against a whole stack:
the default templates in the library, "Start from Template" into the new-job form, the job trained and
saved as a template; a public link opened signed out, its live chart, and the link withdrawn."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from tests.e2e.browser import LiveStack, browser, live_stack, page, page_problems, screenshot, sign_in  # noqa: F401
from tests.e2e.test_dashboard_in_browser import create_and_start
from tests.helpers import wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.slow, pytest.mark.browser]
STACK_ENV = {"PIPELINE_AGENT_MAX_STEPS": "40", "PIPELINE_AGENT_CHECKPOINT_EVERY": "20",
             "PIPELINE_AGENT_FAULT": "slow_steps:60"}


def reload_until(tab: Page, check, message: str, timeout: float = 180) -> None:
    def again() -> bool:
        tab.reload()
        return bool(check())

    wait_for(again, timeout=timeout, interval=1, message=message)


def test_a_job_starts_from_a_default_template_trains_and_is_saved_as_a_template(
    page: Page, live_stack: LiveStack, screenshot, page_problems: list[str]
) -> None:
    sign_in(page, live_stack.base, *live_stack.admin)
    page.goto(live_stack.url("/templates"))
    reload_until(page, lambda: page.locator("article.template-card").count() == 3, "the three default templates")
    assert [h.inner_text() for h in page.locator("article.template-card h2").all()] == [
        "Maximum Quality", "Quick Test", "Standard Production"]
    screenshot("library")
    quick = page.locator("article.template-card", has_text="Quick Test")
    with page.expect_navigation():
        quick.get_by_role("link", name="Start from Template").click()
    assert urlsplit(page.url).path == "/jobs/new"
    assert page.locator("#nj-notes").input_value() == "Started from template: Quick Test"
    assert page.locator("#nj-setting-num_train_epochs").input_value() == "1"
    assert page.locator("input[name=preset][value=conservative]").is_checked()
    page.locator("input[name=training_file_id]").first.check()
    page.fill("#nj-name", "Quick check in the browser")
    screenshot("new-job-from-template")
    with page.expect_navigation():
        page.locator("button[name=action][value=review]").click()
    for box in page.locator("#rv-start-form input[type=checkbox]").all():
        box.check()
    with page.expect_navigation():
        page.locator("#rv-start-form button[type=submit]").click()
    job = urlsplit(page.url).path.rsplit("/", 1)[1]
    reload_until(page, lambda: "Completed" in page.locator("#job-header").inner_text(), "the job to complete", 300)
    assert "Started from template: Quick Test" in page.locator("body").inner_text()
    page.locator("#save-template summary").click()
    page.fill("#save-template-form input[name=name]", "Browser quick check")
    page.fill("#save-template-form textarea[name=description]", "One epoch, checkpoints every 20 steps")
    page.locator("#save-template-form input[name=visibility][value=team]").check()
    page.fill("#save-template-form input[name=tags]", "quick-test, browser")
    screenshot("save-as-template")
    with page.expect_navigation():
        page.locator("#save-template-form button[type=submit]").click()
    wait_for(lambda: page.locator("#template-name").count(), timeout=30, interval=0.5,
             message="the saved template's page")  # it refreshes itself until the read model has it
    assert page.locator("#template-name").inner_text() == "Browser quick check"
    screenshot("template")
    page.goto(live_stack.url("/templates?sort=usage&order=desc&view=list"))
    reload_until(page, lambda: "Quick check in the browser" in open_template(page, "Quick Test"),
                 "the job listed on its template")
    page.goto(live_stack.url(f"/jobs/{job}"))
    assert [p for p in page_problems if not p.endswith("net::ERR_ABORTED")] == []


def open_template(tab: Page, name: str) -> str:
    tab.goto(tab.url.split("/templates")[0] + "/templates?view=list")
    with tab.expect_navigation():
        tab.locator("#template-list").get_by_role("link", name=name).click()
    return tab.locator("#template-jobs").inner_text() if tab.locator("#template-jobs").count() else ""


def test_a_public_link_shows_the_job_live_to_someone_signed_out_until_it_is_made_private(
    page: Page, browser: Browser, live_stack: LiveStack, screenshot, page_problems: list[str]
) -> None:
    sign_in(page, live_stack.base, *live_stack.admin)
    job = create_and_start(page, live_stack, "Shared advisor run")
    page.locator("#share-job summary").click()
    page.locator("#share-visibility input[value=public]").check()
    with page.expect_navigation():
        page.locator("#share-visibility button[type=submit]").click()
    link = page.locator("#share-job-url").input_value()
    assert link.endswith(f"/training-jobs/{job}")
    screenshot("share-panel")
    outsider = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = outsider.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.on("response", lambda answer: answer.status >= 400 and problems.append(f"{answer.status} {answer.url}"))
    tab.goto(live_stack.url(f"/training-jobs/{job}"))
    assert urlsplit(tab.url).path == f"/training-jobs/{job}"
    assert tab.locator("h1").inner_text() == "Shared advisor run"
    assert tab.locator("#shared-creator").inner_text().startswith("Created by Administrator (admin) on ")
    wait_for(lambda: int(tab.locator("#loss-chart").get_attribute("data-points") or 0) > 0, timeout=180,
             interval=0.2, message="the public page's live chart")
    body = tab.locator("body").inner_text()
    assert "$" not in body and "Cancel Job" not in body and "Download" not in body
    save = tab.screenshot(full_page=True)
    assert save[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.locator("#share-job").get_attribute("open") is not None  # back from saving: the panel stays open
    page.locator("#share-visibility input[value=private]").check()
    with page.expect_navigation():
        page.locator("#share-visibility button[type=submit]").click()
    tab.reload()
    assert urlsplit(tab.url).path == "/login"  # no longer public: the link asks who is looking
    outsider.close()
    assert problems == []
    assert [p for p in page_problems if not p.endswith("net::ERR_ABORTED")] == []
