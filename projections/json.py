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


# One encoder for every call: `json.dumps` with options builds a new one each time.
dumps = json.JSONEncoder(default=_default, sort_keys=True).encode


def jsonb(value: Any) -> Jsonb:
    return Jsonb(value, dumps=dumps)


_AS_IS = frozenset({str, int, bool, type(None)})


def plain(value: Any) -> Any:
    """A domain value as JSON values: Decimals, UUIDs and datetimes as strings, value objects as
    dicts, and a diverged loss (NaN, infinity) as "nan"/"inf", which JSON and jsonb cannot hold."""
    kind = type(value)  # the common exact types first: this runs for every field of every event
    if kind in _AS_IS:
        return value
    if kind is float:
        return value if math.isfinite(value) else str(value)
    if kind is datetime:
        return value.isoformat()
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


def payload_fields(event: Any) -> dict[str, Any]:
    """The fields `event_payload` keeps, as they are but the times (as ISO text already: most
    events carry two)."""
    return {name: value.isoformat() if type(value) is datetime else value
            for name, value in vars(event).items() if name not in ("originator_id", "originator_version")}


def payload_json(event: Any) -> str:
    """`event_payload` as JSON text for a jsonb column, faster: the encoder meets only the values
    JSON has no form for (amounts, ids, value objects) and asks `plain` for them; keys unsorted
    (jsonb orders them its own way). A NaN or infinity stops it (allow_nan=False), and the event
    takes the long road, which writes it as text. A rebuild makes most payloads from the stored
    JSON instead (projections/decoding.py), equal to these."""
    try:
        return _encode_fields(payload_fields(event))
    except ValueError:
        return dumps(event_payload(event))


def _planned(value: Any) -> Any:
    converted = plain(value)
    if converted is value:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    return converted


_encode_fields = json.JSONEncoder(default=_planned, allow_nan=False).encode


# A pod's lifetime in a read model's jsonb column (jobs, job_costs): times as ISO text, rate exact.
POD_TIMES = ("started_at", "training_started_at", "last_checkpoint_at", "interrupted_at", "stopped_at")


def pod_as_json(pod: PodLifetime) -> dict[str, Any]:
    return {"pod_id": pod.pod_id, "hourly_rate": str(pod.hourly_rate), "download_seconds": str(pod.download_seconds),
            **{name: value.isoformat() if (value := getattr(pod, name)) else None for name in POD_TIMES}}


def pod_from_json(data: dict[str, Any]) -> PodLifetime:
    return PodLifetime(data["pod_id"], Decimal(data["hourly_rate"]),
                       **{name: datetime.fromisoformat(data[name]) if data[name] else None for name in POD_TIMES},
                       download_seconds=Decimal(data.get("download_seconds") or 0))
