"""The pod provider interface."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class Pod:
    pod_id: str
    hourly_rate: Decimal
    started_at: datetime


@dataclass(frozen=True)
class PodExit:
    pod_id: str
    exit_code: int | None
    at: datetime


class NoCapacityError(Exception):
    """The provider has no GPU of that kind now (FR3.1.3): an ordinary, retryable failure."""


class PodProvider(Protocol):
    def create_pod(self, job_id: str, attempt: int, gpu_tier: str, env: dict[str, str]) -> Pod: ...

    def terminate(self, pod_id: str) -> None: ...

    def exited(self) -> list[PodExit]:
        """Pods that stopped since the last call (and have not been reported yet)."""
        ...

    # Optional: `adopt(pod_ids) -> list[str]`, those of the pods a previous process started that
    # the provider still knows, tracked from then on (a restarted handlers worker adopts them).
