"""Which `step` messages become ProgressRecorded (handlers/telemetry.py): every 25 steps, but a pod that
steps fast is recorded at most every 5 s; a slow one every 30 s; always its first and its last step."""

from __future__ import annotations

import pytest

from handlers import telemetry
from handlers.telemetry import TelemetryHandler


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    ticking = Clock()
    monkeypatch.setattr(telemetry.time, "monotonic", ticking)
    return ticking


def recorded(handler: TelemetryHandler, clock: Clock, steps_per_s: float, steps: int, total: int = 10**6,
             job: str = "job") -> list[int]:
    due = []
    for step in range(1, steps + 1):
        clock.now += 1 / steps_per_s
        if handler.progress_due(job, step, total):
            due.append(step)
    return due


def test_a_pod_stepping_once_a_second_is_recorded_every_25_steps(clock: Clock) -> None:
    assert recorded(TelemetryHandler(app=None), clock, 1, 80) == [1, 26, 51, 76]  # type: ignore[arg-type]


def test_a_fast_pod_is_recorded_at_most_every_5_s_and_its_last_step_always(clock: Clock) -> None:
    handler = TelemetryHandler(app=None)  # type: ignore[arg-type]
    # 32 steps a second (a tick a power of two: exact): every 160 steps
    assert recorded(handler, clock, 32, 1000, total=1000) == [1, 161, 321, 481, 641, 801, 961, 1000]
    assert recorded(handler, clock, 32, 3, job="another") == [1]  # its own first step, whatever the others did


def test_a_slow_pod_is_recorded_every_30_s(clock: Clock) -> None:
    assert recorded(TelemetryHandler(app=None), clock, 1 / 20, 6) == [1, 3, 5]  # type: ignore[arg-type]


def test_the_first_step_a_worker_sees_is_recorded_even_on_a_clock_that_started_moments_ago(clock: Clock) -> None:
    clock.now = 0.5  # monotonic time counts from boot
    assert TelemetryHandler(app=None).progress_due("job", 40, None)  # type: ignore[arg-type]
