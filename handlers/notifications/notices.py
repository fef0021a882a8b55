"""What each event says, whatever the channel: the spec's texts (FR8.2.1, FR3.2.1, FR3.1.3, FR7.2.2,
FR1.2.2), the facts behind them and the links. Pure: the aggregate is passed in as it was right
after the event, so a notice reads the same however late it is sent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.aggregates.budget import Budget
from domain.aggregates.training_job import TrainingJob
from domain.job_status import FailureType
from domain.money import usd
from domain.retries import suggested_fix

Facts = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Notice:
    """`headline` is the one-line message (Slack, banners, the email's first line); `name`, when
    set, is the part Slack shows in bold. The first action is the main link."""

    kind: str
    subject: str
    headline: str
    name: str = ""
    facts: Facts = ()
    sections: tuple[tuple[str, tuple[str, ...]], ...] = ()
    actions: tuple[tuple[str, str], ...] = ()
    job_id: UUID | None = None

    @property
    def link(self) -> tuple[str, str] | None:
        return self.actions[0] if self.actions else None


# --- training jobs (FR8.2.1) ------------------------------------------------------------------

def job_kind(event: Any) -> str | None:
    """The preference key of a job event, or None when no one is told about it."""
    if isinstance(event, TrainingJob.Failed):
        return "recovery_exhausted" if event.failure_type == FailureType.RECOVERY_EXHAUSTED else "failed"
    return JOB_KINDS.get(type(event))


def job_notice(event: Any, job: TrainingJob, base_url: str) -> Notice:
    url = f"{base_url}/jobs/{job.id}"
    build: Callable[..., Notice] = BUILDERS[type(event)]
    return build(event, job, url)


def _completed(event: TrainingJob.Completed, job: TrainingJob, url: str) -> Notice:
    hours, cost = _hours(job, event.at), usd(job.cost(event.at).total_cost)
    loss, ppl = _number(event.metrics, "final_loss"), _number(event.metrics, "perplexity_improvement_percent")
    metrics = [f"Training loss {loss:.3f}"] if loss is not None else []
    metrics += [f"Perplexity improvement {ppl:.0f}%"] if ppl is not None else []
    detail = f"{hours}hrs, {cost}" + (f", {ppl:.0f}% perplexity improvement" if ppl is not None else "")
    return Notice(
        "completed", f"✓ Training Job Completed: {job.name}", f"✓ Training completed: {job.name} ({detail})",
        job.name, (("Job", job.name), ("Configuration", _configuration(job)), ("Duration", f"{hours} hours"),
                   ("Final cost", cost), ("Final metrics", ", ".join(metrics) or "not reported")),
        actions=(("View Job Details", url),), job_id=job.id)


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


def _provisioning_timed_out(event: TrainingJob.ProvisioningTimedOut, job: TrainingJob, url: str) -> Notice:
    return Notice(  # FR3.1.3's text, carried by the event
        "provisioning_timeout", f"⚠ No GPU available: {job.name}", f"⚠ {job.name}: {event.message}", job.name,
        (("Job", job.name), ("Waited", f"{_hours_of(event.waited_seconds)} hours")),
        actions=(("Switch to on-demand or cancel", url),), job_id=job.id)


BUILDERS: dict[type, Callable[..., Notice]] = {
    TrainingJob.Completed: _completed, TrainingJob.Failed: _failed, TrainingJob.Cancelled: _cancelled,
    TrainingJob.Interrupted: _interrupted, TrainingJob.ProvisioningTimedOut: _provisioning_timed_out,
}
JOB_KINDS: dict[type, str] = {
    TrainingJob.Completed: "completed", TrainingJob.Cancelled: "cancelled",
    TrainingJob.Interrupted: "interrupted", TrainingJob.ProvisioningTimedOut: "provisioning_timeout",
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


# --- budgets (FR7.2.2, FR1.2.2) ---------------------------------------------------------------

def threshold_notice(event: Budget.ThresholdCrossed, month: str, base_url: str) -> Notice:
    spent, limit, percent = usd(event.spent), usd(event.limit), event.percent
    headline = {
        90: f"⚠ Critical Budget Alert: 90% of monthly budget used ({spent} of {limit}). Only "
            f"{usd(event.limit - event.spent)} remaining. Consider prioritizing essential training runs.",
        100: f"Monthly training budget exceeded ({spent} of {limit})",
    }.get(percent, f"You've used {percent}% of monthly training budget ({spent} of {limit})")
    used = event.spent * 100 / event.limit if event.limit else Decimal(100)
    return Notice(
        f"budget_{percent}", f"⚠ Budget Alert: {percent}% of the {month} training budget"
        + (" exceeded" if percent >= 100 else " used"), headline,
        facts=(("Month", month), ("Current spending", f"{spent} / {limit} ({used:.0f}%)"),
               ("Remaining budget", usd(event.limit - event.spent))),
        actions=(("View Budget Dashboard", f"{base_url}/api/budgets/{month}"),))


def limit_request_notice(event: Budget.LimitIncreaseRequested, budget: Budget, approve_deny: dict[str, str] | None,
                         expires: datetime) -> Notice:
    """One manager's copy: its links are signed for that manager (None: no links can be signed)."""
    used = budget.charged * 100 / budget.limit if budget.limit else Decimal(100)
    facts: Facts = (("Requested by", event.requested_by), ("Current limit", usd(budget.limit)),
                    ("New monthly limit", usd(event.new_limit)),
                    ("Current spend", f"{usd(budget.charged)} of {usd(budget.limit)} ({used:.0f}%)"),
                    ("Projected spend (incl. active jobs)", usd(budget.charged + budget.reserved)))
    if approve_deny:
        facts += (("Links valid until", f"{expires.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC, once"),)
    return Notice(
        "limit_request",
        f"Budget increase request: {usd(event.new_limit)} for {budget.month} from {event.requested_by}",
        f"{event.requested_by} asks to raise the {budget.month} training budget from {usd(budget.limit)} "
        f"to {usd(event.new_limit)}.", facts=facts, sections=(("Justification", (event.justification,)),),
        actions=(("Approve", approve_deny["approve"]), ("Deny", approve_deny["deny"])) if approve_deny else ())


def limit_decided_notice(event: Budget.LimitIncreaseDecided, budget: Budget, base_url: str) -> Notice:
    new_limit = budget.requests[str(event.request_id)]["new_limit"]
    headline = (f"Budget increase approved, new limit: {usd(new_limit)} effective immediately" if event.approved
                else f"Budget increase to {usd(new_limit)} denied: the {budget.month} limit stays {usd(budget.limit)}")
    return Notice(
        "limit_decided", headline, headline,
        facts=(("Month", budget.month), ("Decided by", event.decided_by), ("Reason", event.reason or "none given")),
        actions=(("View Budget Dashboard", f"{base_url}/api/budgets/{budget.month}"),))
