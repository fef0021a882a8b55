"""FR4.2.1: a job's metric history exported as the spec's CSV and JSON, under the spec's file
name, each export recorded on the job for the audit trail."""

import csv
import io
import json
from datetime import datetime, timezone

import psycopg

from infra.eventstore import EventStore
from tests.factories import queue_sample_job
from tests.integration.test_metrics import apply, evaluation, step
from web.reports import metrics_export

AT = datetime(2026, 11, 24, 15, 30, 5, tzinfo=timezone.utc)


def test_the_metrics_export_has_the_spec_columns_structure_name_and_is_recorded(migrated: str) -> None:
    store = EventStore.open(migrated)
    try:
        job_id = queue_sample_job(store.app, name="Advisor tone: v1/β")
        with psycopg.connect(migrated) as conn:
            apply(conn, [step(job_id, n) for n in (1, 2, 3)] + [evaluation(job_id, 2, 0.75)])
            name, body = metrics_export.export(conn, store.app, job_id, "csv", "alice", AT)
            table = list(csv.reader(io.StringIO("".join(body))))
            json_name, json_body = metrics_export.export(conn, store.app, job_id, "json", "bob", AT)
            document = json.loads("".join(json_body))
        assert name == "Advisor-tone-v1-metrics-20261124T153005Z.csv"
        assert json_name.endswith("-metrics-20261124T153005Z.json")
        assert table[0] == list(metrics_export.CSV_COLUMNS)
        assert [row[0] for row in table[1:]] == ["1", "2", "3"]
        assert table[2][3] == "0.75" and table[1][3] == ""           # validation loss on step 2 only
        assert [row[8] for row in table[1:]] == ["0.000", "10.000", "20.000"]  # elapsed since the first
        assert float(table[3][2]) == 2.0 / 3 and table[1][6] == "87.0"
        assert document["job_metadata"]["job_id"] == str(job_id)
        assert document["job_metadata"]["configuration"]["preset"] == "balanced"
        assert [p["step"] for p in document["training_metrics"]] == [1, 2, 3]
        assert document["final_metrics"]["final_validation_loss"] == 0.75
        kinds = [s.topic for s in store.app.recorder.select_events(job_id)]
        assert kinds.count("TrainingJob.MetricsExported") == 2
        assert store.app.get_job(job_id).exports == 2
    finally:
        store.close()


def test_the_export_package_holds_the_csv_the_json_and_the_charts_as_png(migrated: str) -> None:
    """FR4.2.1 "include charts (loss curves) as embedded PNG in export package"."""
    import zipfile

    from PIL import Image

    store = EventStore.open(migrated)
    try:
        job_id = queue_sample_job(store.app, name="Advisor tone: v1/β")
        with psycopg.connect(migrated) as conn:
            apply(conn, [step(job_id, n) for n in range(1, 41)] + [evaluation(job_id, 20, 0.75),
                                                                 evaluation(job_id, 40, 0.5)])
            name, body = metrics_export.package(conn, store.app, job_id, "alice", AT)
            _, csv_body = metrics_export.export(conn, store.app, job_id, "csv", "alice", AT)
            empty_job = queue_sample_job(store.app, name="Nothing logged")
            _, empty = metrics_export.package(conn, store.app, empty_job, "alice", AT)
        assert name == "Advisor-tone-v1-metrics-20261124T153005Z.zip"
        archive = zipfile.ZipFile(io.BytesIO(body))
        assert sorted(archive.namelist()) == ["Advisor-tone-v1-metrics-20261124T153005Z.csv",
                                              "Advisor-tone-v1-metrics-20261124T153005Z.json",
                                              "learning-rate.png", "loss-curves.png"]
        assert archive.read("Advisor-tone-v1-metrics-20261124T153005Z.csv").decode() == "".join(csv_body)
        assert len(json.loads(archive.read("Advisor-tone-v1-metrics-20261124T153005Z.json"))["training_metrics"]) == 40
        for png in ("loss-curves.png", "learning-rate.png"):
            image = Image.open(io.BytesIO(archive.read(png)))
            assert (image.format, image.size) == ("PNG", (1000, 500))
            assert len(image.getcolors(maxcolors=100_000)) > 10  # drawn: not a blank canvas
        loss = Image.open(io.BytesIO(archive.read("loss-curves.png"))).convert("RGB")
        assert any(loss.getpixel((x, y)) == (217, 119, 6) for x in range(90, 970) for y in range(50, 430))  # eval
        assert sorted(zipfile.ZipFile(io.BytesIO(empty)).namelist()) == [
            "Nothing-logged-metrics-20261124T153005Z.csv", "Nothing-logged-metrics-20261124T153005Z.json"]
        assert [s.topic for s in store.app.recorder.select_events(job_id)].count("TrainingJob.MetricsExported") == 2
    finally:
        store.close()
