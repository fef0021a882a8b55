"""CatalogFile: a training file registered in the catalog, the other names it was added under, and
which active jobs use it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.text import check_storable
from domain.training_file import TrainingFileStats, ValidationReport, check_eligibility, check_validation_file
from domain.values import ArtifactRef

NAME_MAX = 255  # characters: the longest file name most file systems allow


class CatalogFile(Aggregate):
    """One per distinct content (the id derives from the SHA-256): the same bytes added again under
    another name keep their entry and its first name, and the new name is recorded as an alias.
    `active_jobs` is kept in the same save as a job's start and end, so "in use by an active job"
    is checked without a race."""

    TOPIC = "CatalogFile"

    class Created(Aggregate.Created):
        TOPIC = "CatalogFile.Created"
        name: str
        file: ArtifactRef
        status: str
        stats: dict[str, Any]
        problems: list[str]
        problem_count: int
        registered_by: str
        at: datetime

    class Claimed(Aggregate.Event):
        TOPIC = "CatalogFile.Claimed"
        job_id: UUID
        at: datetime

    class Released(Aggregate.Event):
        TOPIC = "CatalogFile.Released"
        job_id: UUID
        at: datetime

    class AliasAdded(Aggregate.Event):
        TOPIC = "CatalogFile.AliasAdded"
        name: str
        added_by: str
        at: datetime

    @staticmethod
    def id_for(sha256: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"lora-pipeline:training-file:{sha256}")

    @classmethod
    def register(cls, name: str, file: ArtifactRef, report: ValidationReport,
                 stats: TrainingFileStats | None, registered_by: str, at: datetime) -> CatalogFile:
        return cls._create(
            cls.Created, id=cls.id_for(file.sha256), name=check_name(name), file=file,
            status="active" if report.ok else "invalid", stats=plain(stats) if stats else {},
            problems=[f"{p.place}: {p.message}" if p.place else p.message for p in report.problems],
            problem_count=report.problem_count, registered_by=registered_by, at=at)

    @event(Created)
    def __init__(self, name: str, file: ArtifactRef, status: str, stats: dict[str, Any], problems: list[str],
                 problem_count: int, registered_by: str, at: datetime) -> None:
        self.name, self.file, self.status, self.stats = name, file, status, stats
        self.problems, self.problem_count = problems, problem_count
        self.registered_by, self.registered_at = registered_by, at
        self.active_jobs: list[str] = []
        self.aliases: list[str] = []

    def add_alias(self, name: str, added_by: str, at: datetime) -> bool:
        """Records `name` as another name of this file (its bytes were added again under it);
        False when it is already one of its names."""
        name = check_name(name)
        if name == self.name or name in self.aliases:
            return False
        self._alias_added(name=name, added_by=added_by, at=at)
        return True

    @event(AliasAdded)
    def _alias_added(self, name: str, added_by: str, at: datetime) -> None:
        self.aliases.append(name)

    @property
    def conversation_count(self) -> int:
        return int(self.stats.get("conversation_count", 0))

    @property
    def pair_count(self) -> int:
        return int(self.stats.get("training_pair_count", 0))

    def check_eligible(self, for_job: UUID | None = None) -> None:
        """Raises IneligibleTrainingFileError with the spec's message (FR1.1.1)."""
        others = [j for j in self.active_jobs if j != str(for_job)]
        check_eligibility(found=True, stored=True, enrichment_status="completed",
                          first_problem=self.problems[0] if self.problems else None,
                          conversation_count=self.conversation_count, in_use=bool(others))

    def check_validates(self) -> None:
        """Raises IneligibleValidationFileError unless a job may validate on this file (OpenAI's `validation_file`)."""
        check_validation_file(first_problem=self.problems[0] if self.problems else None,
                              conversation_count=self.conversation_count)

    def claim(self, job_id: UUID, at: datetime) -> None:
        self.check_eligible(for_job=job_id)
        if str(job_id) not in self.active_jobs:
            self._claimed(job_id=job_id, at=at)

    @event(Claimed)
    def _claimed(self, job_id: UUID, at: datetime) -> None:
        self.active_jobs.append(str(job_id))

    def release(self, job_id: UUID, at: datetime) -> None:
        if str(job_id) in self.active_jobs:
            self._released(job_id=job_id, at=at)

    @event(Released)
    def _released(self, job_id: UUID, at: datetime) -> None:
        self.active_jobs.remove(str(job_id))


@dataclass(frozen=True)
class Registration:
    """What adding a file to the catalog did: a new entry, or the entry its bytes already had
    (`alias`: the new name now recorded for it, if any)."""

    file_id: UUID
    name: str
    registered_by: str
    registered_at: datetime
    new: bool
    alias: str | None = None

    @classmethod
    def of(cls, entry: CatalogFile, new: bool, alias: str | None = None) -> Registration:
        return cls(entry.id, entry.name, entry.registered_by, entry.registered_at, new, alias)

    def already_catalogued(self) -> str | None:
        """The sentence for bytes already in the catalog: the page, the API and the CLI say it."""
        if self.new:
            return None
        said = (f"This file is already in the catalog as '{self.name}'"
                f" (added {self.registered_at:%Y-%m-%d} by {self.registered_by})")
        return said + (f"; '{self.alias}' is recorded as another name for it." if self.alias else ".")


def check_name(name: str) -> str:
    """The catalog's name of a file: some text, at most NAME_MAX characters."""
    name = check_storable(name, "The file name", InvalidCatalogNameError).strip()
    if not name:
        raise InvalidCatalogNameError("A training file needs a name")
    if len(name) > NAME_MAX:
        raise InvalidCatalogNameError(f"A training file name can be at most {NAME_MAX} characters (got {len(name):,})")
    return name


def plain(value: Any) -> Any:
    """Dataclasses → dicts and tuples → lists, keeping Decimals: what survives the stored form."""
    if dataclasses.is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool, Decimal)) or value is None:
        return value
    return str(value)


class InvalidCatalogNameError(ValueError):
    """The name given to a training file breaks a rule; the message is the one shown."""
