"""Blind human review of generated replies (FR6.2.1 "Human Evaluation", FR6.4.1 "Human evaluators score each
response") in a real browser against a whole stack (`pipeline up`) whose model judge is the local fake
(tests/fakes/judge.py): a job evaluated on a client's rubric (FR6.4.2, five characteristics, two prompts) is
scored by the judge, then by two reviewers through `/jobs/{id}/replies`, each seeing "Response 1" and
"Response 2" in the item's recorded random order with nothing on the page saying which is the baseline;
their progress; the Quality tab with their averaged scores and where they disagree. The judge's key is in
no page, stored event, log line or pod log of the stack."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from domain.quality.generations import TRAINED_FIRST, blind_order
from tests.e2e import api
from tests.e2e.browser import LiveStack, browser, live_stack, page, page_problems, screenshot, sign_in  # noqa: F401
from tests.fakes.judge import MODEL, FakeJudge
from tests.helpers import wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.slow, pytest.mark.browser]
KEY = "sk-e2e-judge-KEY-77c0ffee42"
PASSWORD = "a test password of some length"  # what tests/e2e/api.py gives the users it makes
STACK_ENV: dict[str, str] = {}  # filled by `judge` before the stack starts (browser.live_stack reads it)
TRAITS = ("Conservative tone", "Risk-aware language", "Formal communication style", "Precision",
          "Compliance awareness")
IDS = tuple(t.lower().replace(" ", "_").replace("-", "_") for t in TRAITS)
RUBRIC = {"format_version": 1, "name": "Acme formal voice",
          "characteristics": [{"id": i, "name": t, "description": f"{t} in every reply",
                               "scoring": {"1": "Absent", "5": "Throughout"}}
                              for i, t in zip(IDS, TRAITS, strict=True)],
          "prompts": [{"id": "acme-1", "persona": "Pragmatic Skeptic", "topic": "fees",
                       "prompt": "Why should I pay an advisory fee at all?"},
                      {"id": "acme-2", "persona": "Anxious Investor", "topic": "market volatility",
                       "prompt": "Stocks fell again today. Should I sell everything?"}]}


@pytest.fixture(scope="module")
def judge() -> Iterator[FakeJudge]:
    server = FakeJudge(api_key=KEY).start()
    STACK_ENV.update({"PIPELINE_JUDGE_URL": server.url, "PIPELINE_JUDGE_MODEL": "fake-judge",
                      "PIPELINE_JUDGE_API_KEY": KEY, "PIPELINE_JUDGE_POLL_S": "1"})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def judged_stack(judge: FakeJudge, live_stack: LiveStack) -> LiveStack:  # noqa: F811 - the fixture
    """The module's stack, started after the fake judge it is pointed at."""
    return live_stack


def score_every_item(tab: Page, stack: LiveStack, job: str, first: int, second: int, pages: list[str]) -> str:
    """As one reviewer: from the Quality tab to the blind review, each item scored (Response 1 `first`, Response 2
    `second` on every characteristic) and saved; returns the notice the last save leads to."""
    tab.goto(stack.url(f"/jobs/{job}?tab=quality"))
    with tab.expect_navigation():
        tab.locator("#q-review-link").click()
    for done in range(2):
        assert f"Brand voice: {done} of 2 scored by you" in tab.locator("#rv-progress").inner_text()
        assert [tab.locator(f"#rv-response-{n} h3").inner_text() for n in (1, 2)] == ["Response 1", "Response 2"]
        leaks = tab.locator("#rv-form").evaluate(
            """form => [form, ...form.querySelectorAll('*')].flatMap(el => [...el.attributes].map(a => a.value))
                 .concat([...form.querySelectorAll('*:not(.rv-text)')].map(el => el.childNodes.length
                   ? [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join(' ') : ''))
                 .filter(v => /baseline|trained|adapter/i.test(v))""")
        assert leaks == [], f"the blind form says which reply is which: {leaks}"
        for c in IDS:
            tab.locator(f"input[name='first.{c}'][value='{first}']").check()
            tab.locator(f"input[name='second.{c}'][value='{second}']").check()
        pages.append(tab.content())
        with tab.expect_navigation():
            tab.locator("#rv-save").click()
    pages.append(tab.content())
    return tab.locator("body").inner_text()


def test_two_reviewers_score_the_replies_blind_in_the_browser_and_the_quality_tab_averages_them(
        judge: FakeJudge, judged_stack: LiveStack, browser: Browser, page: Page,  # noqa: F811 - fixtures
        screenshot, page_problems: list[str]) -> None:  # noqa: F811
    stack = judged_stack
    alice, bob = api.as_user(stack.base, "alice"), api.as_user(stack.base, "bob", "manager")  # bob may see her job
    rubric = api.post(stack.url("/api/rubrics"), headers=alice, content=json.dumps(RUBRIC).encode())
    assert rubric.status_code == 201, rubric.text
    files = wait_for(lambda: api.get(stack.url("/api/files"), headers=alice).json(), message="the seeded sample file")
    created = api.post(stack.url("/api/jobs"), headers=alice, json={
        "training_file_id": files[0]["id"], "name": "Acme formal voice, reviewed", "knowledge_retention": False,
        "emotional_intelligence": False, "rubric_id": rubric.json()["id"]})
    assert created.status_code == 201, created.text
    job = created.json()["id"]

    def judged() -> dict | None:
        answer = api.get(stack.url(f"/api/jobs/{job}/quality"), headers=alice)
        body = answer.json() if answer.status_code == 200 else {}
        return body if (body.get("review") or {}).get("judge", {}).get("complete") else None

    quality = wait_for(judged, timeout=420, interval=1, message="the job to train, generate and be judged")
    assert quality["review"]["items"] == 2 and quality["review"]["judge"]["judged"] == 2
    pages: list[str] = []

    sign_in(page, stack.base, "alice", PASSWORD)
    page.goto(stack.url(f"/jobs/{job}?tab=quality"))
    assert "no reviewer yet" in page.locator("#q-people-progress").inner_text()
    assert f"scored by model judge {MODEL}" in page.locator("#q-src-model-brand").inner_text()
    screenshot("quality-judged")
    told = score_every_item(page, stack, job, 5, 2, pages)
    assert "Saved: 2 of 2 brand voice items scored by you. Every item is scored: thank you." in told
    assert "alice: 2" in page.locator("#q-people-progress").inner_text()

    other = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US", timezone_id="UTC")
    try:
        tab = other.new_page()
        sign_in(tab, stack.base, "bob", PASSWORD)
        tab.goto(stack.url(f"/jobs/{job}/replies"))
        assert "Reviewers so far: alice." in tab.locator("body").inner_text()
        assert "Brand voice: 0 of 2 scored by you (2 by anyone)" in tab.locator("#rv-progress").inner_text()
        score_every_item(tab, stack, job, 3, 2, pages)
        progress = tab.locator("#q-people-progress").inner_text()
        assert "2 of 2 items scored by at least one reviewer (alice: 2, bob: 2)" in progress
        people = tab.locator("#q-src-people-brand").inner_text()
        assert "Brand voice: Acme formal voice — scored by 2 reviewers (alice, bob)" in people
        disagreement = tab.locator("#q-src-people-disagreement").inner_text()
        assert disagreement.count("up to 2 points apart (2 reviewers)") == 2  # alice 5, bob 3 for Response 1
        pages.append(tab.content())
    finally:
        other.close()
    page.goto(stack.url(f"/jobs/{job}?tab=quality"))
    screenshot("quality-reviewed")

    # The people's averages, unblinded by the item's recorded order: Response 1 averaged 4 (alice 5, bob 3),
    # Response 2 averaged 2; the trained reply is Response 1 where the draw put it first.
    summary = api.get(stack.url(f"/api/jobs/{job}/quality"), headers=alice).json()
    sha = summary["results"]["sha256"]
    trained = [Decimal(4) if blind_order(sha, f"brand_voice/{p['id']}") == TRAINED_FIRST else Decimal(2)
               for p in RUBRIC["prompts"]]
    source = next(s for s in summary["summary"]["judged"] if s["source"] == "people")
    assert source["complete"] and source["scorers"] == ["alice", "bob"]
    expected = (sum(trained) / len(trained)).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
    assert source["brand_voice"]["overall"] == str(expected)
    assert source["brand_voice"]["baseline_overall"] == str((Decimal(6) - expected).quantize(Decimal("0.01")))

    # The judge's key: where it goes (the judge's requests), and nowhere else.
    assert len(judge.requests) >= 2 and all(r["headers"]["Authorization"] == f"Bearer {KEY}" for r in judge.requests)
    for path in (f"/jobs/{job}", f"/jobs/{job}?tab=quality", f"/jobs/{job}?tab=events", f"/jobs/{job}/replies",
                 f"/api/jobs/{job}/quality", f"/api/jobs/{job}", "/suites", "/analytics", f"/compare?jobs={job}",
                 "/settings/notifications"):
        pages.append(api.get(stack.url(path), headers=bob).text)
    assert not [p for p in pages if KEY in p]
    state = Path(stack.env["PIPELINE_STATE_DIR"])
    logs = [stack.log, *state.rglob("*.log"), *(state / "pods").rglob("*.json")]
    assert len(logs) > 1 and not [str(p) for p in logs if KEY in p.read_text(errors="replace")]
    with psycopg.connect(api.database_of(state)) as conn:
        total, keyed = conn.execute("SELECT count(*), count(*) FILTER (WHERE position(%s in convert_from(state,"
                                    " 'UTF8')) > 0) FROM pipeline_events", (KEY,)).fetchone()
    assert total > 20 and keyed == 0
    assert [p for p in page_problems if not p.endswith("net::ERR_ABORTED")] == []

