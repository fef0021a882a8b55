"""FR3.2.1 on the job page: the interruptions badge ("Interrupted 2× (auto-recovered)") and one
log line per interruption."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.job_status import JobStatus
from web.detail_format import duration, short_duration


def interruption_view(detail: dict[str, Any]) -> dict[str, Any] | None:
    rows, job = detail["interruptions"], detail["job"]
    if not rows:
        return None
    state = recovery_state(rows, job["status"])
    return {"badge": f"Interrupted {len(rows)}× ({state})", "state": state,
            "lines": [line(row, job["started_at"]) for row in rows],
            "downtime": short_duration(job["downtime_seconds"] or 0)}


def line(row: dict[str, Any], start: datetime | None) -> dict[str, Any]:
    text = f"Interrupted at step {row['step']:,} ({since(start, row['at'])})"
    if row["resumed_at"] is not None:
        resumed_step = row["checkpoint_step"] if row["checkpoint_step"] is not None else 0
        text += (f", resumed at step {resumed_step:,} ({since(start, row['resumed_at'])})"
                 f" - {short_duration(row['downtime_seconds'] or 0)} downtime")
    elif row["recovery_started_at"] is not None:
        text += f", recovery attempt {row['recovery_attempt']} in progress"
    return {"text": text, "reason": row["reason"]}


def since(start: datetime | None, at: datetime | None) -> str:
    """Time into the job (from its start) at `at`."""
    return duration((at - start).total_seconds()) if at and start else "—"


def recovery_state(rows: list[dict[str, Any]], status: str) -> str:
    if all(row["resumed_at"] is not None for row in rows):
        return "auto-recovered"
    return "not recovered" if status in (JobStatus.FAILED, JobStatus.CANCELLED) else "recovering"
