"""Estimated start times of queued jobs (FR2.3.2).

The spec's formula, SUM(remaining_time_of_active_jobs) + GPU_provisioning_time, holds when one job
runs at a time. With `slots` jobs running at once (3 by default) we read it as: each queued job,
in queue order, takes the slot that frees first, after the provisioning time; it then holds that
slot for its own estimated duration. With one slot this is exactly the spec's sum."""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta

PROVISIONING_TIME = timedelta(minutes=5)


def estimate_starts(now: datetime, active_remaining: list[timedelta], queued_durations: list[timedelta],
                    slots: int, provisioning: timedelta = PROVISIONING_TIME) -> list[datetime]:
    free = [now + max(timedelta(0), r) for r in active_remaining]
    free += [now] * max(0, slots - len(free))
    heapq.heapify(free)
    starts = []
    for duration in queued_durations:
        start = max(heapq.heappop(free), now) + provisioning
        starts.append(start)
        heapq.heappush(free, start + duration)
    return starts


def remaining(estimated_hours: float, progress: float) -> timedelta:
    """An active job's time left: its estimate times the share of steps still to do."""
    return timedelta(hours=estimated_hours * max(0.0, 1.0 - progress))
