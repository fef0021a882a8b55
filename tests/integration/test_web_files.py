"""The training files page (web/pages/files.py): uploads through the real catalog and object store,
every validation problem at its place, the list's metadata, readiness and search."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import psycopg

from tests.agent_helpers import small_training_file
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture

HTML = {"Accept": "text/html"}
SAMPLES = Path(__file__).parents[2] / "samples"
XSS = "<script>alert(1)</script>"


def upload(web: WebRig, user: str, filename: str, data: bytes, name: str = ""):
    return web.form(user, "/files", {"name": name}, files={"file": (filename, data, "application/json")},
                    headers=HTML)


def file_rows(page: str) -> dict[str, str]:
    """Each file's name → its part of the table."""
    parts = page.split('<tbody class="file"')[1:]
    return {re.search(r"<strong>([^<]*)</strong>", p).group(1): p for p in parts}


def events(web: WebRig) -> list[str]:
    with psycopg.connect(web.database_url) as conn:
        return [t for (t,) in conn.execute("SELECT topic FROM pipeline_events ORDER BY notification_id")]


def test_a_good_file_is_added_and_listed_with_its_metadata_and_readiness(web: WebRig) -> None:
    added = upload(web, "alice", "financial-advisory.json", (SAMPLES / "financial-advisory.json").read_bytes(),
                   name="Advisor sample")
    assert added.status_code == 303
    assert "Advisor sample added: 300 conversations, 1419 training pairs." in \
        web.client("alice").get(added.headers["location"], headers=HTML).text
    small = upload(web, "bob", "small.json", small_training_file(12), name="Small set")
    assert "Insufficient conversations: a training job needs at least 50." in \
        web.client("bob").get(small.headers["location"], headers=HTML).text
    web.project()

    page = web.client("carol").get("/files", headers=HTML)
    assert page.status_code == 200
    found = file_rows(page.text)
    assert set(found) == {"Advisor sample", "Small set"}
    good = found["Advisor sample"]
    assert "✓ Ready for Training" in good and "added by alice" in good
    assert '<td class="num">300</td>' in good and '<td class="num">1419</td>' in good
    assert "4.31" in good and "✓ High Quality" in good and "459.4 KB" in good
    assert "<dt>Empathy</dt><dd>4.31</dd>" in good and "Single parent" in good and "emergency fund" in good
    assert "43 of 300 (14.3%)" in good and "/jobs/new?file=" in good
    assert "⚠ Review Required" in found["Small set"]
    assert "Insufficient conversations: 12 of the 50 a training job needs" in found["Small set"]
    assert "1 of 2 files shown" not in page.text and "2 of 2 files shown · 1 ready for training" in page.text

    def names(query: str) -> set[str]:
        answer = web.client("carol").get(f"/files?{query}", headers=HTML)
        assert answer.status_code == 200
        return set(file_rows(answer.text))

    assert names("q=advisor") == {"Advisor sample"}
    assert names("q=SMALL+set") == {"Small set"}
    assert names("min_conversations=50") == {"Advisor sample"}
    assert names("max_conversations=20") == {"Small set"}
    assert names("readiness=review") == {"Small set"}
    assert names("readiness=ready&min_quality=4&max_quality=5") == {"Advisor sample"}
    assert names("min_quality=4.5") == set()
    wrong = web.client("carol").get("/files?min_conversations=many", headers=HTML).text
    assert "Conversations from must be a number, like 50 (got “many”)" in wrong


def test_a_bad_file_shows_each_problem_at_its_place_escaped_and_is_listed_for_review(web: WebRig) -> None:
    doc = json.loads((SAMPLES / "broken-missing-target.json").read_bytes())
    doc["conversations"][1]["id"] = XSS
    refused = upload(web, "alice", "broken.json", json.dumps(doc).encode())
    assert refused.status_code == 400
    assert "broken.json failed validation with 1 problem: it is listed as ⚠ Review Required." in refused.text
    assert "<code>conversations[1].training_pairs[1].target_response</code>" in refused.text
    assert "Training pair #4 (conversation &lt;script&gt;alert(1)&lt;/script&gt;) is missing" in refused.text
    assert XSS not in refused.text
    web.project()
    listed = file_rows(web.client("alice").get("/files", headers=HTML).text)["broken.json"]
    assert "⚠ Review Required" in listed and "Failed validation with 1 problem" in listed
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listed and XSS not in listed

    before = events(web)
    nothing = web.form("alice", "/files", {"name": "x"}, headers=HTML)
    assert nothing.status_code == 400 and "Choose a training file" in nothing.text
    not_json = upload(web, "alice", "notes.json", b"this is not JSON")
    assert not_json.status_code == 400 and "notes.json failed validation" in not_json.text
    assert events(web) == before + ["CatalogFile.Created"]


def test_a_file_too_deep_with_a_huge_number_or_a_nul_escape_is_listed_with_the_line_and_column(web: WebRig) -> None:
    cases = {
        "digits.json": (b'{"format_version": 1,\n "name": ' + b"9" * 5000 + b"}", "line 2, column 10",
                        "The file cannot be read as JSON: a number with 5,000 digits (at most 4,300) at line 2,"
                        " column 10"),
        "deep.json": (b"[" * 10_000 + b"]" * 10_000, "line 1, column 101",
                      "The file cannot be read as JSON: arrays and objects nested more than 100 levels deep at"
                      " line 1, column 101"),
        "nul.json": (b'{"format_version": 1,\n "name": "a\\u0000b", "conversations": []}', "line 2, column 12",
                     "At line 2, column 12 the file contains a NUL character (written \\u0000), which text cannot"
                     " contain"),
    }
    for filename, (data, place, message) in cases.items():
        page = upload(web, "alice", filename, data)
        assert page.status_code == 400 and f"<code>{place}</code>" in page.text, page.text
        assert message in page.text.replace("&#39;", "'"), filename
        api = web.client().post("/api/files", files={"file": (filename, data)}, headers=web.token("bob"))
        assert api.status_code == 200 and api.json()["problems"] == [{"place": place, "message": message}]
        assert "sys.set_int_max_str_digits" not in page.text + api.text
    web.project()  # the catalog rebuilds: no problem message holds what a text column cannot
    listed = file_rows(web.client("alice").get("/files", headers=HTML).text)
    assert set(listed) == set(cases) and all("⚠ Review Required" in row for row in listed.values())


def test_a_nul_character_or_a_name_past_255_characters_is_refused_on_the_page_and_the_api(web: WebRig) -> None:
    sample = (SAMPLES / "financial-advisory.json").read_bytes()
    before = events(web)
    for name, filename, message in (
        ("Advisor\x00 sample", "sample.json", "The field name contains a NUL character (U+0000) at character 8"),
        ("n" * 5000, "sample.json", "A training file name can be at most 255 characters (got 5,000)"),
    ):
        page = upload(web, "alice", filename, sample, name=name)
        assert page.status_code == 400 and message in page.text, message
        api = web.client().post("/api/files", files={"file": (filename, sample)}, data={"name": name},
                                headers=web.token("alice"))
        assert api.status_code == 400 and api.json()["detail"].startswith(message), api.text
    assert events(web) == before  # nothing catalogued
    longest = upload(web, "alice", "sample.json", sample, name="n" * 255)
    assert longest.status_code == 303
    web.project()
    assert set(file_rows(web.client("alice").get("/files", headers=HTML).text)) == {"n" * 255}


def test_the_same_bytes_under_a_new_name_say_where_they_are_and_keep_the_name_as_an_alias(web: WebRig) -> None:
    sample = (SAMPLES / "financial-advisory.json").read_bytes()
    today = datetime.now(timezone.utc).date()
    assert upload(web, "alice", "sample.json", sample, name="Advisor sample").status_code == 303
    again = upload(web, "bob", "copy.json", sample, name="Advisor copy")
    assert again.status_code == 303
    notice = web.client("bob").get(again.headers["location"], headers=HTML).text.replace("&#39;", "'")
    assert (f"This file is already in the catalog as 'Advisor sample' (added {today} by alice); 'Advisor copy' is"
            " recorded as another name for it.") in notice and "added: 300 conversations" not in notice
    api = web.client().post("/api/files", files={"file": ("x.json", sample)}, data={"name": "Advisor copy"},
                            headers=web.token("carol"))
    assert api.status_code == 200 and api.json()["name"] == "Advisor sample"
    assert api.json()["already_catalogued"] == \
        f"This file is already in the catalog as 'Advisor sample' (added {today} by alice)."
    assert events(web) == ["CatalogFile.Created", "CatalogFile.AliasAdded"]  # the same name twice: recorded once
    web.project()
    found = web.client("carol").get("/files?q=copy", headers=HTML).text
    assert set(file_rows(found)) == {"Advisor sample"} and "also added as Advisor copy" in found
    assert web.client().get("/api/files", headers=web.token("carol")).json()[0]["aliases"] == ["Advisor copy"]
