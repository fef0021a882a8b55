"""The OpenAI-compatible API (web/openai_api/) driven by the official `openai` client, its
`http_client` the web app's test client: real PostgreSQL, real nats-server, the real catalog,
application and read models. Files in both formats, jobs created, listed by page and metadata,
retrieved, cancelled, their events and checkpoints; every refusal as the client's typed exception."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import openai
import psycopg
import pytest
import uvicorn
from openai import OpenAI

from domain.aggregates.catalog_file import CatalogFile
from domain.budget_month import budget_month
from domain.job_status import JobStatus
from domain.money import cents
from domain.presets import BALANCED, CONSERVATIVE
from domain.values import ArtifactRef
from infra.embedded import free_port
from projections import metrics
from tests.helpers import wait_for
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture

SAMPLE = Path(__file__).parents[2] / "samples" / "financial-advisory.json"
NOW = datetime.now(timezone.utc)
ADAPTER = ArtifactRef("job-x", "x/adapter-attempt-1.tar", "d" * 64, 4096)
JUSTIFICATION = "Quarterly client delivery for Acme: the contract covers this extra GPU spend in full."


def chat_lines(conversations: int = 60, start: int = 0) -> bytes:
    """The sample's conversations as OpenAI chat lines: its system prompt, then every pair as a turn."""
    doc = json.loads(SAMPLE.read_bytes())
    lines = []
    for conversation in doc["conversations"][start:start + conversations]:
        pairs = conversation["training_pairs"]
        messages = [{"role": "system", "content": pairs[0]["system_prompt"]}]
        for pair in pairs:
            messages += [{"role": "user", "content": pair["user_input"]},
                         {"role": "assistant", "content": pair["target_response"]}]
        lines.append(json.dumps({"messages": messages}))
    return ("\n".join(lines) + "\n").encode()


def client(web: WebRig, user: str = "alice", **options) -> OpenAI:
    test_client = web.client()
    key = web.token(user)["Authorization"].removeprefix("Bearer ")
    # strict: every response must also pass the client's own models (required fields, literals, types)
    return OpenAI(api_key=key, base_url=f"{test_client.base_url}/v1", http_client=test_client,
                  **({"max_retries": 0, "_strict_response_validation": True} | options))


def stored_events(web: WebRig) -> int:
    """Every stored event but the shipped evaluation suites' registrations (catalogued on first use)."""
    with psycopg.connect(web.database_url) as conn:
        return conn.execute("SELECT count(*) FROM pipeline_events WHERE topic NOT LIKE 'ProbeSuite.%'").fetchone()[0]


def run(web: WebRig, job_id: str, *steps) -> None:
    for step in steps:
        web.store.app.update_job(UUID(job_id), step)


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def trained(web: WebRig, job_id: str) -> None:
    """A pod, the stages, progress, two checkpoints, an epoch's validation loss, and the metric history."""
    run(web, job_id,
        lambda j: j.start_provisioning("spot", ago(60)),
        lambda j: j.pod_started("pod-1", 1, Decimal("2.49"), ago(59)),
        lambda j: j.change_stage(JobStatus.PREPROCESSING, 1, ago(58)),
        lambda j: j.change_stage(JobStatus.TRAINING, 1, ago(50)),
        lambda j: j.record_progress(100, 400, 0.75, 1.25, 1, ago(40)),
        lambda j: j.record_checkpoint(100, ArtifactRef("job-x", "ckpt-100.tar", "a" * 64, 10), 1, ago(40)),
        lambda j: j.complete_epoch(1, 1.5, 1, ago(35)),
        lambda j: j.record_progress(200, 400, 1.5, 0.75, 1, ago(30)),
        lambda j: j.record_checkpoint(200, ArtifactRef("job-x", "ckpt-200.tar", "b" * 64, 10), 1, ago(30)))
    points = [metrics.Point("step", UUID(job_id), n, 1, (n / 133, 2.0 / (1 + n / 100), None, None, 2e-4, 0.5, 900.0,
                                                        80.0, 60.0), ago(60 - n / 10)) for n in (100, 200)]
    points.append(metrics.Point("eval", UUID(job_id), 200, 1, (1.5, None, 0.9, 2.46, None, None, None, None, None),
                                ago(30)))
    with psycopg.connect(web.database_url) as conn, conn.transaction():
        metrics.write(conn, points)


# --- files -----------------------------------------------------------------------------------------

def test_the_client_uploads_our_format_and_openai_chat_lines_and_reads_them_back(web: WebRig) -> None:
    ai = client(web)
    ours = ai.files.create(file=("financial-advisory.json", SAMPLE.read_bytes(), "application/json"),
                           purpose="fine-tune")
    chat = ai.files.create(file=("advisor.jsonl", chat_lines(), "application/jsonl"), purpose="fine-tune")

    assert (ours.object, ours.purpose, ours.status, ours.bytes) == ("file", "fine-tune", "processed",
                                                                   len(SAMPLE.read_bytes()))
    assert ours.model_extra["format"] == "pipeline" and ours.model_extra["conversation_count"] == 300
    assert (chat.status, chat.filename, chat.model_extra["format"]) == ("processed", "advisor.jsonl", "openai-chat")
    assert chat.model_extra["conversation_count"] == 60  # one conversation per line
    assert chat.id == str(CatalogFile.id_for(hashlib.sha256(chat_lines()).hexdigest()))
    assert ai.files.retrieve(chat.id).model_dump() == chat.model_dump()  # at once, before the read model has it
    assert ai.files.content(chat.id).content == chat_lines()

    web.project()
    listed = ai.files.list()
    assert [f.id for f in listed.data] == [chat.id, ours.id]  # newest first
    first = ai.files.list(limit=1, order="asc")
    assert [f.id for f in first.data] == [ours.id] and first.has_more
    assert [f.id for f in ai.files.list(limit=1, order="asc", after=ours.id).data] == [chat.id]
    assert ai.files.list(purpose="batch").data == []

    catalog = web.client("alice").get("/api/files").json()
    shown = next(f for f in catalog if f["id"] == chat.id)
    assert shown["stats"]["personas"] == [{"value": "unspecified", "count": 60, "percent": "100.0"}]
    assert shown["avg_quality"] is None  # no scores in OpenAI's format: the catalog shows none, not zeros


def test_the_pages_upload_and_the_json_api_take_chat_lines_too(web: WebRig) -> None:
    page = web.form("alice", "/files", {"name": "Advisor chat"}, headers={"Accept": "text/html"},
                    files={"file": ("advisor.jsonl", chat_lines(), "application/jsonl")})
    assert page.status_code == 303
    assert "Advisor chat added: 60 conversations, 285 training pairs." in \
        web.client("alice").get(page.headers["location"], headers={"Accept": "text/html"}).text
    api = web.client().post("/api/files", headers=web.token("bob"),
                            files={"file": ("other.jsonl", chat_lines(50, start=100), "application/jsonl")})
    assert api.status_code == 201 and api.json()["conversation_count"] == 50
    web.project()
    listed = web.client("alice").get("/files", headers={"Accept": "text/html"}).text
    assert listed.count("OpenAI chat lines (one conversation a line; no") == 2


def test_a_malformed_file_is_a_bad_request_naming_the_line_and_field_and_is_catalogued_as_invalid(
        web: WebRig) -> None:
    ai = client(web)
    lines = chat_lines(3).decode().splitlines()
    broken = json.loads(lines[1])
    broken["messages"][2]["content"] = "   "
    del broken["messages"][1]["role"]
    body = "\n".join([lines[0], json.dumps(broken), lines[2], '{"messages": [}']).encode()

    with pytest.raises(openai.BadRequestError) as refused:
        ai.files.create(file=("broken.jsonl", body), purpose="fine-tune")

    error = refused.value
    assert (error.status_code, error.code, error.param) == (400, "invalid_training_file", "file")
    assert error.body["message"] == ("broken.jsonl failed validation with 3 problems; the first, at line 4,"
                                     " column 15: Line 4 is not valid JSON: Expecting value at column 15")
    assert error.body["problems"] == [  # lines that are not JSON first (they are read first), then the fields
        {"place": "line 4, column 15", "message": "Line 4 is not valid JSON: Expecting value at column 15"},
        {"place": "line 2: messages[1].role", "message": "Line 2, message #2 is missing 'role'"},
        {"place": "line 2: messages[2].content", "message": "Line 2, message #3 has an empty 'content'"}]
    assert ai.files.retrieve(error.body["file_id"]).status == "error"  # kept, with its problems
    with pytest.raises(openai.BadRequestError) as wrong_purpose:
        ai.files.create(file=("a.jsonl", chat_lines(1)), purpose="batch")
    assert wrong_purpose.value.param == "purpose"


# --- jobs ------------------------------------------------------------------------------------------

def test_a_job_from_chat_lines_starts_at_once_with_auto_hyperparameters_mapped_to_the_preset(web: WebRig) -> None:
    ai = client(web)
    chat = ai.files.create(file=("advisor.jsonl", chat_lines()), purpose="fine-tune")

    job = ai.fine_tuning.jobs.create(model="tiny", training_file=chat.id, hyperparameters={"n_epochs": "auto"},
                                     suffix="advisor-v1", metadata={"team": "risk", "ticket": "ML-42"})

    assert (job.object, job.status, job.model, job.training_file) == ("fine_tuning.job", "queued", "tiny", chat.id)
    assert job.hyperparameters.model_dump() == {"n_epochs": CONSERVATIVE.epochs, "batch_size": 4,
                                                "learning_rate_multiplier": 1.0}  # 60 conversations: Conservative
    assert job.method.type == "supervised"
    assert job.method.supervised.hyperparameters.model_dump() == job.hyperparameters.model_dump()
    assert (job.metadata, job.seed, job.fine_tuned_model, job.error, job.finished_at) == (
        {"team": "risk", "ticket": "ML-42"}, 42, None, None, None)
    extra = job.model_extra
    aggregate = web.store.app.get_job(UUID(job.id))
    assert aggregate.status is JobStatus.QUEUED and aggregate.configuration["preset"] == "conservative"
    cost_max = aggregate.configuration["estimated_cost_max"]
    assert extra["estimated_cost"] == {"min": str(cents(aggregate.configuration["estimated_cost_min"])),
                                       "max": str(cents(cost_max)), "currency": "usd"}
    assert (extra["budget_month"], extra["cost"], extra["interruptions"]) == (
        budget_month(datetime.now(timezone.utc), "UTC"), "0.00", 0)
    retrieved = ai.fine_tuning.jobs.retrieve(job.id)  # the aggregate's facts until the read model has the job
    assert retrieved.model_dump() == job.model_dump(exclude={"warnings"}) and job.model_extra["warnings"] == []
    assert web.store.app.budget(extra["budget_month"]).reservations[str(job.id)] == cost_max


def test_a_job_is_evaluated_on_the_shipped_suites_as_the_json_apis_and_extra_body_chooses_them(web: WebRig) -> None:
    ai = client(web)
    chat = ai.files.create(file=("advisor.jsonl", chat_lines()), purpose="fine-tune")
    job = ai.fine_tuning.jobs.create(model="tiny", training_file=chat.id)

    launched = web.store.app.get_job(UUID(job.id))
    assert (launched.knowledge_suite.name, launched.probe_suites) == ("financial-knowledge.jsonl", [])
    assert (launched.ei_suite.name, launched.rubric.name) == ("emotional-intelligence.jsonl", "Elena Morales voice")
    ai.fine_tuning.jobs.cancel(job.id)  # the file is free again
    made = web.client().post("/api/jobs", json={"training_file_id": chat.id}, headers=web.token("alice"))
    assert made.status_code == 201, made.text
    created = web.store.app.get_job(UUID(made.json()["id"]))  # the JSON API's create: the same suites
    assert (created.knowledge_suite, created.probe_suites, created.ei_suite, created.rubric) == (
        launched.knowledge_suite, launched.probe_suites, launched.ei_suite, launched.rubric)
    web.client().post(f"/api/jobs/{created.id}/cancel", json={"reason": "testing"}, headers=web.token("alice"))

    with pytest.raises(openai.BadRequestError) as unknown:
        ai.fine_tuning.jobs.create(model="tiny", training_file=chat.id,
                                   extra_body={"probe_suite_ids": ["9b2f4c1e-0000-4000-8000-000000000000"]})
    assert unknown.value.body["message"] == ("probe_suite_ids[0]: there is no evaluation suite"
                                             " 9b2f4c1e-0000-4000-8000-000000000000 (see /suites)")
    bare = ai.fine_tuning.jobs.create(model="tiny", training_file=chat.id, extra_body={
        "knowledge_retention": False, "emotional_intelligence": False, "brand_voice": False})
    left_out = web.store.app.get_job(UUID(bare.id))
    assert (left_out.knowledge_suite, left_out.probe_suites, left_out.ei_suite, left_out.rubric) == (None, [], None,
                                                                                                       None)


def test_explicit_hyperparameters_pick_the_nearest_preset_and_override_the_rest(web: WebRig) -> None:
    ai = client(web)
    chat = ai.files.create(file=("advisor.jsonl", chat_lines()), purpose="fine-tune")
    with pytest.raises(openai.BadRequestError) as refused:
        ai.fine_tuning.jobs.create(model="tiny", training_file=chat.id, hyperparameters={"n_epochs": 50})
    assert (refused.value.param, refused.value.code) == ("hyperparameters.n_epochs", "invalid_hyperparameters")
    assert refused.value.body["message"] == "n_epochs must be between 1 and 10 (got 50)"
    with pytest.raises(openai.BadRequestError) as too_fast:
        ai.fine_tuning.jobs.create(model="tiny", training_file=chat.id, method={
            "type": "supervised", "supervised": {"hyperparameters": {"learning_rate_multiplier": 200}}})
    assert too_fast.value.param == "method.supervised.hyperparameters.learning_rate_multiplier"
    assert too_fast.value.body["message"] == ("learning_rate_multiplier 200 gives a learning rate of 0.02 (the"
                                              " Conservative preset's 0.0001 × 200), outside 1e-06 to 0.01")
    with pytest.raises(openai.BadRequestError) as other_model:
        ai.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=chat.id)
    assert other_model.value.param == "model" and "this pipeline fine-tunes 'tiny'" in other_model.value.body["message"]
    with pytest.raises(openai.BadRequestError) as not_a_number:
        ai.fine_tuning.jobs.create(model="tiny", training_file=chat.id, hyperparameters={"n_epochs": True})
    assert not_a_number.value.param == "hyperparameters.n_epochs"
    assert not_a_number.value.body["message"] == 'n_epochs must be "auto" or a whole number (got true)'
    with pytest.raises(openai.BadRequestError) as dpo:
        ai.fine_tuning.jobs.create(model="tiny", training_file=chat.id, method={"type": "dpo"})
    assert dpo.value.param == "method.type"
    with pytest.raises(openai.BadRequestError) as too_much:  # OpenAI's limit: 16 pairs
        ai.fine_tuning.jobs.create(model="tiny", training_file=chat.id, metadata={f"k{n}": "v" for n in range(17)})
    assert (too_much.value.param, too_much.value.code) == ("metadata", "invalid_metadata")
    assert too_much.value.body["message"] == "Metadata may hold at most 16 key-value pairs (got 17)"
    with pytest.raises(openai.BadRequestError) as bad_suffix:
        ai.fine_tuning.jobs.create(model="tiny", training_file=chat.id, suffix="advisor v1")
    assert (bad_suffix.value.param, bad_suffix.value.code) == ("suffix", "invalid_suffix")

    job = ai.fine_tuning.jobs.create(
        model="tiny", training_file=chat.id, seed=7,
        method={"type": "supervised", "supervised": {"hyperparameters": {
            "n_epochs": 3, "batch_size": 8, "learning_rate_multiplier": 0.5}}})

    config = web.store.app.get_job(UUID(job.id)).configuration
    assert config["preset"] == BALANCED.name  # 3 epochs: Balanced's, so only the batch and rate are overridden
    assert config["hyperparameters"] == BALANCED.as_config() | {
        "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4, "learning_rate": 0.0001, "seed": 7}
    assert job.hyperparameters.model_dump() == {"n_epochs": 3, "batch_size": 8, "learning_rate_multiplier": 0.5}
    assert job.seed == 7


def test_a_job_validates_on_its_validation_file_and_an_unknown_or_invalid_one_is_refused_naming_it(
        web: WebRig) -> None:
    ai = client(web)
    chat = ai.files.create(file=("advisor.jsonl", chat_lines()), purpose="fine-tune")
    held_out = ai.files.create(file=("held-out.jsonl", chat_lines(5, start=200)), purpose="fine-tune")
    with pytest.raises(openai.BadRequestError) as bad:
        ai.files.create(file=("bad.jsonl", b'{"messages": []}\n'), purpose="fine-tune")
    invalid = bad.value.body["file_id"]  # catalogued, as invalid
    before = stored_events(web)

    for value, message in [
        ("file-abc", "No validation file with id 'file-abc': upload it with POST /v1/files"),
        ("9b2f4c1e-0000-4000-8000-000000000000",
         "No validation file with id '9b2f4c1e-0000-4000-8000-000000000000': upload it with POST /v1/files"),
        (invalid, "Validation file failed validation: "),
    ]:
        with pytest.raises(openai.BadRequestError) as refused:
            ai.fine_tuning.jobs.create(model="tiny", training_file=chat.id, validation_file=value)
        assert (refused.value.param, refused.value.code) == ("validation_file", "invalid_validation_file")
        assert refused.value.body["message"].startswith(message), refused.value.body
    assert stored_events(web) == before  # no job, no reservation, the training file not claimed

    job = ai.fine_tuning.jobs.create(model="tiny", training_file=chat.id, validation_file=held_out.id)

    assert (job.status, job.training_file, job.validation_file) == ("queued", chat.id, held_out.id)
    assert web.store.app.get_job(UUID(job.id)).validation_file == web.store.app.catalog_file(UUID(held_out.id)).file
    assert ai.fine_tuning.jobs.retrieve(job.id).validation_file == held_out.id  # from the aggregate
    other = ai.files.create(file=("other.jsonl", chat_lines(50, start=100)), purpose="fine-tune")
    second = ai.fine_tuning.jobs.create(model="tiny", training_file=other.id, validation_file=held_out.id)
    web.project()  # the read model has them now
    listed = {j.id: j.validation_file for j in ai.fine_tuning.jobs.list()}
    assert listed == {job.id: held_out.id, second.id: held_out.id}  # one file validates any number of jobs
    assert ai.fine_tuning.jobs.retrieve(job.id).validation_file == held_out.id

    api = web.client()  # the JSON API's create takes it as validation_file_id
    third = ai.files.create(file=("third.jsonl", chat_lines(50, start=150)), purpose="fine-tune")
    unknown = api.post("/api/jobs", json={"training_file_id": third.id,
                                          "validation_file_id": "9b2f4c1e-0000-4000-8000-000000000000"},
                       headers=web.token("alice"))
    assert (unknown.status_code, unknown.json()["detail"]) == (400, "Validation file not found")
    made = api.post("/api/jobs", json={"training_file_id": third.id, "validation_file_id": held_out.id},
                    headers=web.token("alice"))
    assert made.status_code == 201, made.text
    assert ai.fine_tuning.jobs.retrieve(made.json()["id"]).validation_file == held_out.id


def test_jobs_are_listed_newest_first_page_by_page_and_by_metadata(web: WebRig) -> None:
    ai = client(web)
    ids = []
    for n in range(5):
        chat = ai.files.create(file=(f"set-{n}.jsonl", chat_lines(50, start=n * 50)), purpose="fine-tune")
        ids.append(ai.fine_tuning.jobs.create(model="tiny", training_file=chat.id,
                                              metadata={"team": "risk" if n % 2 else "ops", "n": str(n)}).id)
    web.project()

    first = ai.fine_tuning.jobs.list(limit=2)
    assert [j.id for j in first.data] == ids[:2:-1][:2] and first.has_more
    assert [j.id for j in first.get_next_page().data] == [ids[2], ids[1]]  # after= the page's last id
    assert [j.id for j in ai.fine_tuning.jobs.list(limit=2)] == ids[::-1]  # auto-paging walks every page
    risk = ai.fine_tuning.jobs.list(limit=1, metadata={"team": "risk"})
    assert [j.id for j in risk] == [ids[3], ids[1]]
    assert [j.id for j in ai.fine_tuning.jobs.list(metadata={"team": "risk", "n": "3"})] == [ids[3]]
    assert list(ai.fine_tuning.jobs.list(extra_query={"metadata": "null"})) == []
    listed = {j.id: j.model_dump() for j in ai.fine_tuning.jobs.list()}
    assert listed[ids[0]] == ai.fine_tuning.jobs.retrieve(ids[0]).model_dump()  # read model and aggregate agree
    with pytest.raises(openai.BadRequestError) as bad_cursor:
        ai.fine_tuning.jobs.list(after="not-a-job")
    assert bad_cursor.value.param == "after"
    with pytest.raises(openai.BadRequestError) as bad_limit:
        ai.fine_tuning.jobs.list(extra_query={"limit": "abc"})
    assert (bad_limit.value.param, bad_limit.value.code) == ("limit", "invalid_value")


def test_a_job_reads_as_running_then_succeeded_with_its_events_checkpoints_and_model_name(web: WebRig) -> None:
    ai = client(web)
    chat = ai.files.create(file=("advisor.jsonl", chat_lines()), purpose="fine-tune")
    job = ai.fine_tuning.jobs.create(model="tiny", training_file=chat.id, suffix="advisor")
    trained(web, job.id)
    web.project()

    running = ai.fine_tuning.jobs.retrieve(job.id)
    assert running.status == "running" and running.model_extra["pipeline_status"] == "training"
    assert running.estimated_finish > int(datetime.now(timezone.utc).timestamp())
    checkpoints = ai.fine_tuning.jobs.checkpoints.list(job.id)
    assert [(c.step_number, c.metrics.train_loss, c.metrics.valid_loss) for c in checkpoints.data] == [
        (200, pytest.approx(2 / 3), 0.9), (100, 1.0, None)]  # newest first, losses from the metric history
    assert checkpoints.data[0].fine_tuned_model_checkpoint == f"ft:tiny:advisor:{job.id}:ckpt-step-200"
    assert [c.step_number for c in ai.fine_tuning.jobs.checkpoints.list(job.id, limit=1)] == [200, 100]

    run(web, job.id,
        lambda j: j.change_stage(JobStatus.FINALIZATION, 1, ago(5)),
        lambda j: j.complete(ADAPTER, {"final_loss": 0.5, "trained_tokens": 183_422}, 1, ago(4)),
        lambda j: j.pod_stopped("pod-1", ago(4)))
    web.store.app.record_job_spend(UUID(job.id), ago(4))
    web.project()

    done = ai.fine_tuning.jobs.retrieve(job.id)
    assert (done.status, done.fine_tuned_model, done.trained_tokens, done.finished_at) == (
        "succeeded", f"ft:tiny:advisor:{job.id}", 183_422, int(ago(4).timestamp()))
    assert done.estimated_finish is None and done.model_extra["cost"] == "2.28"  # 55 min at $2.49/h
    events = ai.fine_tuning.jobs.list_events(job.id, limit=100).data
    numbers = [int(e.id.removeprefix("ftevent-")) for e in events]
    assert numbers == sorted(numbers, reverse=True)  # newest first, as recorded
    with psycopg.connect(web.database_url) as conn:
        logged = conn.execute("SELECT message FROM event_log WHERE job_id = %s ORDER BY notification_id DESC",
                              (UUID(job.id),)).fetchall()
    assert [e.message for e in events] == [m for (m,) in logged]  # the job page's log, budget events included
    assert events[-1].data["event"] == "Created" and events[0].message == "Unspent reservation released: $2.38"
    progress = [e for e in events if e.data["event"] == "ProgressRecorded"]
    assert [(e.type, e.level, e.data["step"], e.data["train_loss"]) for e in progress] == [
        ("metrics", "info", 200, 0.75), ("metrics", "info", 100, 1.25)]
    assert {e.type for e in events} == {"message", "metrics"}
    paged = list(ai.fine_tuning.jobs.list_events(job.id, limit=3))
    assert [e.id for e in paged] == [e.id for e in events]


def test_cancel_ends_a_job_and_a_finished_job_cannot_be_cancelled(web: WebRig) -> None:
    ai = client(web, max_retries=2)
    chat = ai.files.create(file=("advisor.jsonl", chat_lines()), purpose="fine-tune")
    job = ai.fine_tuning.jobs.create(model="tiny", training_file=chat.id)

    cancelled = ai.fine_tuning.jobs.cancel(job.id)

    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert web.store.app.get_job(UUID(job.id)).cancellation == {
        "reason": "other", "notes": "Cancelled through the OpenAI-compatible API", "actor": "alice"}
    assert ai.fine_tuning.jobs.cancel(job.id).status == "cancelled"  # again: nothing more happens
    other = ai.fine_tuning.jobs.create(model="tiny", training_file=chat.id)  # the file is free again
    run(web, other.id, lambda j: j.start_provisioning("spot", ago(3)),
        lambda j: j.pod_started("pod-9", 1, Decimal("2.49"), ago(3)),
        lambda j: j.change_stage(JobStatus.TRAINING, 1, ago(2)),
        lambda j: j.complete(ADAPTER, {}, 1, ago(1)))
    before = stored_events(web)
    with pytest.raises(openai.ConflictError) as refused:
        ai.fine_tuning.jobs.cancel(other.id)
    assert refused.value.response.headers["x-should-retry"] == "false"  # sent once, though the client retries 409s
    assert refused.value.body["message"] == "A completed job cannot become cancelled"
    assert stored_events(web) == before
    with pytest.raises(openai.ConflictError) as pause:
        ai.fine_tuning.jobs.pause(other.id)
    assert pause.value.body["message"] == "Only a training job can be paused (this one is completed)"


def test_pause_reads_pausing_until_the_pod_has_stopped_then_paused_and_resume_queues_it_again(web: WebRig) -> None:
    ai = client(web)
    chat = ai.files.create(file=("advisor.jsonl", chat_lines()), purpose="fine-tune")
    job = ai.fine_tuning.jobs.create(model="tiny", training_file=chat.id)
    with pytest.raises(openai.ConflictError) as early:  # queued: nothing trains yet
        ai.fine_tuning.jobs.pause(job.id)
    assert early.value.body["message"] == "Only a training job can be paused (this one is queued)"
    trained(web, job.id)
    with pytest.raises(openai.PermissionDeniedError) as stranger:  # carol is a member, not its creator
        client(web, "carol").fine_tuning.jobs.pause(job.id)
    assert stranger.value.body["message"] == "Only the job's creator, a manager or an admin may pause it"

    lenient = client(web, _strict_response_validation=False)  # "pausing", "paused": not in the client's type
    pausing = lenient.fine_tuning.jobs.pause(job.id)  # while the pod saves a checkpoint and stops
    assert (pausing.status, pausing.model_extra["pipeline_status"]) == ("pausing", "pausing")
    assert lenient.fine_tuning.jobs.pause(job.id).status == "pausing"  # asked again: nothing more happens
    web.project()
    assert lenient.fine_tuning.jobs.retrieve(job.id).status == "pausing"  # the read model's row says it too
    run(web, job.id, lambda j: j.interrupt("sigterm", 230, 1, ago(0.5)), lambda j: j.pod_stopped("pod-1", ago(0.4)))
    web.project()
    paused_object = lenient.fine_tuning.jobs.retrieve(job.id)
    assert (paused_object.status, paused_object.model_extra["pipeline_status"]) == ("paused", "paused")
    assert (paused_object.finished_at, paused_object.fine_tuned_model, paused_object.error) == (None, None, None)
    assert paused_object.estimated_finish is None  # not under way: no finish to estimate
    paused = web.store.app.get_job(UUID(job.id))
    assert paused.pause["step"] == 230 and paused.pause["checkpoint_step"] == 200 and not paused.running_pods()
    with pytest.raises(openai.ConflictError):
        ai.fine_tuning.jobs.pause(job.id)

    resumed = lenient.fine_tuning.jobs.resume(job.id)
    assert (resumed.status, resumed.model_extra["pipeline_status"]) == ("queued", "queued")
    assert web.store.app.get_job(UUID(job.id)).latest_checkpoint.name == "ckpt-200.tar"  # where its next pod starts
    with pytest.raises(openai.ConflictError) as again:
        ai.fine_tuning.jobs.resume(job.id)
    assert again.value.body["message"] == "Only a paused job can be resumed (this one is queued)"


def test_a_budget_refusal_is_a_conflict_with_the_specs_message_and_leaves_nothing_behind(web: WebRig) -> None:
    ai = client(web, max_retries=2)
    chat = ai.files.create(file=("advisor.jsonl", chat_lines()), purpose="fine-tune")
    month = budget_month(datetime.now(timezone.utc), "UTC")
    web.store.app.change_limit(month, Decimal("0.01"), "bob", "manager", JUSTIFICATION, datetime.now(timezone.utc))
    before = stored_events(web)
    sent: list[str] = []
    web.client().event_hooks["request"].append(lambda request: sent.append(request.url.path))

    with pytest.raises(openai.ConflictError) as refused:
        ai.fine_tuning.jobs.create(model="tiny", training_file=chat.id)

    error = refused.value
    assert error.code == "budget_exceeded" and error.body["remaining_budget"] == "0.01"
    assert error.body["message"].startswith("Estimated cost ($") and error.body["message"].endswith(
        "exceeds remaining monthly budget ($0.01). Adjust configuration or increase budget limit.")
    assert error.body["figures"].startswith("❌ Budget Exceeded - Estimated Cost: $")
    assert stored_events(web) == before  # no job, no reservation, the file not claimed
    assert sent == ["/v1/fine_tuning/jobs"]  # once: x-should-retry false, though the client retries a 409 twice
    job = client(web, "bob").fine_tuning.jobs.create(model="tiny", training_file=chat.id,
                                                     extra_body={"override_justification": JUSTIFICATION})
    assert job.status == "queued" and job.model_extra["warnings"]


def test_refusals_of_the_api_key_and_unknown_ids_are_the_clients_typed_errors(web: WebRig) -> None:
    with pytest.raises(openai.AuthenticationError) as unknown_key:
        OpenAI(api_key="lpt_not-a-token", base_url=f"{web.client().base_url}/v1", http_client=web.client(),
               max_retries=0).fine_tuning.jobs.list()
    assert unknown_key.value.code == "invalid_api_key"
    session = web.client("alice")  # signed in with a cookie: not an API token
    answer = session.get("/v1/fine_tuning/jobs")
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_api_key"

    ai = client(web)
    with pytest.raises(openai.NotFoundError) as missing:
        ai.fine_tuning.jobs.retrieve("9b2f4c1e-0000-4000-8000-000000000000")
    assert (missing.value.code, missing.value.param) == ("fine_tuning_job_not_found", "fine_tuning_job_id")
    with pytest.raises(openai.NotFoundError) as no_route:
        ai.get("/fine_tuning/alpha/graders", cast_to=object)
    assert no_route.value.code == "unknown_url"
    with pytest.raises(openai.BadRequestError) as no_file:
        ai.fine_tuning.jobs.create(model="tiny", training_file="file-abc")
    assert (no_file.value.param, no_file.value.code) == ("training_file", "invalid_training_file")
    with pytest.raises(openai.APIStatusError) as no_delete:
        ai.files.delete("9b2f4c1e-0000-4000-8000-000000000000")
    assert (no_delete.value.status_code, no_delete.value.code) == (405, "method_not_supported")
    with pytest.raises(openai.BadRequestError) as unknown_field:
        ai.fine_tuning.jobs.create(model="tiny", training_file="file-abc", extra_body={"epochs": 3})
    assert unknown_field.value.param == "epochs" and unknown_field.value.code == "invalid_value"
    broken = web.client().post("/v1/fine_tuning/jobs", content=b'{"model": "tiny",',
                               headers=web.token("alice") | {"content-type": "application/json"})
    assert broken.status_code == 400 and broken.headers["x-should-retry"] == "false"
    assert broken.json()["error"]["code"] == "invalid_input" and "line 1" in broken.json()["error"]["message"]
    web.settings.agent.max_running, web.settings.agent.max_queued = 0, 0  # every slot taken, the queue full
    with pytest.raises(openai.RateLimitError) as full:
        ai.fine_tuning.jobs.create(model="tiny", training_file="9b2f4c1e-0000-4000-8000-000000000000")
    assert full.value.code == "queue_full" and full.value.body["message"].startswith("Queue full (0/0 active jobs).")


def test_the_default_client_over_real_http_runs_a_script_unchanged_but_for_base_url_and_key(
        web: WebRig, tmp_path: Path) -> None:
    """No test transport: the client's own HTTP stack against the app under uvicorn."""
    from web.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(web.settings, web.database_url, web.nats_url),
                                           host="127.0.0.1", port=free_port(), log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, name="openai-api-web", daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), timeout=30, message="the web app")
    try:
        path = tmp_path / "advisor.jsonl"
        path.write_bytes(chat_lines())
        ai = OpenAI(base_url=f"http://127.0.0.1:{server.config.port}/v1",
                    api_key=web.token("carol")["Authorization"].removeprefix("Bearer "),
                    _strict_response_validation=True)
        with path.open("rb") as f:
            uploaded = ai.files.create(file=f, purpose="fine-tune")
        job = ai.fine_tuning.jobs.create(model="tiny", training_file=uploaded.id, metadata={"run": "live"})
        assert ai.fine_tuning.jobs.retrieve(job.id).status == "queued"
        assert ai.files.content(uploaded.id).read() == chat_lines()
        assert ai.fine_tuning.jobs.cancel(job.id).status == "cancelled"
        web.project()  # the projections worker's part, in the stack
        latest = [e.data["event"] for e in ai.fine_tuning.jobs.list_events(job.id, limit=3).data]
        assert latest == ["Released", "Cancelled", "Reserved"]  # the budget's release, the cancel, the launch's
    finally:
        server.should_exit = True
        thread.join(30)
