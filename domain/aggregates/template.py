"""ConfigurationTemplate: a saved training configuration (FR5.2.2) — preset, changed settings, GPU
tier and checkpoint frequency — that new jobs start from; who may see, use, edit and delete it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.aggregates.budget import MANAGER_ROLES, PermissionDeniedError
from domain.job_metadata import InvalidJobError, clean_tags
from domain.job_status import JobStatus
from domain.presets import preset_named
from domain.training_settings import CHECKPOINT_KEY, check_tier, hyperparameters, overrides_for, overrides_of

VISIBILITIES = ("private", "team")
NAME_MIN, NAME_MAX, DESCRIPTION_MAX = 3, 100, 1000
SUCCESS_RATE_ABOVE = 90  # FR5.2.2: "Save as Template" on completed jobs (success rate > 90%)
SYSTEM = "system"
NOTE = "Started from template: {name}"  # FR5.2.2: the notes of a job started from a template


@dataclass(frozen=True)
class DefaultTemplate:
    key: str
    name: str
    description: str
    preset: str
    overrides: dict[str, Any]
    tags: tuple[str, ...]


DEFAULTS = (  # FR5.2.2 "Default templates provided"
    DefaultTemplate("quick-test", "Quick Test", "Conservative preset for one epoch on a spot GPU: the cheapest way"
                    " to check a new training file end to end before a longer run.", "conservative",
                    {"num_train_epochs": 1}, ("quick-test", "conservative", "low-cost")),
    DefaultTemplate("standard-production", "Standard Production", "Balanced preset, 3 epochs: the proven"
                    " configuration for production adapters and client delivery.", "balanced", {},
                    ("production", "balanced", "proven")),
    DefaultTemplate("maximum-quality", "Maximum Quality", "Aggressive preset, 4 epochs: the highest quality for"
                    " complex, emotionally rich datasets of more than 300 conversations, when the budget allows.",
                    "aggressive", {}, ("high-quality", "aggressive")),
)


class ConfigurationTemplate(Aggregate):
    """Private templates are their creator's alone; team templates are everyone's to use, and
    their creator's, managers' and admins' to edit or delete. Deleting one keeps its history and
    leaves the jobs started from it as they are."""

    TOPIC = "ConfigurationTemplate"

    class Created(Aggregate.Created):
        TOPIC = "ConfigurationTemplate.Created"
        name: str
        description: str
        preset: str
        hyperparameters: dict[str, Any]
        overrides: dict[str, Any]
        gpu_tier: str
        visibility: str
        tags: list[str]
        created_by: str
        source_job_id: UUID | None
        at: datetime

    class Edited(Aggregate.Event):
        TOPIC = "ConfigurationTemplate.Edited"
        description: str
        tags: list[str]
        visibility: str
        actor: str
        at: datetime

    class Used(Aggregate.Event):
        """A job was created from the template (saved with the job)."""
        TOPIC = "ConfigurationTemplate.Used"
        job_id: UUID
        actor: str
        at: datetime

    class Deleted(Aggregate.Event):
        TOPIC = "ConfigurationTemplate.Deleted"
        actor: str
        at: datetime

    @staticmethod
    def default_id(key: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"lora-pipeline:configuration-template:default:{key}")

    @classmethod
    def define(cls, template_id: UUID, *, name: str, description: str | None, preset: str,
               overrides: dict[str, Any], gpu_tier: str, visibility: str, tags: list[str] | None,
               created_by: str, at: datetime, source_job_id: UUID | None = None) -> ConfigurationTemplate:
        chosen = preset_named(preset).name
        checked = overrides_for(chosen, overrides)
        return cls._create(
            cls.Created, id=template_id, name=clean_template_name(name), description=clean_template_text(description),
            preset=chosen, hyperparameters=hyperparameters(chosen, checked), overrides=checked,
            gpu_tier=check_tier(gpu_tier), visibility=check_visibility(visibility),
            tags=list(clean_tags(tags)), created_by=created_by, source_job_id=source_job_id, at=at)

    @classmethod
    def from_job(cls, template_id: UUID, job: Any, *, completed: int, failed: int, name: str,
                 description: str | None, visibility: str, tags: list[str] | None, actor: str,
                 at: datetime) -> ConfigurationTemplate:
        """"Save as Template": a completed job whose configuration succeeded more than 90% of the
        time (`completed` ÷ (`completed` + `failed`) of the team's finished jobs like it)."""
        check_saveable(job.status, completed, failed)
        config = job.configuration or {}
        return cls.define(template_id, name=name, description=description, preset=config["preset"],
                          overrides=overrides_of(config["preset"], config.get("hyperparameters") or {}),
                          gpu_tier=config.get("gpu_tier", "spot"),
                          visibility=visibility, tags=tags, created_by=actor, at=at, source_job_id=job.id)

    @event(Created)
    def __init__(self, name: str, description: str, preset: str, hyperparameters: dict[str, Any],
                 overrides: dict[str, Any], gpu_tier: str, visibility: str, tags: list[str], created_by: str,
                 source_job_id: UUID | None, at: datetime) -> None:
        self.name, self.description, self.preset = name, description, preset
        self.hyperparameters, self.overrides = dict(hyperparameters), dict(overrides)
        self.gpu_tier, self.visibility, self.tags = gpu_tier, visibility, list(tags)
        self.created_by, self.created_at, self.updated_at = created_by, at, at
        self.source_job_id = source_job_id
        self.jobs: list[str] = []
        self.deleted = False

    @property
    def checkpoint_every(self) -> int | None:
        value = self.overrides.get(CHECKPOINT_KEY)
        return int(value) if value is not None else None

    @property
    def note(self) -> str:
        return NOTE.format(name=self.name)

    def visible_to(self, user: str) -> bool:
        return not self.deleted and (self.visibility == "team" or self.created_by == user)

    def check_visible_to(self, user: str) -> None:
        if not self.visible_to(user):
            raise TemplateNotFoundError("There is no such template (it was deleted, or it is someone's private one)")

    def check_manageable_by(self, actor: str, role: str) -> None:
        self.check_visible_to(actor)
        if actor != self.created_by and not (self.visibility == "team" and role in MANAGER_ROLES):
            raise PermissionDeniedError("Only the template's creator, a manager or an admin may change or delete it")

    def edit(self, *, description: str | None, tags: list[str] | None, visibility: str, actor: str, role: str,
             at: datetime) -> None:
        """FR5.2.2 "Edit template: Update description, tags, visibility"; no change, no event."""
        self.check_manageable_by(actor, role)
        text, cleaned, seen = clean_template_text(description), list(clean_tags(tags)), check_visibility(visibility)
        if seen == "private" and actor != self.created_by:
            raise PermissionDeniedError("Only its creator may make a template private")
        if (text, cleaned, seen) != (self.description, self.tags, self.visibility):
            self._edited(description=text, tags=cleaned, visibility=seen, actor=actor, at=at)

    @event(Edited)
    def _edited(self, description: str, tags: list[str], visibility: str, actor: str, at: datetime) -> None:
        self.description, self.tags, self.visibility, self.updated_at = description, list(tags), visibility, at

    def record_use(self, job_id: UUID, actor: str, at: datetime) -> None:
        self.check_visible_to(actor)
        if str(job_id) not in self.jobs:
            self._used(job_id=job_id, actor=actor, at=at)

    @event(Used)
    def _used(self, job_id: UUID, actor: str, at: datetime) -> None:
        self.jobs.append(str(job_id))

    def delete(self, actor: str, role: str, at: datetime) -> None:
        self.check_manageable_by(actor, role)
        self._deleted(actor=actor, at=at)

    @event(Deleted)
    def _deleted(self, actor: str, at: datetime) -> None:
        self.deleted, self.updated_at = True, at


def check_saveable(status: JobStatus, completed: int, failed: int) -> None:
    if status is not JobStatus.COMPLETED:
        raise TemplateNotAllowedError(f"Only a completed job can be saved as a template (this one is {status.value})")
    finished = completed + failed
    rate = 100 * completed / finished if finished else 0
    if rate <= SUCCESS_RATE_ABOVE:
        raise TemplateNotAllowedError(
            f"Only a configuration that succeeds more than {SUCCESS_RATE_ABOVE}% of the time can be saved as a"
            f" template: jobs like this one completed {completed} of {finished} times ({rate:.0f}%)")


def check_visibility(visibility: str) -> str:
    if visibility not in VISIBILITIES:
        raise InvalidTemplateError(f"Visibility must be private or team (got {visibility!r})")
    return visibility


def clean_template_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not NAME_MIN <= len(name) <= NAME_MAX:
        raise InvalidTemplateError(f"Template name must be between {NAME_MIN} and {NAME_MAX} characters"
                                   f" (got {len(name)})")
    return name


def clean_template_text(text: str | None) -> str:
    text = (text or "").strip()
    if len(text) > DESCRIPTION_MAX:
        raise InvalidTemplateError(f"Description must be at most {DESCRIPTION_MAX} characters (got {len(text)})")
    return text


class InvalidTemplateError(InvalidJobError):
    """A template field breaks a rule; the message says which and why."""


class TemplateNotAllowedError(Exception):
    """The job cannot be saved as a template (not completed, or its configuration fails too often)."""


class TemplateNotFoundError(LookupError):
    """No template with that id that this person may see."""
