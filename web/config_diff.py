"""The compare page's configuration table (FR5.1.1): each setting's value in every job, and whether
they differ (the differences highlighted)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from domain.money import usd

CONFIG_FIELDS = (("Training file", "file_name"), ("Preset", "preset"), ("GPU tier", "gpu_tier"),
                 ("GPU type", "gpu_type"), ("Hourly rate", "hourly_rate"), ("Estimated cost", "estimate"),
                 ("Estimated duration", "estimated_duration_hours"), ("Client", "client"), ("Project", "project"),
                 ("Tags", "tags"))


def configuration(jobs: list[dict[str, Any]], hyperparameters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The job's fields, then every hyperparameter any of them set, by name."""
    rows = [{"label": label, "values": [shown(value_of(job, key)) for job in jobs]} for label, key in CONFIG_FIELDS]
    for key in sorted({k for h in hyperparameters for k in h}):
        rows.append({"label": key, "values": [shown(h.get(key)) for h in hyperparameters], "hyper": True})
    for row in rows:
        row["differs"] = len(set(row["values"])) > 1
    return rows


def value_of(job: dict[str, Any], key: str) -> Any:
    if key == "estimate":
        return (f"{usd(job['estimated_cost_min'])}–{usd(job['estimated_cost_max'])}"
                if job["estimated_cost_max"] is not None else None)
    if key == "hourly_rate":
        return f"{usd(job[key])}/hr" if job[key] is not None else None
    if key == "estimated_duration_hours":
        return f"{Decimal(job[key]):.1f} h" if job[key] is not None else None
    return job[key]


def shown(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)
