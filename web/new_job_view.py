"""Everything the new-job page shows for one set of form values (FR1.1.1-FR1.3.1): the files, the
chosen preset and tier, the quote, the budget, and the form as typed."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any
from uuid import UUID

from litestar.datastructures import State

from domain.aggregates.budget import LIMIT_JUSTIFICATION_MIN, MANAGER_ROLES, OVERRIDE_JUSTIFICATION_MIN
from domain.aggregates.catalog_file import CatalogFile
from domain.aggregates.training_job import TrainingJob
from domain.applications import JobNotFoundError
from domain.gpu import PricingTier
from domain.job_metadata import (
    COMMON_TAGS,
    DESCRIPTION_MAX,
    LABEL_MAX,
    NAME_MAX,
    NAME_MIN,
    NOTE_MAX,
    TAGS_MAX,
    default_name,
)
from domain.job_status import JobStatus
from domain.presets import CONSERVATIVE, Preset, UnknownPresetError, default_preset, preset_named
from domain.retries import ADJUSTABLE
from domain.training_file.lengths import Cut, LengthDistribution
from handlers.pods.provider import SPOT_UNAVAILABLE, offers_spot
from projections import job_reads
from projections.catalog import list_files
from projections.suites import list_suites
from web import cost_panel
from web.budget_view import BudgetView, limit_months, load_budget, suggested_limit
from web.clock import utcnow
from web.file_cards import file_card
from web.flows import Actor, memory_check
from web.job_checks import form_errors
from web.job_form import JobInput, as_uuid
from web.job_history import History, load_history
from web.quote import Quote, estimates_for
from web.template_library.prefill import setting_fields

TOOLTIPS = {  # FR1.1.3's explanations of the GPU terms
    "spot": ("Spot Instance: Unused datacenter capacity offered at discount - may be reclaimed if needed, but we"
             " automatically save progress and resume quickly"),
    "on_demand": "On-Demand: Dedicated GPU guaranteed for your job duration - no interruptions, but costs 3x more",
    "checkpoint": ("Checkpoint: Progress snapshot saved every 100 training steps - enables recovery from exact point"
                   " if interrupted"),
}
DUPLICATE_NAME = "⚠ Similar job name already exists. Consider adding version number or distinguishing details."
PLACEHOLDERS = {
    "description": ("What is the purpose of this training run? (e.g., 'First production model for Acme client',"
                    " 'Testing aggressive parameters on high-emotion dataset')"),
    "notes": ("Document your hypothesis, experimental variables, expected outcomes, or configuration"
              " rationale. Use markdown for formatting."),
}
LIMITS = {"name_min": NAME_MIN, "name_max": NAME_MAX, "description": DESCRIPTION_MAX, "notes": NOTE_MAX,
          "tags": TAGS_MAX, "label": LABEL_MAX, "override": OVERRIDE_JUSTIFICATION_MIN,
          "limit_justification": LIMIT_JUSTIFICATION_MIN}


async def editable_job(state: State, job_id: str | None) -> TrainingJob | None:
    """The job to edit: only a configured one (not started yet)."""
    found = as_uuid(job_id)
    if found is None:
        return None
    try:
        job = await asyncio.to_thread(state.store.app.get_job, found)
    except JobNotFoundError:
        return None
    return job if job.status is JobStatus.CONFIGURED else None


@dataclass
class NewJobPage:
    """The page for one set of form values; `editing`: the configured job being changed."""

    state: State
    actor: Actor
    values: JobInput
    files: list[dict[str, Any]]
    file: dict[str, Any] | None
    budget: BudgetView
    history: History
    successful_jobs: int
    editing: TrainingJob | None = None
    previous_total: Decimal | None = None

    @classmethod
    async def load(cls, state: State, actor: Actor, values: JobInput, editing: TrainingJob | None = None,
                   previous_total: Decimal | None = None, preselect: bool = False) -> NewJobPage:
        """`preselect`: with no file chosen yet, the newest ready one (a fresh page, not a sent form)."""
        files = await file_cards(state, editing)
        history, budget = await load_history(state), await load_budget(state, utcnow())
        successful = await job_reads.successful_jobs(state.pool, actor.name)
        chosen, values = choose_file(files, values, preselect)
        page = cls(state, actor, values, files, chosen, budget, history, successful, editing, previous_total)
        if not values.name and page.default_name():
            page.values = replace(values, name=page.default_name(), name_default=page.default_name())
        return page

    def preset(self) -> Preset:
        try:
            return preset_named(self.values.preset)
        except UnknownPresetError:
            return default_preset(self.file["conversations"]) if self.file else CONSERVATIVE

    def tier(self) -> PricingTier:
        """The chosen tier; on-demand where the pod provider rents no spot pods (RunPod's API v2)."""
        if not self.spot_offered():
            return PricingTier.ON_DEMAND
        try:
            return PricingTier(self.values.gpu_tier)
        except ValueError:
            return PricingTier.SPOT

    def spot_offered(self) -> bool:
        return offers_spot(self.state.settings.agent.pod_provider)

    def default_name(self) -> str:
        if self.file is None:
            return ""
        return default_name(self.file["name"], self.preset().title, utcnow().date())

    def quote(self) -> Quote | None:
        if self.file is None or self.file["pairs"] <= 0:
            return None
        probability = self.history.interruption_probability
        prices = self.state.get("prices")  # RunPod's catalog price, or our configured rate (labelled as such)
        return Quote(self.file, self.preset(), self.tier(), estimates_for(self.file["pairs"], probability,
                                                                          self.epochs(), prices,
                                                                          self.history.coefficients),
                     self.budget, self.history, self.actor.role, self.successful_jobs, self.previous_total,
                     prices=prices)

    def length_cut(self) -> Cut | None:
        """What the agent would cut from the file's longest examples with this preset (issue #17), on the
        estimated lengths; None without a file, or for one catalogued before its example lengths were kept."""
        lengths = LengthDistribution.stored(self.file.get("example_tokens")) if self.file else None
        if lengths is None:
            return None
        seq_len = memory_check(self.state.settings).trained_length(self.preset().as_config(), lengths.longest,
                                                                   lengths.covering_length())
        return lengths.cut_at(seq_len)

    def epochs(self) -> int | None:
        """The epochs a template or clone set (FR5.2.2, FR8.1.2), when valid; else the preset's."""
        low, high = ADJUSTABLE["num_train_epochs"]
        typed = self.values.setting("num_train_epochs")
        return int(typed) if typed.isdigit() and low <= int(typed) <= high else None

    def name(self) -> str:
        """The name to save: the default follows the file and preset until the person edits it."""
        if self.values.name.strip() == self.values.name_default.strip() and self.file is not None:
            return self.default_name()
        return self.values.name

    def errors(self) -> dict[str, str]:
        return form_errors(self)

    async def duplicate_name(self) -> bool:
        other_than = self.editing.id if self.editing else UUID(int=0)
        return await job_reads.same_name_exists(self.state.pool, self.actor.name, self.name().strip(), other_than)

    async def context(self, errors: Mapping[str, str] | None = None, **extra: Any) -> dict[str, Any]:
        quote = self.quote()
        clients, projects = await job_reads.labels(self.state.pool)
        return {
            **self.form_context(errors), **quote_context(quote, self.default_name()),
            "selected_preset": self.preset().name, "selected_tier": self.tier().value,
            "spot_unavailable": None if self.spot_offered() else SPOT_UNAVAILABLE,
            "clients": clients, "projects": projects, "limits": LIMITS, "tooltips": TOOLTIPS,
            "placeholders": PLACEHOLDERS, "editing": self.editing, "budget": self.budget,
            "suggested_limit": suggested_limit(self.budget, quote.estimate.cost_max if quote else Decimal(0)),
            "months": limit_months(self.budget.month), "manager": self.actor.role in MANAGER_ROLES,
            "duplicate_name": DUPLICATE_NAME if await self.duplicate_name() else None,
            "probe_suites": await list_suites(self.state.pool, "probes"),  # FR6.3.2
            "rubrics": await list_suites(self.state.pool, "rubric"),  # FR6.4.1, FR6.4.2
            "length_warning": (cut := self.length_cut()) and cut.warning,
            **extra,
        }

    def form_context(self, errors: Mapping[str, str] | None) -> dict[str, Any]:
        """The form as typed, its errors, the files to choose from and the tags to tick."""
        tags = self.values.all_tags()
        return {
            "values": self.values, "errors": dict(errors or {}), "files": self.files, "file": self.file,
            "ready_files": [f for f in self.files if f["refusal"] is None],
            "other_files": [f for f in self.files if f["refusal"] is not None],
            "common_tags": COMMON_TAGS, "checked_tags": [t for t in tags if t in COMMON_TAGS],
            "custom_tags": self.values.custom_tags if errors else " ".join(t for t in tags if t not in COMMON_TAGS),
            "setting_fields": setting_fields(self.values, self.preset().name,
                                             self.state.settings.agent.checkpoint_every),
        }


def quote_context(quote: Quote | None, name_default: str) -> dict[str, Any]:
    """The cost panel, the option cards and new_job.js's figures (empty without a usable file)."""
    if quote is None:
        return {"quote": None, "panel": None, "presets": [], "tiers": None, "figures": None}
    return {"quote": quote, "panel": cost_panel.panel(quote), "presets": cost_panel.preset_cards(quote),
            "tiers": cost_panel.tier_cards(quote), "figures": cost_panel.figures(quote, name_default)}


async def file_cards(state: State, editing: TrainingJob | None) -> list[dict[str, Any]]:
    """Every catalogued file, newest first; editing, only the job's own file."""
    rows = await list_files(state.pool)
    editing_file = str(CatalogFile.id_for(editing.training_file.sha256)) if editing else None
    return [file_card(r, for_job=str(r["id"]) == editing_file) for r in rows
            if editing_file is None or str(r["id"]) == editing_file]


def choose_file(files: list[dict[str, Any]], values: JobInput,
                preselect: bool) -> tuple[dict[str, Any] | None, JobInput]:
    """The chosen file (or, `preselect`ed, the newest ready one) and the values with its default preset."""
    ready = [f for f in files if f["refusal"] is None]
    chosen = next((f for f in files if f["id"] == values.training_file_id), None)
    if chosen is None and preselect and not values.training_file_id and ready:
        chosen = ready[0]
        values = replace(values, training_file_id=chosen["id"])
    if chosen is not None and not values.preset:
        values = replace(values, preset=default_preset(chosen["conversations"]).name)
    return chosen, values
