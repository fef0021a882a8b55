"""RunPod's own on-demand price and availability for our GPU (GET /v2/catalog/gpus/{id}?
include=AVAILABILITY), cached for minutes, as the domain's PriceSource: the new-job page and job
creation price with it. When RunPod cannot be read, our configured rate stands in, and the label
says so. RunPod has no spot price in v2: the spot rate shown is our configured one."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING

from domain.gpu import OfflinePrices, PricingTier
from handlers.pods.runpod_models import GpuOffer
from handlers.pods.runpod_rest import RunPodRestClient

if TYPE_CHECKING:
    from infra.settings import Settings

log = logging.getLogger(__name__)
AVAILABILITY_WORDS = {"HIGH": "high", "MEDIUM": "medium", "LOW": "low", "NONE": "none right now"}


@dataclass(frozen=True)
class Quoted:
    offer: GpuOffer | None
    at: datetime
    error: str = ""


class CatalogPrices:
    """Thread-safe; one catalog call per `ttl_s` (after a failure, per `retry_s`), never while holding
    the lock. `fallback` is our configured rates (domain/gpu.py OfflinePrices)."""

    def __init__(self, client: RunPodRestClient, gpu_type_id: str, cloud: str = "SECURE", ttl_s: float = 300.0,
                 retry_s: float = 60.0, fallback: OfflinePrices | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.gpu_type_id, self.cloud = client, gpu_type_id, cloud
        self.ttl_s, self.retry_s, self.clock = ttl_s, retry_s, clock
        self.fallback = fallback or OfflinePrices()
        self.quoted: Quoted | None = None
        self.expires = 0.0
        self.lock = threading.Lock()

    def hourly_rate(self, gpu_type: str, tier: PricingTier) -> Decimal:
        """RunPod's list price for one GPU on our cloud (on-demand), else our configured rate."""
        offered = self._runpod_rate() if tier is PricingTier.ON_DEMAND else None
        return offered if offered is not None else self.fallback.hourly_rate(gpu_type, tier)

    def describe(self, tier: PricingTier) -> str:
        """The small label beside a rate on the page: whose rate it is, and RunPod's availability."""
        if tier is PricingTier.SPOT:
            return "Our configured rate (RunPod offers no spot pods)"
        quoted = self._quote()
        rate = self._rate_of(quoted)
        if rate is None:
            why = quoted.error or "no price for this GPU"
            return f"Our configured rate: RunPod's price could not be read ({why})"
        availability = AVAILABILITY_WORDS.get(quoted.offer.availability or "", "") if quoted.offer else ""
        return (f"RunPod's on-demand price, {quoted.at:%H:%M} UTC"
                + (f"; availability {availability}" if availability else ""))

    def availability(self) -> str | None:
        quoted = self._quote()
        return quoted.offer.availability if quoted.offer else None

    def _runpod_rate(self) -> Decimal | None:
        return self._rate_of(self._quote())

    def _rate_of(self, quoted: Quoted) -> Decimal | None:
        return quoted.offer.hourly_rate(self.cloud) if quoted.offer else None

    def _quote(self) -> Quoted:
        with self.lock:
            if self.quoted is not None and self.clock() < self.expires:
                return self.quoted
        at = datetime.now(timezone.utc)
        try:
            quoted = Quoted(self.client.gpu_catalog(self.gpu_type_id, cloud=self.cloud), at)
            wait = self.ttl_s
        except Exception as exc:  # noqa: BLE001 - the page shows our configured rate, labelled as such
            log.warning("RunPod's GPU catalog could not be read (%s): showing our configured rate", exc)
            quoted, wait = Quoted(None, at, type(exc).__name__ if not str(exc) else str(exc)[:200]), self.retry_s
        with self.lock:
            self.quoted, self.expires = quoted, self.clock() + wait
        return quoted


def price_source(settings: Settings) -> CatalogPrices | OfflinePrices:
    """What the web prices with: RunPod's catalog when RunPod rents the pods, else our configured rates."""
    if settings.agent.pod_provider != "runpod":
        return OfflinePrices()
    from handlers.pods.runpod import runpod_client

    return CatalogPrices(runpod_client(settings), settings.runpod.gpu_type_id, settings.runpod.cloud_type,
                         ttl_s=settings.runpod.price_ttl_s)
