"""What the notifier reads of the jobs and budgets read models. Their queries live with those models
in projections/ (job_reads.jobs_in, budget_reads.month_figures and spend_between); handlers stand
beside projections on one floor, so the composition root (pipeline/workers/notifications.py) hands
them in."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg


@dataclass(frozen=True)
class ReadModels:
    jobs_in: Callable[[psycopg.Connection, Iterable[str]], list[dict[str, Any]]]
    month_figures: Callable[[psycopg.Connection, str, str], dict[str, Any] | None]
    spend_between: Callable[[psycopg.Connection, str, list[str], datetime, datetime, str], tuple[Decimal, Decimal]]
