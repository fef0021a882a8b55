"""What the finance view keeps of a training job, folded from its events (pure: no SQL). Which
pod an event concerns follows the aggregate's own rules; the arithmetic is the domain's `ledger`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import singledispatch
from typing import Any
from uuid import UUID

from domain.aggregates.training_job import TrainingJob
from domain.cost_ledger import LedgerTotals, PodLifetime, ledger
from domain.job_status import JobStatus
from projections.jobs import STATUS_OF

J = TrainingJob


@dataclass
class JobCost:
    """A job's finance facts and its pods' lifetimes (the current attempt's pod is the one training,
    checkpoint and interruption times go to)."""

    job_id: UUID
    name: str
    status: str
    created_by: str
    created_at: datetime
    as_of: datetime
    client: str | None = None
    project: str | None = None
    preset: str | None = None
    gpu_tier: str | None = None
    gpu_type: str | None = None
    attempt: int = 0
    current_pod: str | None = None
    pods: dict[str, PodLifetime] = field(default_factory=dict)
    interruptions: int = 0
    failure_type: str | None = None
    final_loss: float | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    billed_pods: dict[str, Decimal] = field(default_factory=dict)  # what the provider billed, per pod
    judging_cost: Decimal = Decimal(0)  # the model judge's tokens × prices (TrainingJob.JudgingCharged)

    @classmethod
    def created(cls, event: J.Created) -> JobCost:
        return cls(event.originator_id, event.name, JobStatus.PENDING_CONFIGURATION.value, event.created_by, event.at,
                   event.at, client=event.client, project=event.project)

    def totals(self) -> LedgerTotals:
        """Finished pods in full, running ones up to the latest event."""
        return ledger(tuple(self.pods.values()), self.as_of)

    def billed_cost(self) -> Decimal | None:
        """The provider's bill for the pods read back so far; None before the first."""
        return sum(self.billed_pods.values(), Decimal(0)) if self.billed_pods else None

    def hourly_rates(self) -> list[Decimal]:
        return list(dict.fromkeys(pod.hourly_rate for pod in self.pods.values()))

    def mark_current_pod(self, name: str, at: datetime, first_only: bool = True) -> None:
        pod = self.pods.get(self.current_pod or "")
        if pod is not None and (getattr(pod, name) is None or not first_only):
            self.pods[pod.pod_id] = pod.with_(**{name: at})


@singledispatch
def fold(event: Any, job: JobCost) -> None:
    """Applies one event to `job`. Events that move the job to a fixed status only set it."""
    if (status := STATUS_OF.get(type(event))) is not None:
        job.status = status.value


@fold.register
def _configured(event: J.Configured, job: JobCost) -> None:
    job.status, job.preset, job.gpu_tier, job.gpu_type = (JobStatus.CONFIGURED.value, event.preset, event.gpu_tier,
                                                          event.gpu_type)


@fold.register
def _renamed(event: J.Renamed, job: JobCost) -> None:
    job.name = event.name


@fold.register
def _metadata(event: J.MetadataUpdated, job: JobCost) -> None:
    job.client, job.project = event.client, event.project


@fold.register
def _gpu_tier_changed(event: J.GpuTierChanged, job: JobCost) -> None:
    job.gpu_tier = event.gpu_tier


@fold.register
def _queued(event: J.Queued, job: JobCost) -> None:
    job.status = JobStatus.QUEUED.value


@fold.register
def _provisioning(event: J.ProvisioningStarted, job: JobCost) -> None:
    job.status, job.attempt, job.gpu_tier = JobStatus.PROVISIONING.value, event.attempt, event.gpu_tier


@fold.register
def _pod_started(event: J.PodStarted, job: JobCost) -> None:
    job.pods[event.pod_id] = PodLifetime(event.pod_id, event.hourly_rate, event.at)
    job.started_at = job.started_at or event.at
    if event.attempt == job.attempt:
        job.current_pod = event.pod_id


@fold.register
def _pod_stopped(event: J.PodStopped, job: JobCost) -> None:
    job.pods[event.pod_id] = job.pods[event.pod_id].with_(stopped_at=event.at)


@fold.register
def _model_downloaded(event: J.ModelDownloaded, job: JobCost) -> None:
    job.pods[event.pod_id] = job.pods[event.pod_id].with_(download_seconds=event.seconds)


@fold.register
def _billing_reconciled(event: J.BillingReconciled, job: JobCost) -> None:
    job.billed_pods[event.pod_id] = event.billed


@fold.register
def _stage_changed(event: J.StageChanged, job: JobCost) -> None:
    job.status = event.stage
    if event.stage == JobStatus.TRAINING:
        job.mark_current_pod("training_started_at", event.at)


@fold.register
def _checkpoint(event: J.CheckpointSaved, job: JobCost) -> None:
    job.mark_current_pod("last_checkpoint_at", event.at, first_only=False)


@fold.register
def _interrupted(event: J.Interrupted, job: JobCost) -> None:
    job.status, job.interruptions = JobStatus.INTERRUPTED.value, job.interruptions + 1
    job.mark_current_pod("interrupted_at", event.at)


@fold.register
def _paused(event: J.Paused, job: JobCost) -> None:
    job.status = JobStatus.PAUSED.value
    job.mark_current_pod("interrupted_at", event.at)


@fold.register
def _judging_charged(event: J.JudgingCharged, job: JobCost) -> None:
    job.judging_cost = event.cost  # cumulative for the job's review (a job pays for its own pod's results)


@fold.register
def _completed(event: J.Completed, job: JobCost) -> None:
    loss = event.metrics.get("final_loss")
    job.status, job.ended_at = JobStatus.COMPLETED.value, event.at
    job.final_loss = float(loss) if isinstance(loss, int | float) else None


@fold.register
def _failed(event: J.Failed, job: JobCost) -> None:
    job.status, job.ended_at, job.failure_type = JobStatus.FAILED.value, event.at, event.failure_type


@fold.register
def _cancelled(event: J.Cancelled, job: JobCost) -> None:
    job.status, job.ended_at = JobStatus.CANCELLED.value, event.at
