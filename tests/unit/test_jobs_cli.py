"""The terminal client's own parts (pipeline/client/), without a server: the live stream's format, the
server's refusals in its words, the saved login, usage errors, and `watch` ending on what the stream
says with the exit code a script relies on (the whole road: tests/e2e/test_jobs_cli.py)."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from pipeline.client import config
from pipeline.client.api import StreamEvent, parse_sse, refusal
from pipeline.client.app import run
from pipeline.client.watch import watch

JOB = "5fa46d36-9693-4772-a442-122007055a72"


def test_the_stream_parser_reads_events_with_their_data_and_ids_and_skips_keepalives() -> None:
    lines = [": live", "retry: 3000", "", "event: points", 'data: {"steps": [1, 2],', 'data: "last_step": 2}',
             "id: 2:-1", "", ": still here", "", "event: end", "data: {}"]
    assert list(parse_sse(iter(lines))) == [StreamEvent("points", '{"steps": [1, 2],\n"last_step": 2}', "2:-1"),
                                            StreamEvent("end", "{}", "2:-1")]


@pytest.mark.parametrize(("body", "content_type", "said"), [
    (b'{"status_code": 409, "detail": "This job has already started (status: queued)"}', "application/json",
     "This job has already started (status: queued)"),
    (b'{"error": {"message": "No fine-tuning job with id \'x\'", "code": "not_found"}}', "application/json",
     "No fine-tuning job with id 'x'"),
    (b'<h1>No adapter yet</h1><p class="error" role="alert">This job has no adapter to download: it is'
     b' failed &amp; gone.</p>', "text/html", "This job has no adapter to download: it is failed & gone."),
    (b"", "text/plain", "HTTP 502"),
])
def test_a_refusal_is_the_servers_own_sentence(body: bytes, content_type: str, said: str) -> None:
    status = 502 if not body else 409
    assert refusal(httpx.Response(status, content=body, headers={"content-type": content_type})) == said


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv(config.ENV_URL, raising=False)
    monkeypatch.delenv(config.ENV_TOKEN, raising=False)
    return tmp_path


def test_a_login_is_kept_for_its_owner_only_and_the_environment_wins(config_home: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(config.NotConfiguredError, match="run `pipeline login`"):
        config.load()
    path = config.save("http://ml.example:8000/", "lpt_secret")
    assert path == config_home / "lora-pipeline" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert config.load() == config.Credentials("http://ml.example:8000", "lpt_secret", str(path))
    monkeypatch.setenv(config.ENV_URL, "http://other:9000")
    monkeypatch.setenv(config.ENV_TOKEN, "lpt_env")
    assert config.load() == config.Credentials("http://other:9000", "lpt_env", "environment")
    assert config.forget() and not path.exists()


def test_usage_errors_exit_2_before_anything_is_asked_of_the_api(config_home: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["jobs", "show", "not-a-job", "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["detail"].startswith("JOB_ID: 'not-a-job' is not a job id")
    assert run(["jobs", "cancel", JOB, "--reason", "bored"]) == 2  # not one of the reasons
    assert run(["jobs", "list", "--json"]) == 2  # not signed in
    assert "run `pipeline login`" in json.loads(capsys.readouterr().out)["error"]["detail"]


class ScriptedApi:
    """The client's Api as `watch` uses it: the detail answers and the stream's connections, scripted."""

    def __init__(self, details: list[dict[str, Any]], connections: list[list[StreamEvent]], status: str) -> None:
        self.details, self.connections, self.status = details, connections, status
        self.asked: list[str | None] = []

    def get(self, path: str, **params: Any) -> Any:
        if path.endswith("/detail"):
            return self.details.pop(0) if len(self.details) > 1 else self.details[0]
        return {"id": JOB, "status": self.status}

    def stream(self, path: str, last_event_id: str | None = None, **params: Any) -> Iterator[StreamEvent]:
        self.asked.append(last_event_id)
        yield from self.connections.pop(0)


def detail(status: str, step: int = 0, failure: str | None = None) -> dict[str, Any]:
    return {"job": {"name": "Advisor tone", "status": status, "step": step, "total_steps": 100, "loss": None,
                    "failure_message": failure},
            "progress": {"remaining_seconds": None}, "cost": {"current_spend": "0.10"}}


def cards(status: str, step: int) -> StreamEvent:
    facts = {"status": status, "step": step, "total_steps": 100, "loss": 1.5, "remaining_seconds": 30.0,
             "cost": "0.12"}
    return StreamEvent("cards", json.dumps({"facts": facts}), None)


def points(last: int, loss: float) -> StreamEvent:
    return StreamEvent("points", json.dumps({"steps": [last], "loss": [loss], "last_step": last}), f"{last}:-1")


def test_watch_follows_the_stream_across_a_reconnection_to_the_end_and_exits_by_how_it_ended() -> None:
    api = ScriptedApi([detail("training", 10), detail("failed", 60, "CUDA out of memory")],
                      [[points(20, 1.9), cards("training", 20)],  # the stream's lifetime ended here
                       [points(60, 1.2), StreamEvent("end", "{}", None)]], status="failed")
    code, seen = watch(api, JOB, Console(file=open("/dev/null", "w")), as_json=False)  # noqa: SIM115
    assert (code, seen.status, seen.step, seen.loss, seen.failure) == (1, "failed", 60, 1.2, "CUDA out of memory")
    assert api.asked == [None, "20:-1"]  # it reconnected from the last step it had


def test_watch_stops_at_a_pause_with_exit_5_and_prints_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    api = ScriptedApi([detail("training", 10)], [[points(30, 1.4), cards("pausing", 31), cards("paused", 31)]],
                      status="paused")
    code, seen = watch(api, JOB, Console(), as_json=True)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 5 and seen.status == "paused"
    assert [line["status"] for line in lines] == ["training", "training", "pausing", "paused"]
    assert lines[1]["step"] == 30 and lines[1]["loss"] == 1.4
