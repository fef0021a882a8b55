"""`pipeline audit replay`: the ordered history from the event store, in text, JSON Lines and CSV,
checked against the stored events themselves; --job and time filters."""

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest

from domain.job_status import CancelReason
from infra.eventstore import EventStore
from tests.factories import T0, eventful_job, queue_sample_job
from tests.unit.test_pipeline_application import register


def untranscoded(value: Any) -> Any:
    """The stored JSON read independently of the code under test: transcoded values as plain JSON."""
    if isinstance(value, dict) and set(value) == {"_type_", "_data_"}:
        kind, data = value["_type_"], value["_data_"]
        return {"uuid_hex": lambda d: str(UUID(d)), "decimal_str": str, "artifact_ref": untranscoded,
                "datetime_iso": lambda d: datetime.fromisoformat(d).isoformat()}[kind](data)
    if isinstance(value, dict):
        return {k: untranscoded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [untranscoded(v) for v in value]
    if isinstance(value, float) and value != value:
        return "nan"
    return value


@pytest.fixture
def history(migrated: str) -> dict[str, Any]:
    """Two jobs (one eventful, one cancelled), a catalog file and a job from it."""
    store = EventStore.open(migrated)
    try:
        eventful = eventful_job(store.app)
        cancelled = queue_sample_job(store.app, name="Cancelled one")
        store.app.cancel_job(cancelled, CancelReason.TOO_EXPENSIVE, "", "carol", T0)
        from_file = store.app.create_job_from_file(register(store.app), created_by="dave", at=T0)
        store.app.start_job(from_file, "dave", "member", T0)
        stored = list(store.app.recorder.select_notifications(1, 10_000))
    finally:
        store.close()
    return {"eventful": eventful, "cancelled": cancelled, "from_file": from_file, "stored": stored}


def replay(url: str, *args: str) -> subprocess.CompletedProcess:
    # NATS unreachable on purpose: an audit reads only the event store.
    env = os.environ | {"DATABASE_URL": url, "NATS_URL": "nats://127.0.0.1:1"}
    return subprocess.run([sys.executable, "-m", "pipeline", "audit", "replay", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_json_lines_are_every_stored_event_in_order_with_its_full_payload(migrated: str, history: dict) -> None:
    result = replay(migrated, "--format", "json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    stored = history["stored"]
    assert [r["notification_id"] for r in lines] == [n.id for n in stored]
    for record, notification in zip(lines, stored, strict=True):
        state = untranscoded(json.loads(notification.state))
        assert (record["topic"], record["aggregate_type"], record["aggregate_id"], record["version"]) == (
            notification.topic, notification.topic.split(".")[0], str(notification.originator_id),
            notification.originator_version)
        assert record["payload"] == state
        assert record["at"] == state["at"]
    actors = {(r["topic"], r["actor"]) for r in lines if r["actor"]}
    assert actors == {("TrainingJob.Created", "alice"), ("TrainingJob.NoteAdded", "bob"),
                      ("TrainingJob.Cancelled", "carol"), ("TrainingJob.Created", "dave"),
                      ("CatalogFile.Created", "alice")}
    assert "replaying" not in result.stderr  # no progress line when stderr is not a terminal


def test_csv_has_a_header_and_the_same_records_as_json(migrated: str, history: dict) -> None:
    as_json = [json.loads(line) for line in replay(migrated, "--format", "json").stdout.splitlines()]
    result = replay(migrated, "--format", "csv")
    assert result.returncode == 0, result.stderr
    header, *rows = list(csv.reader(io.StringIO(result.stdout)))
    assert header == ["notification_id", "at", "aggregate_type", "aggregate_id", "version", "topic", "actor", "payload"]
    assert len(rows) == len(history["stored"])
    for row, record in zip(rows, as_json, strict=True):
        assert row[:7] == [str(record[c]) if record[c] is not None else "" for c in header[:7]]
        assert json.loads(row[7]) == record["payload"]


def test_text_is_one_line_per_event(migrated: str, history: dict) -> None:
    result = replay(migrated, "--job", str(history["cancelled"]))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split("  ")[4] for line in lines] == [
        "TrainingJob.Created", "TrainingJob.Configured", "TrainingJob.Queued", "Budget.Reserved",
        "TrainingJob.Cancelled", "Budget.Released"]
    number, at, aggregate, version, topic, actor, payload = lines[4].split("  ", 6)
    assert (aggregate, version, actor) == (f"TrainingJob {history['cancelled']}", "v4", "carol")
    assert json.loads(payload)["reason"] == "too_expensive" and at == T0.isoformat()


def test_job_and_time_filters(migrated: str, history: dict) -> None:
    def topics(*args: str) -> list[str]:
        result = replay(migrated, "--format", "json", *args)
        assert result.returncode == 0, result.stderr
        return [json.loads(line)["topic"] for line in result.stdout.splitlines()]

    eventful = topics("--job", str(history["eventful"]))
    assert len(eventful) == 20 and eventful.count("Budget.Reserved") == 1 and "Budget.Created" not in eventful
    assert eventful[-3:] == ["Budget.SpendRecorded", "TrainingJob.Failed", "Budget.Released"]
    from_file = topics("--job", str(history["from_file"]))
    assert "CatalogFile.Claimed" in from_file and "CatalogFile.Created" not in from_file
    # `at` from 12:20 (inclusive) to 12:41 (exclusive); a zone-less time is UTC.
    assert topics("--since", "2026-11-24T12:20:00+00:00", "--until", "2026-11-24T12:41") == [
        "TrainingJob.ProgressRecorded", "TrainingJob.ProgressRecorded", "TrainingJob.CheckpointSaved",
        "TrainingJob.Interrupted", "TrainingJob.PodStopped"]
    assert topics("--job", str(history["eventful"]), "--since", "2026-11-24T12:40Z") == [
        "TrainingJob.Interrupted", "TrainingJob.PodStopped", "TrainingJob.RecoveryStarted", "Budget.SpendRecorded",
        "TrainingJob.Failed", "Budget.Released"]


def test_nothing_matched_exits_1_with_a_reason(migrated: str, history: dict) -> None:
    result = replay(migrated, "--since", "2030-01-01")
    assert (result.returncode, result.stdout) == (1, "")
    assert "no events matched" in result.stderr
