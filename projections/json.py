"""JSONB values for read models: Decimals as strings, so amounts stay exact."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def jsonb(value: Any) -> Jsonb:
    return Jsonb(value, dumps=lambda v: json.dumps(v, default=_default, sort_keys=True))
