"""Real-browser fixtures: the system's Chromium driven headless by Playwright, full-page screenshots
kept as artifacts, and a whole stack (`pipeline up`) to point it at. A test module imports the
fixtures it uses (docs/testing.md):

    from tests.e2e.browser import browser, live_stack, page, page_problems, screenshot, signed_in_page  # noqa: F401
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from infra.embedded import free_port
from tests.e2e.test_up import interrupt, start_up

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = ("install one (Debian/Ubuntu: `apt-get install chromium`) or point PIPELINE_CHROMIUM at a Chrome or "
                "Chromium binary; Playwright's own browser download is never used")
ADMIN_PASSWORD = "browser-tests-admin-password"  # the stack's bootstrap admin (PIPELINE_ADMIN_PASSWORD)


def find_chromium() -> str | None:
    """PIPELINE_CHROMIUM if set, else the first Chromium or Chrome on the PATH (or /usr/bin)."""
    chosen = os.environ.get("PIPELINE_CHROMIUM")
    if chosen:
        return chosen
    for name in CHROMIUM_NAMES:
        found = shutil.which(name) or shutil.which(name, path="/usr/bin")
        if found:
            return found
    return None


def artifacts_dir() -> Path:
    return Path(os.environ.get("PIPELINE_TEST_ARTIFACTS") or REPO / "test-artifacts" / "screenshots")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium for this module's tests; skipped (with how to fix it) when there is none."""
    yield from launch_chromium()


def launch_chromium() -> Iterator[Browser]:
    """Headless Chromium for a fixture to yield; skips (with how to fix it) when there is none."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]' brings playwright")
    executable = find_chromium()
    if executable is None:
        pytest.skip(f"no Chromium found: {INSTALL_HINT}")
    if not os.access(executable, os.X_OK):
        pytest.fail(f"PIPELINE_CHROMIUM={executable} is not an executable file")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page_problems() -> list[str]:
    """What went wrong inside the page: uncaught script errors, console errors, failed requests and
    4xx/5xx answers (a failed sign-in's 401 too). A request the browser aborted because the page
    navigated on (a favicon still loading) is not a failure."""
    return []


@pytest.fixture
def page(browser: Browser, page_problems: list[str], request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh tab (own cookies) per test; a screenshot is saved when the test fails."""
    shutil.rmtree(artifacts_dir() / _safe(request.node.name), ignore_errors=True)  # no stale failed.png
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US", timezone_id="UTC")
    context.set_default_timeout(15_000)
    tab = context.new_page()
    tab.on("pageerror", lambda error: page_problems.append(f"script error: {error}"))
    tab.on("console", lambda message: message.type == "error" and page_problems.append(
        f"console: {message.text} ({message.location.get('url')})"))
    tab.on("requestfailed", lambda failed: failed.failure != "net::ERR_ABORTED" and page_problems.append(
        f"request failed: {failed.url} {failed.failure}"))  # aborted: the page moved on (a favicon mid-load)
    tab.on("response", lambda answer: answer.status >= 400 and page_problems.append(
        f"HTTP {answer.status}: {answer.request.method} {answer.url}"))
    failed_before = request.session.testsfailed
    try:
        yield tab
    finally:
        if request.session.testsfailed > failed_before:  # the call phase failed: its report is in already
            save_screenshot(tab, request.node.name, "failed")
        context.close()


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name)


def save_screenshot(tab: Page, test_name: str, name: str) -> Path:
    folder = artifacts_dir() / _safe(test_name)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_safe(name)}.png"
    tab.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture
def screenshot(page: Page, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """`screenshot("files")` saves the page, full length, as ARTIFACTS/<test name>/files.png."""
    return lambda name: save_screenshot(page, request.node.name, name)


@dataclass(frozen=True)
class LiveStack:
    base: str  # http://127.0.0.1:PORT
    env: dict[str, str]  # the stack's settings: PIPELINE_STATE_DIR etc., for CLI commands against it
    log: Path
    admin: tuple[str, str] = ("admin", ADMIN_PASSWORD)

    def url(self, path: str) -> str:
        return self.base + path

    def add_user(self, name: str, password: str, role: str = "member") -> None:
        """`pipeline users add NAME --role ROLE --password-stdin` against this stack's database."""
        done = subprocess.run([sys.executable, "-m", "pipeline", "users", "add", name, "--role", role,
                               "--password-stdin"], input=password + "\n", env=os.environ | self.env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def live_stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[LiveStack]:
    """`pipeline up` on a free port (embedded PostgreSQL and NATS, the local pod provider, the tiny
    model, the sample file seeded), shared by the module's tests and stopped with Ctrl-C after them.
    A module's `STACK_ENV` dict adds or overrides settings."""
    state = tmp_path_factory.mktemp("browser-stack")
    env = {"PIPELINE_STATE_DIR": str(state / "state"), "PIPELINE_WEB_PORT": str(free_port()),
           "PIPELINE_POD_PROVIDER": "local", "PIPELINE_AGENT_BASE_MODEL": "tiny", "PIPELINE_AGENT_MAX_STEPS": "3",
           "PIPELINE_ADMIN_PASSWORD": ADMIN_PASSWORD, **getattr(request.module, "STACK_ENV", {})}
    process, base = start_up(env, state / "up.log")
    try:
        yield LiveStack(base, env, state / "up.log")
    finally:
        assert interrupt(process) == 0, (state / "up.log").read_text()[-3000:]


def sign_in(tab: Page, base: str, user: str, password: str) -> Page:
    """Signs in through the form on /login, as a person would; fails with the page's own complaint."""
    tab.goto(base + "/login")
    tab.fill("input[name=username]", user)
    tab.fill("input[name=password]", password)
    with tab.expect_navigation():
        tab.locator("form#login").evaluate("form => form.requestSubmit()")
    if urlsplit(tab.url).path == "/login":
        alert = tab.locator("[role=alert]")
        complaint = alert.first.inner_text() if alert.count() else tab.title()
        raise AssertionError(f"signing in as {user} failed: {complaint}")
    return tab


@pytest.fixture
def signed_in_page(page: Page, live_stack: LiveStack) -> Callable[..., Page]:
    """`signed_in_page()` (the stack's admin) or `signed_in_page("alice", "pw")`: the page, signed in."""
    def open_as(user: str | None = None, password: str | None = None) -> Page:
        name, secret = (user, password) if user else live_stack.admin
        return sign_in(page, live_stack.base, name, secret or "")

    return open_as
