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
