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
    exit_code: int | None  # the agent's, where the provider knows it (RunPod does not say)
    at: datetime
    cause: str = ""  # the provider's word: "exited", "error", "terminated", "missing", "ended_by_us", …


# Which providers can rent spot ("interruptible") pods: RunPod's API v2 has no such field (design brief §4).
SPOT_OFFERED = {"local": True, "runpod": False}
SPOT_UNAVAILABLE = ("RunPod offers no spot (interruptible) pods through its API v2: this job runs on an on-demand "
                    "GPU (or choose gpu_tier \"on_demand\").")


def offers_spot(provider: str) -> bool:
    return SPOT_OFFERED.get(provider, True)


class NoCapacityError(Exception):
    """The provider has no GPU of that kind now (FR3.1.3): an ordinary, retryable failure."""


class PodProvider(Protocol):
    def create_pod(self, job_id: str, attempt: int, gpu_tier: str, env: dict[str, str]) -> Pod: ...

    def terminate(self, pod_id: str) -> None: ...

    def exited(self) -> list[PodExit]:
        """Pods that stopped since the last call (and have not been reported yet)."""
        ...

    # Optional: `adopt(pod_ids) -> list[str]`, those of the pods a previous process started that
    # the provider still knows, tracked from then on (a restarted handlers worker adopts them);
    # `find_pod(job_id, attempt) -> Pod | None`, the attempt's pod found by its name and tracked (a
    # worker that died between renting a pod and recording it); `billing(pod_id, started_at,
    # stopped_at) -> PodBilling`, the provider's own charges for a pod (handlers/billing.py).
