"""What the event log shows for each domain event (jobs, budgets, job sharing, configuration templates):
its category (the FR2.1.3 colours), a sentence, and who did it when the event says so."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from domain.aggregates.budget import Budget as B
from domain.aggregates.job_sharing import JobSharing as S
from domain.aggregates.template import ConfigurationTemplate as C
from domain.aggregates.training_job import TrainingJob as J
from domain.money import usd
from projections import quality_messages as quality

CATEGORIES = ("status", "metrics", "warning", "error")
ERRORS = frozenset({J.Failed, J.ProvisioningFailed})
WARNINGS = frozenset({J.Interrupted, J.RecoveryStarted, J.ProvisioningTimedOut, J.AdapterDeleted, B.OverrideRecorded,
                      B.ThresholdCrossed, B.OverrunForecast, B.OverLimitAllowed, S.LinkRevoked,
                      S.AllLinksRevoked, C.Deleted}) | quality.WARNINGS
METRICS = frozenset({J.ProgressRecorded, J.EpochCompleted, J.CheckpointSaved, B.SpendRecorded}) | quality.METRICS
# Events that warn only when what they report calls for it: examples cut, settings the memory guard changed.
WARNS_WHEN: dict[type, Callable[[Any], bool]] = {J.DataMeasured: lambda e: e.truncated_examples > 0,
                                                 J.MemoryGuarded: lambda e: bool(e.changes), **quality.WARNS_WHEN}
# The fields that name a person (or the reactor) behind an event, in the order they are looked for.
ACTOR_FIELDS = ("created_by", "actor", "decided_by", "requested_by", "author", "registered_by")


def category(event: Any) -> str:
    kind = type(event)
    if (warns := WARNS_WHEN.get(kind)) is not None:
        return "warning" if warns(event) else "status"
    return "error" if kind in ERRORS else "warning" if kind in WARNINGS else "metrics" if kind in METRICS else "status"


def actor_of(event: Any) -> str | None:
    names = _ACTOR_FIELDS_OF.get(type(event))
    if names is None:  # the fields a class declares, found once (a rebuild asks for every event)
        declared = {f.name for f in dataclasses.fields(event)} if dataclasses.is_dataclass(event) else set(ACTOR_FIELDS)
        names = _ACTOR_FIELDS_OF[type(event)] = tuple(name for name in ACTOR_FIELDS if name in declared)
    return next((value for name in names if (value := getattr(event, name, None))), None)


_ACTOR_FIELDS_OF: dict[type, tuple[str, ...]] = {}


def message(event: Any) -> str:
    """The sentence for `event`; an event class added without one is logged by its name rather than
    stopping the log (a unit test asks for a sentence for every class)."""
    describe = MESSAGES.get(type(event))
    return describe(event) if describe else type(event).__name__


def _words(value: str) -> str:
    return value.replace("_", " ")


def _progress(e: J.ProgressRecorded) -> str:
    of = f" of {e.total_steps:,}" if e.total_steps else ""
    loss = f": loss {e.loss:.4f}" if e.loss is not None else ""
    return f"Step {e.step:,}{of}{loss}, epoch {e.epoch:.2f}"


DECIDED_BY = {"data": "from the data", "max_seq_length": "capped by the job's max_seq_length",
              "model context": "capped by the model's context", "memory": "capped by GPU memory"}


def _data_measured(e: J.DataMeasured) -> str:
    cut = (f"{e.truncated_examples:,} of {e.examples:,} examples cut, by up to {e.most_cut:,} tokens"
           f" ({e.truncated_tokens:,} in all)" if e.truncated_examples else f"none of {e.examples:,} examples cut")
    return (f"Sequence length {e.seq_len:,} tokens ({DECIDED_BY.get(e.decided_by, e.decided_by)}; longest example"
            f" {e.longest:,}): {cut}; loss on the assistant's answers only ({e.masked_share:.0%} of tokens masked)")


def _memory_guarded(e: J.MemoryGuarded) -> str:
    settings = (f"micro-batch {e.micro_batch} × accumulation {e.gradient_accumulation_steps}"
                f"{', gradient checkpointing' if e.gradient_checkpointing else ''}")
    if not e.changes:
        return f"Memory guard: fits as configured, {e.estimate_gb:.1f} GB estimated on the {e.gpu_memory_gb:g} GB GPU"
    return (f"Memory guard on the {e.gpu_memory_gb:g} GB GPU: {'; '.join(e.changes)}. Training with {settings}"
            f" ({e.estimate_gb:.1f} GB estimated)")


def _link(purpose: str) -> str:
    """A share link's purpose as words: "training-report" → "Training report"."""
    return purpose.replace("-", " ").replace("_", " ").capitalize()


def _recovery(e: J.RecoveryStarted) -> str:
    start = f"from checkpoint {e.from_checkpoint.name}" if e.from_checkpoint else "from the beginning (no checkpoint)"
    return f"Recovery attempt {e.recovery_attempt} started {start}"


def _paused(e: J.Paused) -> str:
    start = f"the checkpoint at step {e.checkpoint_step:,}" if e.checkpoint_step else "the start (no checkpoint)"
    return f"Paused at step {e.step:,} (no pod, no spend); a resume continues from {start}"


MESSAGES: dict[type, Callable[[Any], str]] = {
    J.Created: lambda e: f"Created by {e.created_by}: {e.name} ({e.file_name}, {e.conversation_count} conversations)",
    J.Configured: lambda e: (f"Configured: {e.preset} preset on {e.gpu_type} {e.gpu_tier} at {usd(e.hourly_rate)}/h,"
                             f" estimated {usd(e.estimated_cost_min)}–{usd(e.estimated_cost_max)}"),
    J.Renamed: lambda e: f"Renamed to {e.name}",
    J.MetadataUpdated: lambda e: "Description, tags, client or project updated",
    J.NoteAdded: lambda e: f"Note by {e.author}: {e.text}",
    J.Queued: lambda e: "Queued",
    J.ProvisioningStarted: lambda e: f"Provisioning a {e.gpu_tier} GPU (attempt {e.attempt})",
    J.ProvisioningFailed: lambda e: f"Provisioning failed (attempt {e.attempt}): {e.reason}",
    J.PodStarted: lambda e: f"Pod {e.pod_id} started (attempt {e.attempt}, {usd(e.hourly_rate)}/h)",
    J.PodStopped: lambda e: f"Pod {e.pod_id} stopped",
    J.StageChanged: lambda e: f"{_words(e.stage).capitalize()} started",
    J.ProgressRecorded: _progress,
    J.CheckpointSaved: lambda e: f"Checkpoint saved at step {e.step:,}",
    J.EpochCompleted: lambda e: f"Epoch {e.epoch} completed" + (
        f": validation loss {e.validation_loss:.4f}" if e.validation_loss is not None else ""),
    J.Interrupted: lambda e: f"Interrupted at step {e.step:,}: {e.reason}",
    J.RecoveryStarted: _recovery,
    J.Resumed: lambda e: f"Resumed after {e.downtime_seconds:.0f} s of downtime",
    J.Completed: lambda e: f"Completed: adapter {e.adapter.name}",
    J.Failed: lambda e: f"Failed ({_words(e.failure_type)}): {e.message}",
    J.Cancelled: lambda e: f"Cancelled by {e.actor}: {_words(e.reason)}" + (f" — {e.notes}" if e.notes else ""),
    J.ProvisioningTimedOut: lambda e: f"No GPU after {e.waited_seconds / 60:.0f} min: {e.message}",
    J.GpuTierChanged: lambda e: (f"Switched to {_words(e.gpu_tier)} by {e.actor} at {usd(e.hourly_rate)}/hr"
                                 f" (estimate up to {usd(e.estimated_cost_max)})"),
    J.Promoted: lambda e: f"Moved to the front of the queue by {e.actor}",
    J.PauseRequested: lambda e: f"Pause requested by {e.actor}: the pod saves a checkpoint at the next step and stops",
    J.Paused: _paused,
    J.ResumeRequested: lambda e: f"Resumed by {e.actor}: queued again",
    J.MetricsExported: lambda e: f"Exported ({e.kind}) by {e.actor}",
    J.AdapterDeleted: lambda e: f"Adapter {e.adapter.name} deleted by {e.actor}: {e.reason}",
    J.DataMeasured: _data_measured,
    J.MemoryGuarded: _memory_guarded,
    J.ModelDownloaded: lambda e: (f"Base model {e.model} {'found on the network volume' if e.cached else 'downloaded'}"
                                  f" in {e.seconds:.0f} s ({e.size_bytes / 1e9:.1f} GB) on pod {e.pod_id}"),
    J.BillingReconciled: lambda e: (f"RunPod billed {usd(e.billed)} for pod {e.pod_id}"
                                    f" ({len(e.buckets)} hourly bucket{'s' if len(e.buckets) != 1 else ''})"),
    B.Created: lambda e: f"Budget {e.month} of team {e.team} opened with a limit of {usd(e.limit)}",
    B.Reserved: lambda e: f"Budget reserved: {usd(e.amount)}",
    B.ReservationChanged: lambda e: f"Budget reservation changed to {usd(e.amount)}",
    B.OverrideRecorded: lambda e: (f"Budget override by {e.actor}: {usd(e.over_by)} over the limit —"
                                   f" {e.justification}"),
    B.OverLimitAllowed: lambda e: (f"Reserved {usd(e.amount)} past the budget limit plus grace ({usd(e.over_by)} over"
                                   " the limit): new jobs are not blocked when the budget is exceeded"),
    B.BlockingChanged: lambda e: (f"Block new jobs when the budget is exceeded: {'on' if e.block_new_jobs else 'off'}"
                                  f" ({e.actor}: {e.justification})"),
    B.SpendRecorded: lambda e: f"Spend recorded: {usd(e.amount)} (job total {usd(e.job_total)})",
    B.Released: lambda e: f"Unspent reservation released: {usd(e.amount)}",
    B.ThresholdCrossed: lambda e: f"Budget {e.percent}% used: {usd(e.spent)} of {usd(e.limit)}",
    B.OverrunForecast: lambda e: (f"Active jobs may exceed the budget: {usd(e.spent)} spent and up to {usd(e.reserved)}"
                                  f" more for {e.active_jobs} active job{'s' if e.active_jobs != 1 else ''},"
                                  f" against a limit of {usd(e.limit)}"),
    B.LimitIncreaseRequested: lambda e: f"Limit increase to {usd(e.new_limit)} requested by {e.requested_by}",
    B.LimitIncreaseDecided: lambda e: (f"Limit increase {'approved' if e.approved else 'denied'} by {e.decided_by}"
                                       + (f": {e.reason}" if e.reason else "")),
    B.LimitChanged: lambda e: f"Limit changed from {usd(e.old_limit)} to {usd(e.new_limit)} by {e.actor}",
    S.Created: lambda e: f"Sharing settings opened by {e.actor} (the job is private to {e.owner} until shared)",
    S.VisibilityChanged: lambda e: f"Visibility changed from {e.previous} to {e.visibility} by {e.actor}",
    S.LinkIssued: lambda e: (f"{_link(e.purpose)} link shared by {e.actor},"
                             f" valid until {e.expires_at:%Y-%m-%d %H:%M} UTC"),
    S.LinkRevoked: lambda e: f"{_link(e.purpose)} link revoked by {e.actor}",
    S.AllLinksRevoked: lambda e: f"Every share link revoked by {e.actor}",
    S.Shared: lambda e: (f"Shared by {e.actor} " + (f"by email with {', '.join(e.recipients)}" if e.channel == "email"
                                                   else "on the team's Slack channel")
                         + (f": {e.message}" if e.message else "")),
    C.Created: lambda e: (f"Template {e.name!r} created by {e.created_by} ({e.preset} preset on {_words(e.gpu_tier)},"
                          f" {e.visibility})" + (f" from job {e.source_job_id}" if e.source_job_id else "")),
    C.Edited: lambda e: f"Template edited by {e.actor}: {e.visibility}, tags {', '.join(e.tags) or 'none'}",
    C.Used: lambda e: f"Job {e.job_id} started from the template by {e.actor}",
    C.Deleted: lambda e: f"Template deleted by {e.actor} (the jobs started from it keep their settings)",
    **quality.MESSAGES,
}
