"""The application service: the only way commands reach aggregates and get saved.

Jobs and budgets live in one eventsourcing application so that a command touching both (a job
queued with its budget reservation, a job's spend with its charge) is saved in one atomic
`save(job, budget)`. Concurrent commands on one budget conflict on its version
(IntegrityError); they are re-run on fresh state, a bounded number of times."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder

from domain.aggregates.budget import DEFAULT_GRACE_PERCENT, Budget
from domain.aggregates.catalog_file import CatalogFile, Registration
from domain.aggregates.job_sharing import JobSharing, can_view
from domain.aggregates.probe_suite import ProbeSuite
from domain.aggregates.quality_review import QualityReview
from domain.aggregates.template import DEFAULTS, SYSTEM, ConfigurationTemplate, TemplateNotFoundError
from domain.aggregates.training_job import IllegalTransitionError, TrainingJob
from domain.budget_month import budget_month, earlier_months
from domain.cost_model import DEFAULT_COEFFICIENTS, Coefficients, estimate_cost
from domain.gpu import DEFAULT_INTERRUPTION_RATE, GPU_MEMORY_GB, PriceSource, PricingTier, gpu_option
from domain.gpu_memory.job_check import MemoryCheck
from domain.job_metadata import NAME_MAX, default_name, retry_name
from domain.job_status import CancelReason, JobStatus
from domain.money import cents
from domain.preset_choice import PresetChoice, RequestedHyperparameters, choose_preset
from domain.presets import check_unlocked, default_preset, is_unlocked, preset_named
from domain.quality.cost import ALGORITHM as EVALUATION_ESTIMATE
from domain.quality.cost import reevaluation_estimate
from domain.quality.delivery import SuiteRef
from domain.quality.generations import Generations
from domain.quality.model import EiSuite, KnowledgeSuite, Rubric
from domain.retries import RetryPlan, check_retryable, remaining_fraction
from domain.training_file import (
    VALIDATION_FILE_NOT_FOUND,
    IneligibleValidationFileError,
    TrainingFileStats,
    ValidationReport,
)
from domain.training_settings import overrides_for
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
        """Records a stored file with its validation result and statistics; the id of its entry."""
        return self.add_to_catalog(name, file, report, stats, registered_by, at).file_id

    def add_to_catalog(self, name: str, file: ArtifactRef, report: ValidationReport,
                       stats: TrainingFileStats | None, registered_by: str, at: datetime) -> Registration:
        """A new catalog entry for new bytes. Bytes already catalogued keep their entry and its
        name; a different `name` is recorded as an alias of it (CatalogFile.AliasAdded)."""
        entry = self.catalog_file(CatalogFile.id_for(file.sha256))
        if entry is None:
            entry = CatalogFile.register(name, file, report, stats, registered_by, at)
            try:
                self.save(entry)
                return Registration.of(entry, new=True)
            except IntegrityError:
                pass  # registered concurrently: same id, same content, so an alias of that entry

        def alias() -> Registration:
            found = self.catalog_file(CatalogFile.id_for(file.sha256))
            assert found is not None
            added = found.add_alias(name, registered_by, at)
            self.save(found)
            return Registration.of(found, new=False, alias=found.aliases[-1] if added else None)

        return self._retrying(alias)

    def catalog_file(self, file_id: UUID) -> CatalogFile | None:
        try:
            entry: Aggregate = self.repository.get(file_id)
        except AggregateNotFoundError:
            return None
        return entry if isinstance(entry, CatalogFile) else None

    # --- the evaluation-suite catalog (FR6.3) ----------------------------------------------------

    def register_suite(self, suite: KnowledgeSuite | EiSuite | Rubric, kind: str, file: ArtifactRef,
                       registered_by: str, at: datetime) -> ProbeSuite:
        """A validated suite (questions, EI scenarios or a brand-voice rubric), stored; the same bytes
        registered again return the existing entry."""
        existing = self.suite(ProbeSuite.id_for(file.sha256))
        if existing is not None:
            return existing
        entry = ProbeSuite.register(suite, kind, file, registered_by, at)
        try:
            self.save(entry)
        except IntegrityError:
            return self.suite(entry.id) or entry  # registered concurrently: same id, same content
        return entry

    def suite(self, suite_id: UUID) -> ProbeSuite | None:
        try:
            found: Aggregate = self.repository.get(suite_id)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, ProbeSuite) else None

    def create_job_from_file(self, file_id: UUID, *, created_by: str, at: datetime, **options: Any) -> UUID:
        """Creates and configures a job for a catalogued file (FR1.1.1-FR1.3.1): eligibility, preset
        (default by conversation count, Aggressive lock, VRAM), GPU option and cost estimate; see
        `_job_from_file` for the options."""
        job, _ = self._job_from_file(file_id, created_by=created_by, at=at, **options)
        self.save(job)
        return job.id

    def launch_job_from_file(self, file_id: UUID, *, actor: str, role: str, at: datetime,
                             override_justification: str | None = None, **options: Any) -> tuple[UUID, list[str]]:
        """Creates, configures and starts a job in one save (the OpenAI-compatible API's create):
        refused by the file's eligibility or the budget, nothing is left behind. Returns the id and
        the budget's warnings."""

        def attempt() -> tuple[UUID, list[str]]:
            job, entry = self._job_from_file(file_id, created_by=actor, at=at, **options)
            budget = self._budget_for(at)
            entry.claim(job.id, at)
            warnings = budget.reserve(job.id, job.estimated_cost_max, actor, role, at, override_justification)
            job.queue(at)
            self.save(job, budget, entry)
            return job.id, warnings

        return self._retrying(attempt)

    def _job_from_file(self, file_id: UUID, *, created_by: str, at: datetime, name: str | None = None,
                       preset: str | None = None, gpu_tier: str = "spot", successful_jobs: int = 0,
                       prices: PriceSource | None = None,
                       interruption_probability: Decimal = DEFAULT_INTERRUPTION_RATE, notes: str | None = None,
                       coefficients: Coefficients = DEFAULT_COEFFICIENTS,
                       requested: RequestedHyperparameters | None = None,
                       overrides: dict[str, Any] | None = None, knowledge_suite: SuiteRef | None = None,
                       probe_suites: Sequence[SuiteRef] = (), ei_suite: SuiteRef | None = None,
                       rubric: SuiteRef | None = None, memory: MemoryCheck | None = None,
                       validation_file_id: UUID | None = None, **metadata: Any) -> tuple[TrainingJob, CatalogFile]:
        """The configured job, unsaved. `requested`: hyperparameters in OpenAI's terms, mapped onto
        the nearest preset with overrides (domain/preset_choice.py); `memory`: the deployment's
        pre-flight memory check (refuses a configuration that cannot fit the GPU); `validation_file_id`:
        a catalogued file validated on instead of a hold-out of the training file; `metadata`:
        description, tags, client, project, labels, suffix, base_model."""
        entry = self.catalog_file(file_id)
        if entry is None:
            raise TrainingFileNotFoundError("Training file not found")
        entry.check_eligible()
        if validation_file_id is not None:
            metadata["validation_file"] = self.validation_file(validation_file_id)
        count = entry.conversation_count
        fixed = preset_named(preset) if preset else None
        if requested is None:
            choice = PresetChoice(fixed or default_preset(count))
        else:
            choice = choose_preset(requested, default_preset(count),
                                   lambda p: is_unlocked(p, count, successful_jobs), fixed)
        if overrides:  # settings carried from a template or a cloned job (domain/training_settings.py)
            choice = PresetChoice(choice.preset, {**choice.overrides, **overrides_for(choice.preset.name, overrides)})
        chosen = choice.preset
        check_unlocked(chosen, count, successful_jobs)
        chosen.check_fits(GPU_MEMORY_GB)
        if memory is not None:
            memory.check(choice.hyperparameters)
        gpu = gpu_option(PricingTier(gpu_tier), prices)
        estimate = estimate_cost(chosen, entry.pair_count, gpu, epochs=choice.epochs,
                                 interruption_probability=interruption_probability, coefficients=coefficients)
        job = TrainingJob.create(
            uuid4(), name=name or default_name(entry.name, chosen.title, at.date()), training_file=entry.file,
            file_name=entry.name, conversation_count=count, pair_count=entry.pair_count,
            created_by=created_by, at=at, **metadata)
        job.configure(preset=chosen.name, hyperparameters=choice.hyperparameters, gpu_tier=gpu.tier.value,
                      gpu_type=gpu.gpu_type, hourly_rate=gpu.hourly_rate,
                      estimated_duration_hours=estimate.duration_hours, estimated_cost_min=estimate.cost_min,
                      estimated_cost_max=estimate.cost_max, estimation_algorithm=estimate.algorithm_version,
                      estimation_confidence=None if estimate.confidence is None else Decimal(estimate.confidence),
                      at=at)
        if knowledge_suite or probe_suites or ei_suite or rubric:  # what its pod evaluates (FR6.2-FR6.4)
            job.attach_suites(knowledge_suite, list(probe_suites), at, ei=ei_suite, rubric=rubric)
        if notes:
            job.add_note(notes, created_by, at)
        return job, entry

    def validation_file(self, file_id: UUID) -> ArtifactRef:
        """The stored file a job validates on, if the catalog holds it and it may be one."""
        entry = self.catalog_file(file_id)
        if entry is None:
            raise IneligibleValidationFileError(VALIDATION_FILE_NOT_FOUND)
        entry.check_validates()
        return entry.file

    def reconfigure_job(self, job_id: UUID, *, preset: str, gpu_tier: str, successful_jobs: int,
                        interruption_probability: Decimal, name: str, description: str | None,
                        tags: list[str], client: str | None, project: str | None, notes: str | None,
                        actor: str, at: datetime, coefficients: Coefficients = DEFAULT_COEFFICIENTS) -> None:
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
                estimate = estimate_cost(chosen, job.pair_count, gpu, interruption_probability=interruption_probability,
                                         coefficients=coefficients)
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
            job.check_startable()  # before the budget and the file are asked anything
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
            spend = job.spend(now)  # its pods, and any judging of its replies (QualityReview)
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
                  override_justification: str | None = None, prices: PriceSource | None = None,
                  coefficients: Coefficients = DEFAULT_COEFFICIENTS) -> tuple[UUID, list[str]]:
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
                                     epochs=int(plan.hyperparameters["num_train_epochs"]), coefficients=coefficients)
            left = Decimal(str(remaining_fraction(original))) if plan.resume else Decimal(1)
            job = TrainingJob.create(
                uuid4(), name=retry_name(original.name, number), training_file=original.training_file,
                file_name=original.file_name, conversation_count=original.conversation_count,
                pair_count=original.pair_count, created_by=actor, at=at, description=original.description,
                tags=original.tags, client=original.client, project=original.project,
                retry_of=original.retry_of or original.id, retry_number=number,
                resumed_from=original.id if plan.resume else None,
                resume_checkpoint=original.latest_checkpoint if plan.resume else None,
                validation_file=original.validation_file)  # validated, and resumed, as the original
            job.configure(preset=plan.preset, hyperparameters=plan.hyperparameters, gpu_tier=gpu.tier.value,
                          gpu_type=gpu.gpu_type, hourly_rate=gpu.hourly_rate,
                          estimated_duration_hours=estimate.duration_hours * left,
                          estimated_cost_min=cents(estimate.cost_min * left),
                          estimated_cost_max=cents(estimate.cost_max * left),
                          estimation_algorithm=estimate.algorithm_version,
                          estimation_confidence=None if estimate.confidence is None else Decimal(estimate.confidence),
                          at=at)
            if original.knowledge_suite or original.probe_suites or original.ei_suite or original.rubric:
                job.attach_suites(original.knowledge_suite, original.probe_suites, at, ei=original.ei_suite,
                                  rubric=original.rubric)  # evaluated as the original was
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

    def reevaluate_job(self, original_id: UUID, *, knowledge: SuiteRef | None, probes: Sequence[SuiteRef],
                       questions: int, actor: str, role: str, at: datetime,
                       override_justification: str | None = None, prices: PriceSource | None = None,
                       ei: SuiteRef | None = None, rubric: SuiteRef | None = None) -> tuple[UUID, list[str]]:
        """A new job whose pod evaluates a completed job's stored adapter on `knowledge` and
        `probes` (`questions` in all), training nothing; costed by domain/quality/cost.py, created,
        configured, queued and its budget reserved in one save, like a retry. Its results are
        recorded on both jobs: the original's gate follows its latest evaluation."""

        def attempt() -> tuple[UUID, list[str]]:
            original = self.get_job(original_id)
            if original.status is not JobStatus.COMPLETED or original.adapter is None:
                raise IllegalTransitionError("Only a completed job's adapter can be evaluated again")
            if original.adapter_deleted is not None:
                raise IllegalTransitionError("This job's adapter was deleted: there is nothing to evaluate")
            config = original.configuration or {}
            preset = str(config.get("preset") or "balanced")
            gpu = gpu_option(PricingTier(config.get("gpu_tier") or "spot"), prices)
            estimate = reevaluation_estimate(preset, original.pair_count, questions, gpu)
            suffix = " (Re-evaluation)"
            job = TrainingJob.create(
                uuid4(), name=original.name[: NAME_MAX - len(suffix)].rstrip() + suffix,
                training_file=original.training_file, file_name=original.file_name,
                conversation_count=original.conversation_count, pair_count=original.pair_count, created_by=actor,
                at=at, description=original.description, tags=original.tags, client=original.client,
                project=original.project, validation_file=original.validation_file)
            job.configure(preset=preset, hyperparameters=dict(config.get("hyperparameters") or {}),
                          gpu_tier=gpu.tier.value, gpu_type=gpu.gpu_type, hourly_rate=gpu.hourly_rate,
                          estimated_duration_hours=estimate["duration_hours"],
                          estimated_cost_min=cents(estimate["cost_min"]),
                          estimated_cost_max=cents(estimate["cost_max"]),
                          estimation_algorithm=EVALUATION_ESTIMATE, estimation_confidence=None, at=at)
            job.request_evaluation(original.id, original.adapter, actor, at)
            job.attach_suites(knowledge, list(probes), at, ei=ei, rubric=rubric)
            budget = self._budget_for(at)
            warnings = budget.reserve(job.id, job.estimated_cost_max, actor, role, at, override_justification)
            job.queue(at)
            self.save(job, budget)
            return job.id, warnings

        return self._retrying(attempt)

    def override_delivery(self, job_id: UUID, *, actor: str, role: str, justification: str, at: datetime) -> None:
        """A manager releases an adapter the quality gate blocked (domain/quality/delivery.py)."""
        self.update_job(job_id, lambda job: job.override_delivery(actor, role, justification, at))

    # --- scoring generated replies (FR6.2.1, FR6.4.1; QualityReview) -----------------------------

    def review(self, review_id: UUID) -> QualityReview | None:
        try:
            found: Aggregate = self.repository.get(review_id)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, QualityReview) else None

    def open_review(self, job_id: UUID, results: ArtifactRef, generations: Generations, at: datetime) -> QualityReview:
        """The review of these results, opened (its blind orders drawn and recorded) on first use."""
        review_id = QualityReview.id_for(results.sha256)
        found = self.review(review_id)
        if found is not None:
            return found
        review = QualityReview.open(job_id, results, generations, at)
        try:
            self.save(review)
        except IntegrityError:
            return self.review(review_id) or review  # opened concurrently: the same orders, drawn from the digest
        return review

    def record_judgements(self, review_id: UUID, record: Callable[[QualityReview], Any], at: datetime
                          ) -> QualityReview:
        """A batch of the model judge's verdicts (`record` applies them to the review), with the review's
        cost so far charged to its job and that job's budget line, in one save: a crash records all or
        none, and the budget's cumulative charge never counts a verdict twice."""

        def attempt() -> QualityReview:
            review = self.review(review_id)
            if review is None:
                raise LookupError(f"no quality review {review_id}")
            record(review)
            if not review.pending_events:
                return review
            job = self.get_job(review.job_id)
            judged = len(review.judged) + len(review.unscored)
            job.charge_judging(review.id, review.cost, review.prompt_tokens, review.completion_tokens, judged, at)
            budget = self._budget_for(job.queued_at or at)
            budget.record_spend(job.id, job.spend(at), at)
            self.save(review, job, budget)
            return review

        return self._retrying(attempt)

    def score_by_person(self, review_id: UUID, item: str, reviewer: str, first: dict[str, Any],
                        second: dict[str, Any], at: datetime) -> QualityReview:
        """A reviewer's scores of one item's replies, as shown to them (blind)."""

        def attempt() -> QualityReview:
            review = self.review(review_id)
            if review is None:
                raise LookupError(f"no quality review {review_id}")
            review.score_by_person(item, reviewer, first, second, at)
            if review.pending_events:
                self.save(review)
            return review

        return self._retrying(attempt)

    def record_judged(self, job_id: UUID, review_id: UUID, results_sha256: str, summary: dict[str, Any],
                      at: datetime) -> None:
        self.update_job(job_id, lambda job: job.record_judged(review_id, results_sha256, summary, at))

    def pause_job(self, job_id: UUID, *, actor: str, role: str, at: datetime) -> TrainingJob:
        """FR2.2.2: a training job is to checkpoint and stop (its pod is stopped by the provisioner,
        which then frees its slot and settles its spend; the reservation stays). Returns the job."""
        def pause(job: TrainingJob) -> TrainingJob:
            job.request_pause(actor, role, at)
            return job

        return self.update_job(job_id, pause)

    def resume_job(self, job_id: UUID, *, actor: str, role: str, at: datetime) -> TrainingJob:
        """A paused job is queued again on its reservation; its next pod continues from the latest
        checkpoint (bit-identical: docs/gpu-agent.md). Returns the job."""
        def resume(job: TrainingJob) -> TrainingJob:
            job.request_resume(actor, role, at)
            return job

        return self.update_job(job_id, resume)

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

    # --- configuration templates (FR5.2.2) ----------------------------------------------------

    def template(self, template_id: UUID) -> ConfigurationTemplate:
        try:
            found: Aggregate = self.repository.get(template_id)
        except AggregateNotFoundError:
            raise TemplateNotFoundError("There is no such template") from None
        if not isinstance(found, ConfigurationTemplate):
            raise TemplateNotFoundError("There is no such template")
        return found

    def save_job_as_template(self, job_id: UUID, *, completed: int, failed: int, name: str,
                             description: str | None, visibility: str, tags: list[str] | None, actor: str,
                             at: datetime) -> UUID:
        """"Save as Template" on a completed job: its preset, changed settings, GPU tier and
        checkpoint frequency; `completed`/`failed`: the finished jobs of its configuration."""
        template = ConfigurationTemplate.from_job(uuid4(), self.get_job(job_id), completed=completed, failed=failed,
                                                  name=name, description=description, visibility=visibility,
                                                  tags=tags, actor=actor, at=at)
        self.save(template)
        return template.id

    def create_template(self, *, actor: str, at: datetime, **fields: Any) -> UUID:
        """A template from settings (name, description, preset, overrides, gpu_tier, visibility, tags)."""
        template = ConfigurationTemplate.define(uuid4(), created_by=actor, at=at, **fields)
        self.save(template)
        return template.id

    def edit_template(self, template_id: UUID, *, description: str | None, tags: list[str] | None,
                      visibility: str, actor: str, role: str, at: datetime) -> None:
        def attempt() -> None:
            template = self.template(template_id)
            template.edit(description=description, tags=tags, visibility=visibility, actor=actor, role=role, at=at)
            if template.pending_events:
                self.save(template)

        self._retrying(attempt)

    def delete_template(self, template_id: UUID, *, actor: str, role: str, at: datetime) -> None:
        """The template leaves the library; the jobs started from it keep everything they had."""
        def attempt() -> None:
            template = self.template(template_id)
            template.delete(actor, role, at)
            self.save(template)

        self._retrying(attempt)

    def create_job_from_template(self, template_id: UUID, file_id: UUID, *, created_by: str, at: datetime,
                                 notes: str | None = None, **options: Any) -> UUID:
        """A configured job whose notes start with "Started from template: {name}", recorded on the
        template in the same save (its usage count). `options` as `_job_from_file`'s, the form's
        `overrides` (as edited) included."""
        def attempt() -> UUID:
            template = self.template(template_id)
            template.check_visible_to(created_by)
            text = (notes or "").strip()
            note = text if template.note in text else "\n\n".join(p for p in (template.note, text) if p)
            job, _ = self._job_from_file(file_id, created_by=created_by, at=at, notes=note, **options)
            template.record_use(job.id, created_by, at)
            self.save(job, template)
            return job.id

        return self._retrying(attempt)

    def ensure_default_templates(self, at: datetime) -> list[str]:
        """FR5.2.2's default templates, created by `system` on a fresh install; one that exists (or
        was deleted by a manager) is left as it is. Returns the names created."""
        created = []
        for default in DEFAULTS:
            template_id = ConfigurationTemplate.default_id(default.key)
            try:
                self.repository.get(template_id)
                continue
            except AggregateNotFoundError:
                pass
            template = ConfigurationTemplate.define(
                template_id, name=default.name, description=default.description, preset=default.preset,
                overrides=default.overrides, gpu_tier="spot", visibility="team", tags=list(default.tags),
                created_by=SYSTEM, at=at)
            try:
                self.save(template)
                created.append(default.name)
            except IntegrityError:
                pass  # created at the same moment by another process: same id, same content
        return created

    # --- job sharing (FR8.1.2) -------------------------------------------------------------------

    def job_sharing(self, job_id: UUID) -> JobSharing | None:
        try:
            found: Aggregate = self.repository.get(JobSharing.id_for(job_id))
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, JobSharing) else None

    def can_view_job(self, job_id: UUID, user: str | None, role: str) -> bool:
        """Whether `user` (None: not signed in) may see the job; raises JobNotFoundError."""
        sharing = self.job_sharing(job_id)
        return can_view(sharing, user, role, owner=self.get_job(job_id).created_by if sharing is None else None)

    def update_sharing(self, job_id: UUID, actor: str, command: Callable[[JobSharing], T], at: datetime) -> T:
        """Runs `command` on the job's sharing record (opened now if it has none) and saves it."""
        def attempt() -> T:
            sharing = self.job_sharing(job_id)
            if sharing is None:
                sharing = JobSharing.open(job_id, self.get_job(job_id).created_by, actor, at)
            result = command(sharing)
            if sharing.pending_events:
                self.save(sharing)
            return result

        return self._retrying(attempt)

    def change_job_visibility(self, job_id: UUID, visibility: str, *, actor: str, role: str, at: datetime) -> None:
        self.update_sharing(job_id, actor, lambda s: s.change_visibility(visibility, actor, role, at), at)

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
