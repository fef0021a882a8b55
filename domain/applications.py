"""The application service: the only way commands reach aggregates and get saved.

Jobs and budgets live in one eventsourcing application so that a command touching both (a job
queued with its budget reservation, a job's spend with its charge) is saved in one atomic
`save(job, budget)`. Concurrent commands on one budget conflict on its version
(IntegrityError); they are re-run on fresh state, a bounded number of times."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder

from domain.aggregates.budget import DEFAULT_GRACE_PERCENT, Budget
from domain.aggregates.catalog_file import CatalogFile
from domain.aggregates.training_job import IllegalTransitionError, TrainingJob
from domain.budget_month import budget_month, earlier_months
from domain.cost_model import estimate_cost
from domain.gpu import DEFAULT_INTERRUPTION_RATE, GPU_MEMORY_GB, PriceSource, PricingTier, gpu_option
from domain.job_metadata import default_name, retry_name
from domain.job_status import CancelReason, JobStatus
from domain.money import cents
from domain.presets import check_unlocked, default_preset, preset_named
from domain.retries import RetryPlan, check_retryable, remaining_fraction
from domain.training_file import TrainingFileStats, ValidationReport
from domain.transcodings import register_domain_transcodings
from domain.values import ArtifactRef

T = TypeVar("T")


@dataclass(frozen=True)
class BudgetPolicy:
    team: str = "default"
    time_zone: str = "UTC"
    default_limit: Decimal = Decimal(500)
    grace_percent: Decimal = DEFAULT_GRACE_PERCENT


class Pipeline(Application[UUID]):
    """Training jobs and monthly budgets; events stored in table `pipeline_events`."""

    name = "pipeline"
    conflict_retries = 30

    def __init__(self, env: dict[str, str] | None = None, policy: BudgetPolicy | None = None) -> None:
        super().__init__(env)
        self.policy = policy or BudgetPolicy()

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_domain_transcodings(transcoder)

    # --- the training-file catalog -----------------------------------------------------------

    def register_training_file(self, name: str, file: ArtifactRef, report: ValidationReport,
                               stats: TrainingFileStats | None, registered_by: str, at: datetime) -> UUID:
        """Records a stored file with its validation result and statistics; the same bytes
        registered again return the existing entry."""
        existing = self.catalog_file(CatalogFile.id_for(file.sha256))
        if existing is not None:
            return existing.id
        entry = CatalogFile.register(name, file, report, stats, registered_by, at)
        try:
            self.save(entry)
        except IntegrityError:
            pass  # registered concurrently: same id, same content
        return entry.id

    def catalog_file(self, file_id: UUID) -> CatalogFile | None:
        try:
            entry: Aggregate = self.repository.get(file_id)
        except AggregateNotFoundError:
            return None
        return entry if isinstance(entry, CatalogFile) else None

    def create_job_from_file(self, file_id: UUID, *, created_by: str, at: datetime, name: str | None = None,
                             preset: str | None = None, gpu_tier: str = "spot", successful_jobs: int = 0,
                             prices: PriceSource | None = None,
                             interruption_probability: Decimal = DEFAULT_INTERRUPTION_RATE,
                             notes: str | None = None, **metadata: Any) -> UUID:
        """Creates and configures a job for a catalogued file (FR1.1.1-FR1.3.1): eligibility, preset
        (default by conversation count, Aggressive lock, VRAM), GPU option and cost estimate."""
        entry = self.catalog_file(file_id)
        if entry is None:
            raise TrainingFileNotFoundError("Training file not found")
        entry.check_eligible()
        chosen = preset_named(preset) if preset else default_preset(entry.conversation_count)
        check_unlocked(chosen, entry.conversation_count, successful_jobs)
        chosen.check_fits(GPU_MEMORY_GB)
        gpu = gpu_option(PricingTier(gpu_tier), prices)
        estimate = estimate_cost(chosen, entry.pair_count, gpu, interruption_probability=interruption_probability)
        job = TrainingJob.create(
            uuid4(), name=name or default_name(entry.name, chosen.title, at.date()), training_file=entry.file,
            file_name=entry.name, conversation_count=entry.conversation_count, pair_count=entry.pair_count,
            created_by=created_by, at=at, **metadata)
        job.configure(preset=chosen.name, hyperparameters=chosen.as_config(), gpu_tier=gpu.tier.value,
                      gpu_type=gpu.gpu_type, hourly_rate=gpu.hourly_rate,
                      estimated_duration_hours=estimate.duration_hours, estimated_cost_min=estimate.cost_min,
                      estimated_cost_max=estimate.cost_max, estimation_algorithm=estimate.algorithm_version,
                      estimation_confidence=None if estimate.confidence is None else Decimal(estimate.confidence),
                      at=at)
        if notes:
            job.add_note(notes, created_by, at)
        self.save(job)
        return job.id

    def reconfigure_job(self, job_id: UUID, *, preset: str, gpu_tier: str, successful_jobs: int,
                        interruption_probability: Decimal, name: str, description: str | None,
                        tags: list[str], client: str | None, project: str | None, notes: str | None,
                        actor: str, at: datetime) -> None:
        """Edits a configured job before it starts (FR1.3.2's Edit): the configuration step of
        create_job_from_file again (Aggressive lock, VRAM, and a new estimate when the preset or GPU
        tier changed), its name and metadata, and a note; one save, re-run after a conflict."""

        def command(job: TrainingJob) -> None:
            if job.status is not JobStatus.CONFIGURED:
                raise IllegalTransitionError("This job has already started: it can no longer be edited")
            job.rename(name, at)
            job.update_metadata(description=description, tags=tags, client=client, project=project, at=at)
            chosen = preset_named(preset)
            check_unlocked(chosen, job.conversation_count, successful_jobs)
            chosen.check_fits(GPU_MEMORY_GB)
            gpu = gpu_option(PricingTier(gpu_tier))
            config = job.configuration or {}
            if (config.get("preset"), config.get("gpu_tier")) != (chosen.name, gpu.tier.value):
                estimate = estimate_cost(chosen, job.pair_count, gpu, interruption_probability=interruption_probability)
                job.configure(preset=chosen.name, hyperparameters=chosen.as_config(), gpu_tier=gpu.tier.value,
                              gpu_type=gpu.gpu_type, hourly_rate=gpu.hourly_rate,
                              estimated_duration_hours=estimate.duration_hours, estimated_cost_min=estimate.cost_min,
                              estimated_cost_max=estimate.cost_max, estimation_algorithm=estimate.algorithm_version,
                              estimation_confidence=None if estimate.confidence is None
                              else Decimal(estimate.confidence), at=at)
            if notes:
                job.add_note(notes, actor, at)

        self.update_job(job_id, command)

    # --- jobs ---------------------------------------------------------------------------------

    def create_job(self, *, name: str, training_file: ArtifactRef, file_name: str, conversation_count: int,
                   pair_count: int, created_by: str, at: datetime, **metadata: Any) -> UUID:
        """Creates a job awaiting configuration; `metadata`: description, tags, client, project,
        retry_of, retry_number, resumed_from, resume_checkpoint."""
        job = TrainingJob.create(uuid4(), name=name, training_file=training_file, file_name=file_name,
                                 conversation_count=conversation_count, pair_count=pair_count,
                                 created_by=created_by, at=at, **metadata)
        self.save(job)
        return job.id

    def configure_job(self, job_id: UUID, **configuration: Any) -> None:
        """Applies preset, GPU tier and cost estimate (see TrainingJob.configure)."""
        job = self.get_job(job_id)
        job.configure(**configuration)
        self.save(job)

    def start_job(self, job_id: UUID, actor: str, role: str, at: datetime,
                  override_justification: str | None = None) -> list[str]:
        """Queues the job and reserves its estimated maximum on this month's budget, in one save.
        Raises BudgetExceededError (nothing saved) unless a manager overrides. Returns warnings."""

        def attempt() -> list[str]:
            job = self.get_job(job_id)
            budget = self._budget_for(at)
            entry = self.catalog_file(CatalogFile.id_for(job.training_file.sha256))
            if entry is not None:
                entry.claim(job.id, at)
            warnings = budget.reserve(job.id, job.estimated_cost_max, actor, role, at, override_justification)
            job.queue(at)
            self.save(*(a for a in (job, budget, entry) if a is not None))
            return warnings

        return self._retrying(attempt)

    def record_job_spend(self, job_id: UUID, now: datetime) -> Decimal:
        """Charges the job's spend so far to the budget it reserved on; returns the spend."""

        def attempt() -> Decimal:
            job = self.get_job(job_id)
            spend = job.cost(now).total_cost
            budget = self._budget_for(job.queued_at or now)
            budget.record_spend(job.id, spend, now)
            entry = None
            if job.is_terminal and not job.running_pods():
                budget.release(job.id, now)
                entry = self.catalog_file(CatalogFile.id_for(job.training_file.sha256))
                if entry is not None:
                    entry.release(job.id, now)
            self.save(*(a for a in (budget, entry) if a is not None))
            return spend

        return self._retrying(attempt)

    def update_job(self, job_id: UUID, command: Callable[[TrainingJob], T]) -> T:
        """Runs `command` on the job and saves what it recorded; re-run on fresh state after a
        concurrent change (reactors and telemetry touch the same job)."""

        def attempt() -> T:
            job = self.get_job(job_id)
            result = command(job)
            if job.pending_events:
                self.save(job)
            return result

        return self._retrying(attempt)

    def cancel_job(self, job_id: UUID, reason: CancelReason, notes: str, actor: str, at: datetime) -> None:
        """Cancels; with no pod running, the spend is final at once and the reservation and file are
        released (otherwise when the pod stops)."""
        def cancel(job: TrainingJob) -> TrainingJob:
            job.cancel(reason, notes, actor, at)
            return job

        job = self.update_job(job_id, cancel)
        if job.queued_at is not None and not job.running_pods():
            self.record_job_spend(job_id, at)

    def retry_job(self, original_id: UUID, plan: RetryPlan, *, actor: str, role: str, at: datetime,
                  override_justification: str | None = None, prices: PriceSource | None = None
                  ) -> tuple[UUID, list[str]]:
        """A new job linked to a failed or cancelled one (FR3.3.1, FR3.3.2; FR3.2.2 when
        `plan.resume`: it starts from the original's latest checkpoint, its estimate scaled to the
        work left). Created, configured, queued and its budget reserved in one save: refused by
        the budget, nothing is left behind. Returns the new job's id and the budget's warnings."""

        def attempt() -> tuple[UUID, list[str]]:
            original = self.get_job(original_id)
            check_retryable(original, plan.resume)
            number = original.retry_number + 1  # the first retry is #1 (the original is #0)
            gpu = gpu_option(PricingTier(plan.gpu_tier), prices)
            estimate = estimate_cost(preset_named(plan.preset), original.pair_count, gpu,
                                     epochs=int(plan.hyperparameters["num_train_epochs"]))
            left = Decimal(str(remaining_fraction(original))) if plan.resume else Decimal(1)
            job = TrainingJob.create(
                uuid4(), name=retry_name(original.name, number), training_file=original.training_file,
                file_name=original.file_name, conversation_count=original.conversation_count,
                pair_count=original.pair_count, created_by=actor, at=at, description=original.description,
                tags=original.tags, client=original.client, project=original.project,
                retry_of=original.retry_of or original.id, retry_number=number,
                resumed_from=original.id if plan.resume else None,
                resume_checkpoint=original.latest_checkpoint if plan.resume else None)
            job.configure(preset=plan.preset, hyperparameters=plan.hyperparameters, gpu_tier=gpu.tier.value,
                          gpu_type=gpu.gpu_type, hourly_rate=gpu.hourly_rate,
                          estimated_duration_hours=estimate.duration_hours * left,
                          estimated_cost_min=cents(estimate.cost_min * left),
                          estimated_cost_max=cents(estimate.cost_max * left),
                          estimation_algorithm=estimate.algorithm_version,
                          estimation_confidence=None if estimate.confidence is None else Decimal(estimate.confidence),
                          at=at)
            what = f"Resumed from step {original.last_checkpoint_step} of" if plan.resume else "Retry of"
            changes = "; ".join(c.describe() for c in plan.changes) or "same configuration"
            job.add_note(f"{what} job {original.id} ({changes})", actor, at)
            budget = self._budget_for(at)
            entry = self.catalog_file(CatalogFile.id_for(job.training_file.sha256))
            if entry is not None:
                entry.release(original.id, at)  # ended; its pod may still be stopping: the file passes on
                entry.claim(job.id, at)
            warnings = budget.reserve(job.id, job.estimated_cost_max, actor, role, at, override_justification)
            job.queue(at)
            self.save(*(a for a in (job, budget, entry) if a is not None))
            return job.id, warnings

        return self._retrying(attempt)

    def switch_gpu_tier(self, job_id: UUID, gpu_tier: str, *, actor: str, role: str, at: datetime,
                        override_justification: str | None = None, prices: PriceSource | None = None) -> list[str]:
        """FR3.1.3 "Switch to on-demand": a waiting job's GPU tier, estimate and reservation change
        together in one save (the budget may refuse the larger reservation). Returns warnings."""

        def attempt() -> list[str]:
            job = self.get_job(job_id)
            gpu = gpu_option(PricingTier(gpu_tier), prices)
            config = job.configuration or {}
            old_rate = Decimal(config.get("hourly_rate") or gpu.hourly_rate)
            ratio = gpu.hourly_rate / old_rate
            low, high = (cents(Decimal(config.get(k) or 0) * ratio)
                         for k in ("estimated_cost_min", "estimated_cost_max"))
            job.change_gpu_tier(gpu.tier.value, gpu.hourly_rate, low, high, actor, at)
            if not job.pending_events:
                return []
            budget = self._budget_for(job.queued_at or at)
            spent = budget.spent_by_job.get(str(job.id), Decimal(0))
            warnings = budget.change_reservation(job.id, max(Decimal(0), high - spent), actor, role, at,
                                                 override_justification)
            self.save(job, budget)
            return warnings

        return self._retrying(attempt)

    def promote_job(self, job_id: UUID, *, actor: str, role: str, at: datetime) -> None:
        """FR2.3.2: a manager moves a queued job to the front of the queue."""
        self.update_job(job_id, lambda job: job.promote(actor, role, at))

    def get_job(self, job_id: UUID) -> TrainingJob:
        try:
            job: Aggregate = self.repository.get(job_id)
        except AggregateNotFoundError:
            raise JobNotFoundError(f"no training job {job_id}") from None
        if not isinstance(job, TrainingJob):
            raise JobNotFoundError(f"no training job {job_id}")
        return job

    # --- budgets ------------------------------------------------------------------------------

    def budget(self, month: str) -> Budget | None:
        try:
            return self.repository.get(Budget.id_for(self.policy.team, month))
        except AggregateNotFoundError:
            return None

    def change_limit(self, month: str, new_limit: Decimal, actor: str, role: str, justification: str,
                     at: datetime) -> None:
        def attempt() -> None:
            budget = self._budget_for_month(month, at)
            budget.change_limit(new_limit, actor, role, justification, at)
            self.save(budget)

        self._retrying(attempt)

    def request_limit_increase(self, month: str, new_limit: Decimal, justification: str,
                               requested_by: str, at: datetime) -> UUID:
        request_id = uuid4()

        def attempt() -> UUID:
            budget = self._budget_for_month(month, at)
            budget.request_limit_increase(request_id, new_limit, justification, requested_by, at)
            self.save(budget)
            return request_id

        return self._retrying(attempt)

    def decide_limit_increase(self, month: str, request_id: UUID, approve: bool, decided_by: str,
                              role: str, at: datetime, reason: str = "") -> None:
        def attempt() -> None:
            budget = self._budget_for_month(month, at)
            budget.decide_limit_increase(request_id, approve, decided_by, role, at, reason)
            self.save(budget)

        self._retrying(attempt)

    def set_budget_blocking(self, month: str, block_new_jobs: bool, actor: str, role: str, justification: str,
                            at: datetime) -> None:
        """FR7.2.1 "Block new jobs": on, a job past the limit plus grace needs a manager's override;
        off, it starts with a warning. Later months keep the choice when they are opened."""

        def attempt() -> None:
            budget = self._budget_for_month(month, at)
            budget.set_blocking(block_new_jobs, actor, role, justification, at)
            self.save(budget)

        self._retrying(attempt)

    def _budget_for(self, at: datetime) -> Budget:
        return self._budget_for_month(budget_month(at, self.policy.time_zone), at)

    def _budget_for_month(self, month: str, at: datetime) -> Budget:
        """The month's budget; a month opened now keeps the budget controls of the latest budget of
        the year before it."""
        budget = self.budget(month)
        if budget is None:
            budget = Budget.open(self.policy.team, month, self.policy.default_limit, at, self.policy.grace_percent)
            previous = next((b for m in earlier_months(month) if (b := self.budget(m)) is not None), None)
            if previous is not None:
                budget.carry_blocking(previous, at)
        return budget

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """Re-runs a command on fresh state after an optimistic-concurrency conflict."""
        for tries in range(self.conflict_retries):
            try:
                return attempt()
            except IntegrityError:
                time.sleep(random.uniform(0, 0.002 * 2 ** min(tries, 6)))
        raise ConcurrencyConflictError("too many concurrent changes; try again")


class JobNotFoundError(LookupError):
    """No training job has that id."""


class TrainingFileNotFoundError(LookupError):
    """No catalogued training file has that id."""


class ConcurrencyConflictError(RuntimeError):
    """A command kept conflicting with concurrent ones and was given up (nothing saved)."""
