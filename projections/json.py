"""JSON values for read models and exports: Decimals as strings, so amounts stay exact."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from domain.cost_ledger import PodLifetime


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def jsonb(value: Any) -> Jsonb:
    return Jsonb(value, dumps=lambda v: json.dumps(v, default=_default, sort_keys=True))


def plain(value: Any) -> Any:
    """A domain value as JSON values: Decimals, UUIDs and datetimes as strings, value objects as
    dicts, and a diverged loss (NaN, infinity) as "nan"/"inf", which JSON and jsonb cannot hold."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    return value


def event_payload(event: Any) -> dict[str, Any]:
    """Everything a domain event carries but its aggregate id and version (columns of their own)."""
    return {name: plain(value) for name, value in vars(event).items()
            if name not in ("originator_id", "originator_version")}


# A pod's lifetime in a read model's jsonb column (jobs, job_costs): times as ISO text, rate exact.
POD_TIMES = ("started_at", "training_started_at", "last_checkpoint_at", "interrupted_at", "stopped_at")


def pod_as_json(pod: PodLifetime) -> dict[str, Any]:
    return {"pod_id": pod.pod_id, "hourly_rate": str(pod.hourly_rate),
            **{name: value.isoformat() if (value := getattr(pod, name)) else None for name in POD_TIMES}}


def pod_from_json(data: dict[str, Any]) -> PodLifetime:
    return PodLifetime(data["pod_id"], Decimal(data["hourly_rate"]),
                       **{name: datetime.fromisoformat(data[name]) if data[name] else None for name in POD_TIMES})
