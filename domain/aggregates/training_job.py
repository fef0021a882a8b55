"""TrainingJob: one fine-tuning run, from creation to its end state."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.values import ArtifactRef

NAME_MIN, NAME_MAX = 3, 100


class JobStatus(StrEnum):
    PENDING_CONFIGURATION = "pending_configuration"
    QUEUED = "queued"


class TrainingJob(Aggregate):
    """A training job; explicit TOPICs keep stored events loadable across renames."""

    TOPIC = "TrainingJob"

    class Created(Aggregate.Created):
        TOPIC = "TrainingJob.Created"
        name: str
        training_file: ArtifactRef
        created_by: str
        at: datetime

    class Queued(Aggregate.Event):
        TOPIC = "TrainingJob.Queued"
        at: datetime

    @classmethod
    def create(
        cls, job_id: UUID, name: str, training_file: ArtifactRef, created_by: str, at: datetime
    ) -> TrainingJob:
        name = name.strip()
        check_name(name)
        return cls._create(cls.Created, id=job_id, name=name, training_file=training_file, created_by=created_by, at=at)

    @event(Created)
    def __init__(self, name: str, training_file: ArtifactRef, created_by: str, at: datetime) -> None:
        self.name = name
        self.training_file = training_file
        self.created_by = created_by
        self.created_at = at
        self.status = JobStatus.PENDING_CONFIGURATION
        self.queued_at: datetime | None = None

    def queue(self, at: datetime) -> None:
        if self.status != JobStatus.PENDING_CONFIGURATION:
            raise IllegalTransitionError(f"cannot queue a job that is {self.status}")
        self._queued(at=at)

    @event(Queued)
    def _queued(self, at: datetime) -> None:
        self.status = JobStatus.QUEUED
        self.queued_at = at


def check_name(name: str) -> None:
    if not NAME_MIN <= len(name) <= NAME_MAX:
        raise InvalidJobError(f"Job name must be {NAME_MIN}-{NAME_MAX} characters (got {len(name)})")


class InvalidJobError(ValueError):
    """A job command carried an invalid value; nothing was changed."""


class IllegalTransitionError(Exception):
    """The command is not allowed in the job's current state; nothing was changed."""
