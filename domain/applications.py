"""Application services: the only way commands reach aggregates and get saved."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import Transcoder

from domain.aggregates.budget import Budget
from domain.aggregates.training_job import TrainingJob
from domain.transcodings import register_domain_transcodings
from domain.values import ArtifactRef


class TrainingJobs(Application[UUID]):
    """Training jobs; events stored in table `trainingjobs_events`."""

    name = "trainingjobs"

    def register_transcodings(self, transcoder: Transcoder) -> None:
        super().register_transcodings(transcoder)
        register_domain_transcodings(transcoder)

    def create_and_queue(
        self, name: str, training_file: ArtifactRef, created_by: str, at: datetime
    ) -> UUID:
        """Creates a job and queues it, both events saved together."""
        job = TrainingJob.create(uuid4(), name, training_file, created_by, at)
        job.queue(at)
        self.save(job)
        return job.id

    def get_job(self, job_id: UUID) -> TrainingJob:
        try:
            return self.repository.get(job_id)
        except AggregateNotFoundError:
            raise JobNotFoundError(f"no training job {job_id}") from None


class Budgets(Application[UUID]):
    """Monthly team budgets; events stored in table `budgets_events`."""

    name = "budgets"

    def register_transcodings(self, transcoder: Transcoder) -> None:
        super().register_transcodings(transcoder)
        register_domain_transcodings(transcoder)

    def open_month(self, team: str, month: str, limit: Decimal, at: datetime) -> UUID:
        """Opens the team's budget for a month; opening it again changes nothing."""
        budget_id = Budget.id_for(team, month)
        try:
            self.repository.get(budget_id)
        except AggregateNotFoundError:
            self.save(Budget.open(team, month, limit, at))
        return budget_id


class JobNotFoundError(LookupError):
    """No training job has that id."""
