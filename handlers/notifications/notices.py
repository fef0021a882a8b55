"""What each job event says, whatever the channel: the spec's texts (FR8.2.1, FR3.2.1, FR3.1.3), the
facts behind them and the links (budget events: budget_notices.py). Pure: the aggregate is passed
in as it was right after the event, so a notice reads the same however late it is sent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.aggregates.training_job import TrainingJob
from domain.job_status import FailureType
from domain.money import usd
from domain.queue import remaining
from domain.retries import suggested_fix
from handlers.notifications.quality_notice import gate_notice, judged_facts

Facts = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Notice:
    """`headline` is the one-line message (Slack, banners, digests, the email's first line); `name`,
    when set, is the part Slack shows in bold. The first action is the main link; `at` is when the
    event happened (job events)."""

    kind: str
    subject: str
    headline: str
    name: str = ""
    facts: Facts = ()
    sections: tuple[tuple[str, tuple[str | tuple[str, str], ...]], ...] = ()  # a line, or (line, its link)
    actions: tuple[tuple[str, str], ...] = ()
    job_id: UUID | None = None
    at: datetime | None = None

    @property
    def link(self) -> tuple[str, str] | None:
        return self.actions[0] if self.actions else None

    @property
    def level(self) -> str:
        """How an in-app banner shows it: info, warning or error."""
        return LEVELS.get(self.kind, "warning" if self.kind.startswith("budget_") else "info")


LEVELS = {"failed": "error", "recovery_exhausted": "error", "budget_100": "error", "interrupted": "warning",
          "provisioning_timeout": "warning"}


# --- training jobs (FR8.2.1) ------------------------------------------------------------------

def job_kind(event: Any) -> str | None:
    """The preference key of a job event, or None when no one is told about it."""
    if isinstance(event, TrainingJob.Failed):
        return "recovery_exhausted" if event.failure_type == FailureType.RECOVERY_EXHAUSTED else "failed"
    if isinstance(event, TrainingJob.Judged):  # told once a source's scores are complete, not on each revision
        return "quality_scored" if event.completes else None
    return JOB_KINDS.get(type(event))


def job_notice(event: Any, job: TrainingJob, base_url: str) -> Notice:
    url = f"{base_url}/jobs/{job.id}"
    build: Callable[..., Notice] = BUILDERS[type(event)]
    return replace(build(event, job, url), at=event.at)


def _completed(event: TrainingJob.Completed, job: TrainingJob, url: str) -> Notice:
    hours, cost = _hours(job, event.at), usd(job.cost(event.at).total_cost)
    gate = gate_notice(job)  # FR6.1, FR6.3: the evaluation recorded with the completion
    loss = _number(event.metrics, "final_loss")
    ppl = gate.improvement if gate.improvement is not None else _number(event.metrics, "perplexity_improvement_percent")
    metrics = [f"Training loss {loss:.3f}"] if loss is not None else []
    metrics += [f"Perplexity improvement {ppl:.0f}%"] if ppl is not None else []
    detail = f"{hours}hrs, {cost}" + (f", {ppl:.0f}% perplexity improvement" if ppl is not None else "")
    download = ("Review Quality (delivery blocked)", f"{url}?tab=quality") if gate.blocked else (
        "Download Adapters", f"{url}/adapter")
    return Notice(
        "completed", f"✓ Training Job Completed: {job.name}{gate.suffix}",
        f"✓ Training completed: {job.name} ({detail}){gate.suffix}",
        job.name, (("Job", job.name), ("Configuration", _configuration(job)), ("Duration", f"{hours} hours"),
                   ("Final cost", cost), ("Final metrics", ", ".join(metrics) or "not reported"), *gate.facts),
        (("Quality gate reasons", gate.reasons),) if gate.reasons else (),
        actions=(("View Job Details", url), download, ("Generate Report", f"{url}/report.pdf")), job_id=job.id)


def _judged(event: TrainingJob.Judged, job: TrainingJob, url: str) -> Notice:
    """FR6.2.1, FR6.2.2, FR6.4.1: the replies' scores arrived (a source complete for the first time)."""
    gate = gate_notice(job)
    summary = event.summary
    plan = suggested_fix(job)
    actions = (("Review Quality", f"{url}?tab=quality"),) + (
        (("Retry with Suggested Fix", f"{url}?tab=quality#q-retry-fix"),) if plan else ())
    return Notice(
        "quality_scored", f"Replies scored: {job.name}{gate.suffix}",
        f"Replies scored: {job.name}{gate.suffix}", job.name,
        (("Job", job.name), *gate.facts[:1], *judged_facts(summary)),
        (("Quality gate reasons", tuple(summary.get("reasons") or ())),) if summary.get("reasons") else (),
        actions=actions, job_id=job.id)


def _failed(event: TrainingJob.Failed, job: TrainingJob, url: str) -> Notice:
    plan = suggested_fix(job) if job.configuration else None
    changes = "; ".join(c.describe() for c in plan.changes) if plan else ""
    # The agent's own list (OOM: batch size, preset, sequence length) says more than the diff.
    fixes = [str(f) for f in event.details.get("suggested_fixes") or ()] or ([changes] if changes else [])
    exhausted = event.failure_type == FailureType.RECOVERY_EXHAUSTED
    why = "recovery failed 3 times in a row" if exhausted else f"{event.failure_type}: {event.message}"
    actions = (("View Error Details", url),) + ((("Retry with Suggested Fix", f"{url}#retry"),) if plan else ())
    return Notice(
        "recovery_exhausted" if exhausted else "failed", f"✗ Training Job Failed: {job.name}",
        f"✗ Training failed: {job.name} ({why})." + (f" Suggested fix: {changes}." if changes else ""), job.name,
        (("Job", job.name), ("Error type", event.failure_type), ("Error message", event.message),
         ("Elapsed time before failure", f"{_hours(job, event.at)} hours"),
         ("Cost spent", usd(job.cost(event.at).total_cost))),
        (("Suggested fixes", tuple(([plan.message] if plan else []) + fixes)),) if plan or fixes else (),
        actions, job.id)


def _cancelled(event: TrainingJob.Cancelled, job: TrainingJob, url: str) -> Notice:
    reason = event.reason.replace("_", " ")
    return Notice(
        "cancelled", f"Training Job Cancelled: {job.name}",
        f"Training cancelled: {job.name} (by {event.actor}: {reason})", job.name,
        (("Job", job.name), ("Reason", reason), ("Cancelled by", event.actor), ("Notes", event.notes or "none"),
         ("Elapsed time", f"{_hours(job, event.at)} hours"), ("Cost spent", usd(job.cost(event.at).total_cost))),
        actions=(("View Job Details", url),), job_id=job.id)


def _interrupted(event: TrainingJob.Interrupted, job: TrainingJob, url: str) -> Notice:
    done = event.step * 100 // job.total_steps if job.total_steps else 0
    return Notice(  # FR3.2.1's text
        "interrupted", f"⚠ Training Interrupted: {job.name}",
        f"⚠ {job.name}: Training interrupted at {done}% complete. Auto-recovery in progress...", job.name,
        (("Job", job.name), ("Step", f"{event.step} of {job.total_steps or '?'}"), ("Cause", event.reason),
         ("Interruptions so far", str(job.interruptions))),
        actions=(("Track Status", url),), job_id=job.id)


def _resumed(event: TrainingJob.Resumed, job: TrainingJob, url: str) -> Notice:
    """FR3.2.1's text. The job resumes from its latest checkpoint, so that step (not the last one
    reported before the interruption) is where it stands; the estimate scales with what is left."""
    step = job.last_checkpoint_step if job.latest_checkpoint else 0
    hours = float((job.configuration or {}).get("estimated_duration_hours") or 0)
    left = remaining(hours, step / job.total_steps if job.total_steps else 0.0)
    start = f"checkpoint (Step {step})" if step else "the start (no checkpoint yet)"
    return Notice(
        "resumed", f"↻ Training Resumed: {job.name}",
        f"↻ {job.name}: Training resumed from {start}. Estimated completion: {_h_m(left)} remaining.", job.name,
        (("Job", job.name), ("Resumed at step", f"{step} of {job.total_steps or '?'}"),
         ("Downtime", _h_m(timedelta(seconds=float(event.downtime_seconds)))),
         ("Interruptions so far", str(job.interruptions))),
        actions=(("Track Status", url),), job_id=job.id)


def _provisioning_timed_out(event: TrainingJob.ProvisioningTimedOut, job: TrainingJob, url: str) -> Notice:
    return Notice(  # FR3.1.3's text, carried by the event
        "provisioning_timeout", f"⚠ No GPU available: {job.name}", f"⚠ {job.name}: {event.message}", job.name,
        (("Job", job.name), ("Waited", f"{_hours_of(event.waited_seconds)} hours")),
        actions=(("Switch to on-demand or cancel", url),), job_id=job.id)


BUILDERS: dict[type, Callable[..., Notice]] = {
    TrainingJob.Completed: _completed, TrainingJob.Failed: _failed, TrainingJob.Cancelled: _cancelled,
    TrainingJob.Interrupted: _interrupted, TrainingJob.Resumed: _resumed,
    TrainingJob.ProvisioningTimedOut: _provisioning_timed_out, TrainingJob.Judged: _judged,
}
JOB_KINDS: dict[type, str] = {
    TrainingJob.Completed: "completed", TrainingJob.Cancelled: "cancelled",
    TrainingJob.Interrupted: "interrupted", TrainingJob.Resumed: "resumed",
    TrainingJob.ProvisioningTimedOut: "provisioning_timeout",
}


def _configuration(job: TrainingJob) -> str:
    config = job.configuration or {}
    hyper = config.get("hyperparameters") or {}
    gpu = f"{str(config.get('gpu_tier', '?')).replace('_', '-')} {config.get('gpu_type', '')}".strip()
    parts = [f"{str(config.get('preset', '?')).title()} preset", gpu]
    return ", ".join(parts + [f"{label} {hyper[key]}" for key, label in HYPER_LABELS if key in hyper])


HYPER_LABELS = (("num_train_epochs", "epochs"), ("per_device_train_batch_size", "batch size"), ("r", "LoRA rank"))


def _number(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _hours(job: TrainingJob, at: datetime) -> str:
    start = job.queued_at or job.created_at
    return _hours_of(Decimal((at - start).total_seconds()))


def _hours_of(seconds: Decimal) -> str:
    return f"{max(Decimal(0), seconds) / 3600:.1f}"


def _h_m(span: timedelta) -> str:
    """8h 15m, or 9 min under an hour (the spec's two forms)."""
    minutes = max(0, round(span.total_seconds() / 60))
    return f"{minutes // 60}h {minutes % 60}m" if minutes >= 60 else f"{minutes} min"
