"""`pipeline jobs create --template` (FR5.2.2) and `pipeline jobs share|share-link|revoke-link` (FR8.1.2)
against the whole web app on real PostgreSQL and NATS (tests/web_rig.py): the client's own HTTP calls go
to the app in process, with each person's API token, so what is checked is what a terminal user gets —
the exit code, `--json`, the sentence — and what the app recorded (the whole stack: tests/e2e/test_jobs_cli.py)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from domain.aggregates.template import ConfigurationTemplate
from pipeline.client import app as client_app
from pipeline.client import config
from pipeline.client.api import Api
from tests.integration.test_web_job_detail import add_job, ago, event_count
from tests.integration.test_web_new_job import add_file
from tests.integration.test_web_templates import complete
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture

Cli = Callable[..., tuple[int, Any]]


@pytest.fixture
def cli(web: WebRig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Cli:  # noqa: F811
    """`cli("alice", "jobs", "share", ...)`: the exit code and the JSON printed (the text without --json)."""
    class Authorized:
        """The rig's signed-out client, each request with the command's token (all that says who asks)."""

        def __init__(self, token: str) -> None:
            self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

        def request(self, method: str, path: str, **kwargs: Any) -> Any:
            return web.client(None).request(method, path, headers=self.headers, **kwargs)

    class InProcess(Api):
        def __init__(self, credentials: config.Credentials, timeout_s: float = 30.0) -> None:
            self.base = credentials.url
            self.http = Authorized(credentials.token)  # type: ignore[assignment]

        def close(self) -> None:
            pass  # the rig's client outlives each command

    monkeypatch.setattr(client_app, "Api", InProcess)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv(config.ENV_URL, "http://testserver.local")
    tokens: dict[str, str] = {}

    def run(user: str, *argv: str) -> tuple[int, Any]:
        tokens.setdefault(user, web.token(user)["Authorization"].removeprefix("Bearer "))
        monkeypatch.setenv(config.ENV_TOKEN, tokens[user])
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = client_app.run(list(argv))
        return code, json.loads(out.getvalue()) if "--json" in argv else out.getvalue() + err.getvalue()

    return run


def test_a_job_starts_from_a_template_given_by_name_or_id_and_an_unknown_one_is_named_back(
        web: WebRig, cli: Cli) -> None:  # noqa: F811
    web.store.app.ensure_default_templates(ago(60))
    web.project()
    data = str(add_file(web))
    code, text = cli("carol", "jobs", "create", "--file", data, "--template", "  quick   TEST ", "--name",
                     "Quick check from the terminal", "--no-start")
    assert code == 0, text
    assert "from template Quick Test (not started)" in text
    made = UUID(text.split("Created job ")[1].split()[0])
    job = web.store.app.get_job(made)
    assert job.notes[0][2].startswith("Started from template: Quick Test")
    assert job.configuration["hyperparameters"]["num_train_epochs"] == 1 and job.created_by == "carol"
    quick = ConfigurationTemplate.default_id("quick-test")
    assert web.store.app.template(quick).jobs == [str(made)]

    standard = ConfigurationTemplate.default_id("standard-production")
    code, by_id = cli("carol", "jobs", "create", "--file", data, "--template", str(standard), "--gpu-tier",
                      "on_demand", "--no-start", "--json")
    assert code == 0 and by_id["template_id"] == str(standard) and by_id["started"] is False, by_id
    job = web.store.app.get_job(UUID(by_id["id"]))
    assert (job.configuration["preset"], job.configuration["gpu_tier"]) == ("balanced", "on_demand")  # tier given

    before = event_count(web)
    maximum = ConfigurationTemplate.default_id("maximum-quality")  # the aggressive preset: carol has no runs yet
    code, locked = cli("carol", "jobs", "create", "--file", data, "--template", str(maximum), "--json")
    assert (code, locked["error"]) == (4, {"status": 400, "detail": "Unlock after 3 successful training runs"})
    code, unknown = cli("carol", "jobs", "create", "--file", data, "--template", "Quikc Test", "--json")
    assert code == 4 and unknown["error"]["status"] == 404
    assert unknown["error"]["detail"] == ("--template: no template named 'Quikc Test' that you may use (yours and"
                                          " the team's: Maximum Quality, Quick Test, Standard Production)")
    code, missing = cli("carol", "jobs", "create", "--file", data, "--template", str(UUID(int=7)), "--json")
    assert code == 4 and missing["error"]["status"] == 404 and "no template" in missing["error"]["detail"]
    assert event_count(web) == before


def test_a_job_is_shared_made_public_and_its_links_revoked_from_the_terminal(web: WebRig, cli: Cli) -> None:  # noqa: F811
    job = add_job(web, name="Advisor tone, shared")
    complete(web, job)
    web.project()
    outsider = web.client(None)
    code, shown = cli("alice", "jobs", "share", str(job), "--json")
    assert code == 0 and shown["visibility"] == "private" and shown["links"] == []

    before = event_count(web)
    code, refused = cli("carol", "jobs", "share", str(job), "--team", "--json")
    assert code == 4 and refused["error"]["status"] == 403
    assert "Only the job's creator, a manager or an admin" in refused["error"]["detail"]
    code, both = cli("alice", "jobs", "share", str(job), "--team", "--public", "--json")
    assert code == 2 and both["error"]["detail"] == "choose one of --private, --team and --public"
    assert event_count(web) == before

    code, text = cli("alice", "jobs", "share", str(job), "--team")
    assert code == 0 and "Visibility: team: everyone signed in can open it" in text, text
    code, public = cli("alice", "jobs", "share-link", str(job), "--json")
    assert code == 0 and public["visibility"] == "public" and public["link"].endswith(f"/training-jobs/{job}")
    assert outsider.get(f"/training-jobs/{job}", follow_redirects=False).status_code == 200

    code, report = cli("alice", "jobs", "share-link", str(job), "--for", "report", "--json")
    assert code == 0 and "/shared/reports/" in report["url"], report
    path = "/shared/reports/" + report["url"].split("/shared/reports/")[1]
    code, text = cli("alice", "jobs", "share", str(job))
    assert f"Share link {report['link_id']}: training-report by alice" in text, text
    code, revoked = cli("alice", "jobs", "revoke-link", str(job), report["link_id"], "--json")
    assert code == 0 and revoked["links"] == [] and revoked["visibility"] == "public"
    assert outsider.get(path, headers={"Accept": "text/html"}).status_code == 410

    code, package = cli("alice", "jobs", "share-link", str(job), "--for", "package")
    assert code == 0 and "/shared/packages/" in package and "expires" in package.lower(), package
    code, usage = cli("alice", "jobs", "revoke-link", str(job), "--json")
    assert code == 2 and usage["error"]["detail"].startswith("give either a LINK_ID")
    code, everything = cli("alice", "jobs", "revoke-link", str(job), "--all", "--json")
    assert code == 0 and everything["links"] == [] and everything["visibility"] == "private", everything
    assert outsider.get(f"/training-jobs/{job}", follow_redirects=False).status_code == 303  # to sign in
    package_path = "/shared/packages/" + package.split("/shared/packages/")[1].split()[0]
    assert outsider.get(package_path, headers={"Accept": "text/html"}).status_code == 410

    running = add_job(web, name="Still training")
    web.project()
    before = event_count(web)
    code, early = cli("alice", "jobs", "share-link", str(running), "--for", "report", "--json")
    assert code == 4 and early["error"]["status"] == 409
    assert early["error"]["detail"].startswith("A training report is made for a completed job")
    assert event_count(web) == before
