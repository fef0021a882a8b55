"""A job's training metrics as CSV or JSON (FR4.2.1): the spec's columns and nested structure, the
spec's file name, every point from training start to completion (the metric history read model),
and each export recorded on the job (`TrainingJob.MetricsExported`) for the audit trail; or both
in one ZIP package with the charts as PNG images (`package`)."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import psycopg

from projections.queries import MetricPoint, metric_history

Format = Literal["csv", "json"]
CSV_COLUMNS = ("step_number", "epoch", "training_loss", "validation_loss", "learning_rate", "perplexity",
               "gpu_utilization", "timestamp", "elapsed_time_seconds")


def safe_stem(job_name: str) -> str:
    """A job's name made safe for a file system: `Advisor tone: v1/β` → `Advisor-tone-v1`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", job_name).strip("-.") or "job"


def file_name(job_name: str, fmt: Format, at: datetime) -> str:
    """`{job_name}-metrics-{timestamp}.{csv|json}`, the name made safe for a file system."""
    return f"{safe_stem(job_name)}-metrics-{at.strftime('%Y%m%dT%H%M%SZ')}.{fmt}"


def csv_lines(points: list[MetricPoint]) -> Iterator[str]:
    """The CSV, line by line (streamed to the client)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    start = points[0].at if points else None
    for p in points:
        writer.writerow([p.step, _num(p.epoch), _num(p.loss), _num(p.eval_loss), _num(p.learning_rate),
                         _num(p.perplexity), _num(p.gpu_util), p.at.isoformat(),
                         f"{(p.at - start).total_seconds():.3f}"])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()


def as_json(job: Any, points: list[MetricPoint]) -> dict[str, Any]:
    """The spec's structure: job metadata, the metric points, the final metrics."""
    start = points[0].at if points else None
    final = job.final_metrics or {}
    last_loss = next((p.loss for p in reversed(points) if p.loss is not None), None)
    last_eval = next((p.eval_loss for p in reversed(points) if p.eval_loss is not None), None)
    improvement = final.get("perplexity_improvement_percent")
    return {
        "job_metadata": {"job_id": str(job.id), "name": job.name, "status": job.status.value,
                         "configuration": _plain(job.configuration or {})},
        "training_metrics": [
            {"step": p.step, "epoch": p.epoch, "training_loss": p.loss, "validation_loss": p.eval_loss,
             "learning_rate": p.learning_rate, "perplexity": p.perplexity, "gpu_utilization": p.gpu_util,
             "timestamp": p.at.isoformat(), "elapsed_time_seconds": round((p.at - start).total_seconds(), 3)}
            for p in points],
        "final_metrics": {
            "final_training_loss": final.get("final_loss", last_loss), "final_validation_loss": last_eval,
            "perplexity_improvement": f"{improvement:.0f}%" if isinstance(improvement, (int, float)) else None},
    }


def export(conn: psycopg.Connection, app: Any, job_id: UUID, fmt: Format, actor: str,
           at: datetime) -> tuple[str, Iterator[str]]:
    """(file name, body chunks); records the export on the job first (raises JobNotFoundError)."""
    job = app.get_job(job_id)
    points = metric_history(conn, job_id)
    app.update_job(job_id, lambda j: j.record_export(f"metrics-{fmt}", actor, at))
    body = csv_lines(points) if fmt == "csv" else iter([json.dumps(as_json(job, points), indent=2) + "\n"])
    return file_name(job.name, fmt, at), body


def package(conn: psycopg.Connection, app: Any, job_id: UUID, actor: str, at: datetime) -> tuple[str, bytes]:
    """FR4.2.1's export package with charts: one ZIP with the CSV, the JSON and the loss curves and
    learning-rate schedule as PNG images (those a job has data for); recorded as `metrics-package`.
    Named `{job_name}-metrics-{timestamp}.zip`; the files inside keep the spec's names."""
    from web.reports.metrics_charts import learning_rate_png, loss_curves_png

    job = app.get_job(job_id)
    points = metric_history(conn, job_id)
    app.update_job(job_id, lambda j: j.record_export("metrics-package", actor, at))
    files = {file_name(job.name, "csv", at): "".join(csv_lines(points)).encode(),
             file_name(job.name, "json", at): (json.dumps(as_json(job, points), indent=2) + "\n").encode(),
             "loss-curves.png": loss_curves_png(points, job.name),
             "learning-rate.png": learning_rate_png(points, job.name)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            if data is not None:
                archive.writestr(zipfile.ZipInfo(name, date_time=at.timetuple()[:6]), data,
                                 compress_type=zipfile.ZIP_STORED if name.endswith(".png") else zipfile.ZIP_DEFLATED)
    return file_name(job.name, "csv", at).removesuffix(".csv") + ".zip", buffer.getvalue()


def _num(value: float | None) -> str:
    return "" if value is None else repr(value)


def _plain(value: Any) -> Any:
    """Configuration values as JSON (Decimals as strings, exact)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
