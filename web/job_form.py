"""The new-job form as sent (FR1.1-FR1.3.1), and the small parsers its handlers share."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from domain.aggregates.catalog_file import CatalogFile
from domain.aggregates.training_job import TrainingJob
from domain.gpu import PricingTier
from domain.job_metadata import COMMON_TAGS
from domain.training_settings import SETTINGS
from web.forms import split_tags

MONEY_BOUND = Decimal(10) ** 9


@dataclass(frozen=True)
class JobInput:
    """The form's values, kept as typed so the page can show them again with their errors."""

    training_file_id: str = ""
    preset: str = ""
    gpu_tier: str = PricingTier.SPOT.value
    name: str = ""
    name_default: str = ""
    description: str = ""
    notes: str = ""
    tags: tuple[str, ...] = ()
    custom_tags: str = ""
    client: str = ""
    project: str = ""
    confirm_on_demand: bool = False
    job_id: str = ""
    # "Start from Template" (FR5.2.2) and "Clone Configuration" (FR8.1.2): where the settings came
    # from, and the settings changed from the preset, as typed (domain/training_settings.py SETTINGS).
    template_id: str = ""
    clone_of: str = ""
    settings: tuple[tuple[str, str], ...] = ()
    probe_suite_ids: tuple[str, ...] = ()  # FR6.3.2: client probe suites the adapter is evaluated on
    # FR6.2.1, FR6.4.1: replies to the EI scenarios and to a rubric's prompts ("none": no brand voice)
    emotional_intelligence: bool = True
    rubric_id: str = ""

    @classmethod
    def of(cls, form: Any) -> JobInput:
        def text(key: str, limit: int = 25_000) -> str:
            value = form.get(key)
            return str(value)[:limit] if value is not None else ""

        tier = PricingTier.SPOT.value if form.get("use_spot") else text("gpu_tier", 20) or PricingTier.SPOT.value
        return cls(
            training_file_id=text("training_file_id", 64).strip(), preset=text("preset", 40).strip().lower(),
            gpu_tier=tier.strip(), name=text("name", 1000), name_default=text("name_default", 1000),
            description=text("description"), notes=text("notes"),
            tags=tuple(str(t)[:100] for t in getall(form, "tags")[:50]), custom_tags=text("custom_tags", 2000),
            client=text("client", 1000), project=text("project", 1000),
            # the hidden field and the "Continue with On-Demand" button both send it: any "1" confirms
            confirm_on_demand=any(getall(form, "confirm_on_demand")), job_id=text("job_id", 64).strip(),
            template_id=text("template_id", 64).strip(), clone_of=text("clone_of", 64).strip(),
            settings=tuple((key, text(f"setting_{key}", 40).strip()) for key in SETTINGS
                           if text(f"setting_{key}", 40).strip()),
            probe_suite_ids=tuple(str(v)[:64] for v in getall(form, "probe_suite_ids")[:10]),
            # a form that names no judged part at all (an older page, a script) keeps the defaults
            emotional_intelligence=bool(form.get("emotional_intelligence")) or "judged_parts" not in form,
            rubric_id=text("rubric_id", 64).strip())

    @classmethod
    def of_job(cls, job: TrainingJob) -> JobInput:
        """A configured job's values, to edit it."""
        config = job.configuration or {}
        return cls(training_file_id=str(CatalogFile.id_for(job.training_file.sha256)),
                   preset=config.get("preset", ""), gpu_tier=config.get("gpu_tier", "spot"), name=job.name,
                   description=job.description, tags=tuple(t for t in job.tags if t in COMMON_TAGS),
                   custom_tags=" ".join(t for t in job.tags if t not in COMMON_TAGS), client=job.client or "",
                   project=job.project or "", job_id=str(job.id))

    def all_tags(self) -> list[str]:
        return list(dict.fromkeys([*self.tags, *split_tags(self.custom_tags.lower())]))

    def file_uuid(self) -> UUID | None:
        return as_uuid(self.training_file_id)

    def options(self, name: str) -> dict[str, Any]:
        """What the application's create or reconfigure command takes, `name` being the one to save
        (and, for a new job from a template or a clone, where from and the changed settings)."""
        options = {"preset": self.preset, "gpu_tier": self.gpu_tier, "name": name.strip(),
                   "description": self.description.strip() or None, "tags": self.all_tags(),
                   "client": self.client or None, "project": self.project or None,
                   "notes": self.notes.strip() or None}
        if self.settings:
            options["overrides"] = dict(self.settings)
        if as_uuid(self.template_id):
            options["template_id"] = as_uuid(self.template_id)
        if self.probe_suite_ids and not self.job_id:  # chosen when the job is created
            options["probe_suite_ids"] = list(self.probe_suite_ids)
        if not self.job_id:
            options["emotional_intelligence"] = self.emotional_intelligence
            options["brand_voice"] = self.rubric_id != "none"
            options["rubric_id"] = self.rubric_id if self.rubric_id not in ("", "none") else None
        return options

    def setting(self, key: str) -> str:
        return dict(self.settings).get(key, "")

    @property
    def carried(self) -> bool:
        """Started from a template or a clone: the form shows the settings it carried."""
        return bool(self.template_id or self.clone_of or self.settings)


def getall(form: Any, key: str) -> list[Any]:
    return list(form.getall(key)) if hasattr(form, "getall") and key in form else []


def as_uuid(text: str | None) -> UUID | None:
    try:
        return UUID(str(text)) if text else None
    except ValueError:
        return None


def as_money(text: str | None) -> Decimal | None:
    """Dollars as typed ("$1,200.50"); None for anything else, or beyond a billion."""
    try:
        value = Decimal(str(text).replace("$", "").replace(",", "").strip()[:40]) if text else None
    except InvalidOperation:
        return None
    return value if value is not None and value.is_finite() and abs(value) < MONEY_BOUND else None
