"""Billing reconciliation (issue #16): once a pod has ended, the provider's own charges for it are read
back (RunPod: GET /v2/billing/pods?podId=…, hourly buckets) and recorded on its job as
TrainingJob.BillingReconciled, so finance sees our ledger beside what the provider billed.

RunPod bills every 5 minutes: the first read waits `delay_s` after the pod ended; a read that finds
no charge yet, or fails, is tried again every `every_s`, `reads` times in all, and the last answer
is recorded as it is. Times are the wall clock, so a restarted worker (`resume`) reads at once
what fell due while it was down."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol
from uuid import UUID

from domain.applications import Pipeline
from handlers.pods.runpod_models import PodBilling, rfc3339_text

log = logging.getLogger(__name__)


class BillingProvider(Protocol):
    def billing(self, pod_id: str, started_at: datetime, stopped_at: datetime) -> PodBilling: ...


@dataclass
class Due:
    job_id: UUID
    pod_id: str
    at: float  # wall clock, seconds
    reads: int = 0


class BillingReconciler:
    def __init__(self, app: Pipeline, provider: BillingProvider, delay_s: float = 600.0, every_s: float = 300.0,
                 reads: int = 6, clock: Callable[[], float] = time.time) -> None:
        self.app, self.provider, self.clock = app, provider, clock
        self.delay_s, self.every_s, self.reads = delay_s, every_s, reads
        self.due: dict[str, Due] = {}  # pod id → its next read
        self.lock = threading.Lock()

    def schedule(self, job_id: UUID, pod_id: str, stopped_at: datetime) -> None:
        """A pod ended: its bill is read `delay_s` after its end."""
        with self.lock:
            self.due.setdefault(pod_id, Due(job_id, pod_id, stopped_at.timestamp() + self.delay_s))

    def resume(self, job_ids: Iterable[UUID]) -> int:
        """After a restart: the stopped pods of these jobs whose bill is not recorded yet. Returns how many."""
        count = 0
        for job_id in job_ids:
            job = self.app.get_job(job_id)
            for pod_id in job.billing_pending():
                self.schedule(job_id, pod_id, job.pods[pod_id].stopped_at)
                count += 1
        return count

    def run_due(self) -> int:
        """Reads every bill that is due (outside the lock: an HTTP call each); returns how many were recorded."""
        now = self.clock()
        with self.lock:
            ready = [due for due in self.due.values() if due.at <= now]
        recorded = 0
        for due in ready:
            if self._read(due):
                recorded += 1
                with self.lock:
                    self.due.pop(due.pod_id, None)
        return recorded

    def _read(self, due: Due) -> bool:
        job = self.app.get_job(due.job_id)
        pod = job.pods.get(due.pod_id)
        if pod is None or pod.stopped_at is None or due.pod_id in job.billed:
            return True  # nothing to read (any more)
        due.reads += 1
        last = due.reads >= self.reads
        try:
            bill = self.provider.billing(due.pod_id, pod.started_at, pod.stopped_at)
        except Exception as exc:  # noqa: BLE001 - read again later, a bounded number of times
            log.warning("billing of pod %s (job %s): read %d of %d failed (%s)", due.pod_id, due.job_id, due.reads,
                        self.reads, exc)
            if last:
                log.error("billing of pod %s (job %s): gave up after %d reads", due.pod_id, due.job_id, due.reads)
                return True
            due.at = self.clock() + self.every_s
            return False
        if not bill.buckets and not last:
            due.at = self.clock() + self.every_s  # not billed yet: RunPod's runs every 5 minutes
            return False
        buckets = [bucket_json(b) for b in bill.buckets]
        self.app.update_job(due.job_id, lambda j: j.reconcile_billing(due.pod_id, bill.total, buckets,
                                                                      datetime.now(timezone.utc)))
        log.info("billing of pod %s (job %s): RunPod billed %s over %d hour(s)", due.pod_id, due.job_id, bill.total,
                 len(bill.buckets))
        return True

    def pending(self) -> list[str]:
        with self.lock:
            return sorted(self.due)


def bucket_json(bucket: Any) -> dict[str, Any]:
    return {"start": rfc3339_text(bucket.start), "end": rfc3339_text(bucket.end), "amount": bucket.total}
