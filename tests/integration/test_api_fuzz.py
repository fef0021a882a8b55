"""Schema-driven fuzzing: every GET and every JSON API write in the OpenAPI 3.1 schema the web app
serves, run by schemathesis against the real app (uvicorn, PostgreSQL, NATS), answers no 5xx and
names no internals (PostgreSQL's or Python's messages) in any answer."""

from __future__ import annotations

import threading
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from litestar import Litestar
from litestar.exceptions import HTTPException
from litestar.response import ServerSentEvent
from litestar.routes import HTTPRoute
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.errors import InvalidSchema
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from infra import db
from infra.embedded import free_port
from infra.eventstore import EventStore
from infra.settings import load_settings
from projections.runner import NAMES, rebuild_named
from tests.helpers import wait_for
from tests.live_stack import declare
from web import users
from web.app import create_app

SAMPLE = Path(__file__).parents[2] / "samples" / "financial-advisory.json"
FUZZER = "fuzzer"
EXAMPLES = 10  # per operation and variant (generated, existing ids, schema-violating)
BUDGET_S = 50.0  # for the whole loop; operations past it are left out (with a warning)
# A failure of these fails the test (the conformance ones for the JSON API only: pages answer
# errors in HTML, which Litestar's schema does not say). The others are printed (`pytest -s`): the
# schema documents only 200/201/400, and Litestar's lenient parsing accepts some invalid values.
CONFORMANCE = [content_type_conformance, response_schema_conformance, response_headers_conformance]
PRINTED = {GenerationMode.POSITIVE: [status_code_conformance], GenerationMode.NEGATIVE: [negative_data_rejection]}
# A live event stream never ends by itself: it is read for STREAM_READ_S (or 5 events) and fuzzed
# with fewer examples, since each request to a stream that exists takes that long.
STREAM_READ_S = 2.0
STREAM_EXAMPLES = 3
CONFIG = schemathesis.Config.from_dict({"max-stream-events": 5})
# What an answer must not say: a refusal is explained in the caller's terms (issue #15).
INTERNALS = ("PostgreSQL", "psycopg", "bigint out of range", "overflows numeric format", "set_int_max_str_digits",
             "Integer value out of range", "Traceback (most recent call last)")


@schemathesis.check
def no_internals_in_the_answer(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Pages and API alike: no database, decoder or Python internals in any answer."""
    text = response.content.decode(errors="replace")
    if named := [word for word in INTERNALS if word in text]:
        raise AssertionError(f"the answer names internals ({', '.join(named)})")


@pytest.fixture
def api_headers(migrated: str) -> dict[str, str]:
    """Headers on every request, seeding and fuzzing alike: the one place authentication goes. An
    admin's API token, so that every route (manager and admin ones too) is reached past its guard."""
    with psycopg.connect(migrated, autocommit=True) as conn:
        users.add_user(conn, FUZZER, "admin", "correct horse battery staple")
        return {"Authorization": f"Bearer {users.create_token(conn, FUZZER, 'fuzz')}"}


@dataclass
class ServedApp:
    base: str = ""
    crashes: list[str] = field(default_factory=list)  # tracebacks of unhandled exceptions, newest last
    live_streams: set[str] = field(default_factory=set)  # "GET /path/{id}" of server-sent event routes


def live_streams(app: Litestar) -> set[str]:
    """Routes answering server-sent events: they never end by themselves, so they are read briefly
    (the schema cannot tell: Litestar documents them as application/json)."""
    return {f"{method} {route.path_format}" for route in app.routes if isinstance(route, HTTPRoute)
            for handler in route.route_handlers for method in handler.http_methods
            if handler.parsed_fn_signature.return_type.annotation is ServerSentEvent}


@pytest.fixture
def served_app(migrated: str, nats_server: Any) -> Iterator[ServedApp]:
    """The real app under uvicorn on a free port, as `pipeline web` runs it, recording crashes."""
    declare(nats_server.url)
    settings = load_settings(database_url=migrated, nats_url=nats_server.url,
                             webhook_key="the fuzzed app's webhook sealing key, not a file")  # nothing in .state/
    app = create_app(settings, migrated, nats_server.url)
    served = ServedApp(live_streams=live_streams(app))

    async def record(exc: Exception, scope: Any) -> None:
        if not isinstance(exc, HTTPException) or exc.status_code >= 500:
            served.crashes.append("".join(traceback.format_exception(exc)))

    app.after_exception.append(record)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, name="fuzzed-web", daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), timeout=30, message="the web app to start")
    assert server.started, "the web app did not start (see the log above)"
    served.base = f"http://127.0.0.1:{port}"
    try:
        yield served
    finally:
        server.should_exit = True
        thread.join(30)


@dataclass(frozen=True)
class Known:
    """Values that exist, so that fuzzed requests also get past "not found" into the handlers."""
    path_parameters: dict[str, list[str]]
    body_fields: dict[str, list[str]]


def seed(base: str, headers: dict[str, str], database_url: str, nats_url: str) -> Known:
    """A training file and two jobs (one configured, one queued) through the API, read models rebuilt."""
    upload = httpx.post(f"{base}/api/files", files={"file": ("sample.json", SAMPLE.read_bytes())}, headers=headers,
                        timeout=60)
    assert upload.status_code == 201, upload.text
    file_id = upload.json()["id"]
    job_ids = []
    for name, start in (("Fuzz configured", False), ("Fuzz queued", True)):
        created = httpx.post(f"{base}/api/jobs", json={"name": name, "training_file_id": file_id, "start": start},
                             headers=headers, timeout=30)
        assert created.status_code == 201, created.text
        job_ids.append(created.json()["id"])
    store = EventStore.open(database_url, 1)
    try:
        applications = {app.name: app for app in store.applications()}
        with db.connect(database_url) as conn:
            for name in NAMES:
                rebuild_named(conn, name, applications, nats_url)
    finally:
        store.close()
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    return Known({"job_id": job_ids, "month": [month], "user": [FUZZER]}, {"training_file_id": [file_id]})


@dataclass
class Finding:
    check: str
    method: str
    path: str
    status: int
    request: str  # a curl command that repeats it
    detail: str
    traceback: str = ""

    def key(self) -> tuple[str, ...]:
        last_line = self.traceback.strip().splitlines()[-1] if self.traceback else self.detail.splitlines()[0]
        return self.check, self.method, self.path, str(self.status), last_line

    def report(self) -> str:
        return (f"[{self.check}] {self.method} {self.path} -> {self.status}\n  {self.request}\n"
                f"  {self.detail.strip()[:600]}" + (f"\n{self.traceback}" if self.traceback else ""))


def is_api(operation: schemathesis.APIOperation) -> bool:
    return operation.path.startswith("/api/")


def fuzzed(operation: schemathesis.APIOperation) -> bool:
    """Every GET (pages too), and the JSON API's writes whose body (if any) is JSON; the pages' form
    posts and file uploads are left out."""
    if operation.method.upper() == "GET":
        return True
    content = operation.definition.raw.get("requestBody", {}).get("content", {})
    return is_api(operation) and operation.method.upper() in ("POST", "PUT") and set(content) <= {"application/json"}


def body_properties(operation: schemathesis.APIOperation) -> set[str]:
    schema = operation.definition.raw.get("requestBody", {}).get("content", {}).get("application/json", {})
    schema = schema.get("schema", {})
    if "$ref" in schema:
        schema = operation.schema.raw_schema["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return set(schema.get("properties", {}))


def with_fields(case: schemathesis.Case, fields: dict[str, str]) -> schemathesis.Case:
    case.body = {**case.body, **fields}
    return case


def variants(operation: schemathesis.APIOperation, known: Known) -> list[tuple[str, GenerationMode, st.SearchStrategy]]:
    """Generated valid data, the same with ids that exist (where the operation takes any), invalid data."""
    found = [("generated", GenerationMode.POSITIVE, operation.as_strategy(GenerationMode.POSITIVE))]
    names = {parameter.name for parameter in operation.path_parameters}
    path = {name: st.sampled_from(values) for name, values in known.path_parameters.items() if name in names}
    body = {name: st.sampled_from(values) for name, values in known.body_fields.items()
            if name in body_properties(operation)}
    if path or body:
        existing = st.fixed_dictionaries(path).flatmap(
            lambda chosen: operation.as_strategy(GenerationMode.POSITIVE, path_parameters=chosen))
        if body:
            existing = st.tuples(existing, st.fixed_dictionaries(body)).map(lambda pair: with_fields(*pair))
        found.append(("existing", GenerationMode.POSITIVE, existing))
    found.append(("invalid", GenerationMode.NEGATIVE, operation.as_strategy(GenerationMode.NEGATIVE)))
    return found


@dataclass
class Fuzzer:
    served: ServedApp
    headers: dict[str, str]
    deadline: float
    failures: list[Finding] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)

    def fuzz(self, operation: schemathesis.APIOperation, known: Known) -> None:
        started = time.monotonic()
        examples = STREAM_EXAMPLES if operation.label in self.served.live_streams else EXAMPLES
        for variant, mode, strategy in variants(operation, known):
            @settings(max_examples=examples, derandomize=True, deadline=None, database=None, print_blob=False,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=strategy)
            def run(case: schemathesis.Case) -> None:
                if time.monotonic() < self.deadline:
                    self.send(case, variant, mode)  # noqa: B023 - run() is called at once, in this iteration

            try:
                run()
            except Unsatisfiable:  # invalid data for an operation with nothing to make invalid
                pass
            except InvalidSchema as error:  # the schema cannot describe a request this route takes
                self.failures.append(Finding("InvalidSchema", operation.method.upper(), operation.path, 0,
                                             "GET /schema/openapi.json", str(error)))
                break
        self.seconds[operation.label] = time.monotonic() - started

    def send(self, case: schemathesis.Case, variant: str, mode: GenerationMode) -> None:
        self.served.crashes.clear()
        stream = case.operation.label in self.served.live_streams
        response = case.call(headers=dict(self.headers), timeout=STREAM_READ_S if stream else 20)
        self.answers[f"{case.operation.label} {variant} {response.status_code}"] += 1
        api = is_api(case.operation)
        failing = [not_a_server_error, no_internals_in_the_answer, *(CONFORMANCE if api else [])]
        self.failures.extend(self.check(case, response, failing))
        self.notes.extend(self.check(case, response, [*PRINTED[mode], *([] if api else CONFORMANCE)]))

    def check(self, case: schemathesis.Case, response: schemathesis.Response, checks: list) -> list[Finding]:
        try:
            case.validate_response(response, checks=checks, headers=self.headers)
        except FailureGroup as group:
            crash = self.served.crashes[-1] if response.status_code >= 500 and self.served.crashes else ""
            return [Finding(type(failure).__name__, case.method, case.operation.path, response.status_code,
                            case.as_curl_command(headers=self.headers), f"{failure.title}: {failure.message}\n"
                            f"  response: {response.content[:300].decode(errors='replace')}", crash)
                    for failure in group.exceptions]  # a PDF or a ZIP is not text
        return []


def distinct(findings: list[Finding]) -> list[Finding]:
    return list({finding.key(): finding for finding in findings}.values())


def test_no_operation_in_the_openapi_schema_answers_a_server_error_to_generated_requests(
    served_app: ServedApp, api_headers: dict[str, str], migrated: str, nats_server: Any
) -> None:
    known = seed(served_app.base, api_headers, migrated, nats_server.url)
    schema = schemathesis.openapi.from_url(f"{served_app.base}/schema/openapi.json", headers=dict(api_headers),
                                           config=CONFIG)
    results = list(schema.get_all_operations())
    operations = sorted((result.ok() for result in results if isinstance(result, Ok) and fuzzed(result.ok())),
                        key=lambda operation: not is_api(operation))  # the JSON API first, then the pages
    assert len(operations) >= 20, [operation.label for operation in operations]
    fuzzer = Fuzzer(served_app, api_headers, time.monotonic() + BUDGET_S)
    for error in (result.err() for result in results if not isinstance(result, Ok)):  # the schema lies
        method, _, path = error.label.partition(" ")
        fuzzer.failures.append(Finding("InvalidSchema", method, path, 0, "GET /schema/openapi.json", str(error)))
    reached = []
    for operation in operations:
        if time.monotonic() > fuzzer.deadline:
            break
        fuzzer.fuzz(operation, known)
        reached.append(operation.label)
    print(f"fuzzed {len(reached)} of {len(operations)} operations; requests by operation, variant and answer:")
    print("\n".join(f"  {key}: {count}" for key, count in sorted(fuzzer.answers.items())))
    print("slowest:", ", ".join(f"{label} {s:.1f} s" for label, s in fuzzer.seconds.most_common(5)))
    print("\n\n".join(["noted, not failed:", *(finding.report() for finding in distinct(fuzzer.notes))]))
    failed = distinct(fuzzer.failures)
    assert not failed, f"{len(failed)} distinct failure(s):\n\n" + "\n\n".join(f.report() for f in failed)
    if len(reached) < len(operations):  # a slow machine: less coverage this run, not a failure
        warnings.warn(f"API fuzzing ran out of its {BUDGET_S:.0f} s after {len(reached)} of {len(operations)} "
                      f"operations; not reached: {[o.label for o in operations if o.label not in reached]}",
                      stacklevel=1)
