"""Retries (FR3.3.1), retries with a suggested fix (FR3.3.2) and manual resumes from a checkpoint
(FR3.2.2): what the new job's configuration is, and what changed. Pure: the application turns a
plan into a new job linked to the original that reserves budget anew."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.job_metadata import InvalidJobError
from domain.job_status import FailureType, JobStatus
from domain.presets import CONSERVATIVE, preset_named

RETRYABLE = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})
INTERRUPTION_LOOP = 3  # "if interrupted >3 times" (FR3.3.2); recovery_exhausted counts as a loop too
# What a user may change on a retry or resume (FR3.2.2's list), with the range each may take.
ADJUSTABLE = {
    "num_train_epochs": (1, 10), "per_device_train_batch_size": (1, 64),
    "learning_rate": (1e-6, 1e-2), "gradient_accumulation_steps": (1, 64),
}
SCHEDULES = ("linear", "cosine", "constant", "constant_with_warmup")


class RetryNotAllowedError(InvalidJobError):
    """The job cannot be retried or resumed as asked; the message says why."""


@dataclass(frozen=True)
class Change:
    setting: str
    before: Any
    after: Any

    def describe(self) -> str:
        return f"{self.setting}: {self.before} → {self.after}"


@dataclass(frozen=True)
class RetryPlan:
    """The new job's configuration and the changes from the original's."""

    preset: str
    hyperparameters: dict[str, Any]
    gpu_tier: str
    changes: tuple[Change, ...] = ()
    message: str = ""
    suggested: bool = False
    resume: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def check_retryable(job: Any, resume: bool = False) -> None:
    if job.status not in RETRYABLE and not (job.status == JobStatus.COMPLETED and not resume and quality_fix(job)):
        raise RetryNotAllowedError("Only failed or cancelled jobs, or a completed one whose quality validation "
                                   f"found EI regressions, can be retried (this one is {job.status.value})")
    if resume and job.latest_checkpoint is None:
        raise RetryNotAllowedError("This job saved no checkpoint: retry it from the start instead")


def same_configuration(job: Any) -> RetryPlan:
    """FR3.3.1: identical file, preset, hyperparameters and GPU tier."""
    config = job.configuration
    return RetryPlan(config["preset"], dict(config["hyperparameters"]), config["gpu_tier"],
                     message="Retry with the same configuration")


def oom_fixes(batch_size: int, rank: int) -> list[str]:
    """FR3.1.1's suggested fixes for an out-of-memory failure, in the spec's order."""
    return [f"Reduce batch_size to {max(1, batch_size // 2)} (recommended)",
            f"Switch to Conservative preset (r={CONSERVATIVE.rank} instead of r={rank})",
            "Reduce sequence length (if conversations are very long)"]


def quality_fix(job: Any) -> RetryPlan | None:
    """FR6.2.2's corrective actions for a completed job whose replies regressed (the complete sources of its
    evaluation's summary): half the learning rate, and more data for the personas the regressions share."""
    summary = (getattr(job, "evaluation", None) or {}).get("summary") or {}
    found = [s for s in summary.get("judged") or () if s.get("complete") and (s.get("regressions") or {}).get("count")]
    if job.status != JobStatus.COMPLETED or not job.configuration or not found:
        return None
    plan = same_configuration(job)
    rate = float(plan.hyperparameters.get("learning_rate") or 0)
    if rate / 2 < ADJUSTABLE["learning_rate"][0]:
        return None
    worst = max(found, key=lambda s: s["regressions"]["count"])
    personas = worst["regressions"].get("personas") or []
    data = (f" Add more training conversations for {', '.join(repr(p) for p in personas)} to the training file"
            " first: the retry trains on the same file." if personas else "")
    return adjusted(plan, {"learning_rate": rate / 2},
                    f"EI regressions ({worst['label']}): {worst['regressions']['headline']}. Retry with half the "
                    f"learning rate, {rate:g} → {rate / 2:g} (suggested)?{data}")


def suggested_fix(job: Any) -> RetryPlan | None:
    """FR3.3.2's suggestions for the job's failure (FR6.2.2's for a completed job's EI regressions), or None
    when there is none to make."""
    if job.status == JobStatus.COMPLETED:
        return quality_fix(job)
    plan = same_configuration(job)
    hyper = plan.hyperparameters
    failure = (job.failure or {}).get("type")
    if failure == FailureType.OOM:
        batch = int(hyper.get("per_device_train_batch_size", 1))  # unknown: as if already 1
        if batch > 1:
            return adjusted(plan, {"per_device_train_batch_size": batch // 2},
                            f"Your previous job failed with OOM error. Retry with batch_size={batch // 2} (suggested)?")
        return _with_preset(plan, CONSERVATIVE.name, "Your previous job failed with OOM error even at batch_size=1. "
                                                     "Retry with the Conservative preset (suggested)?")
    if failure == FailureType.TIMEOUT:
        epochs = int(hyper.get("num_train_epochs", 1))
        if epochs > 1:
            return adjusted(plan, {"num_train_epochs": epochs - 1},
                            f"Your previous job timed out. Retry with {epochs - 1} epochs (suggested)?")
        return None
    if (failure == FailureType.RECOVERY_EXHAUSTED or job.interruptions > INTERRUPTION_LOOP) \
            and plan.gpu_tier != "on_demand":
        return adjusted(plan, {"gpu_tier": "on_demand"},
                        f"Your previous job was interrupted {job.interruptions} times. Retry on an on-demand GPU "
                        "(higher cost, no interruptions)?")
    return None


def adjusted(plan: RetryPlan, changes: dict[str, Any], message: str = "") -> RetryPlan:
    """The plan with user (or suggested) changes applied, each checked against its range."""
    hyper, tier, recorded = dict(plan.hyperparameters), plan.gpu_tier, list(plan.changes)
    for setting, value in changes.items():
        if value is None:
            continue
        before: Any  # as Change.before: a tier, a schedule name or a number
        if setting == "gpu_tier":
            if value not in ("spot", "on_demand"):
                raise RetryNotAllowedError("gpu_tier must be spot or on_demand")
            before, tier = tier, value
        elif setting == "lr_scheduler_type":
            if value not in SCHEDULES:
                raise RetryNotAllowedError(f"lr_scheduler_type must be one of {', '.join(SCHEDULES)}")
            before, hyper[setting] = hyper.get(setting), value
        elif setting in ADJUSTABLE:
            low, high = ADJUSTABLE[setting]
            number = float(value) if setting == "learning_rate" else int(value)
            if not low <= number <= high:
                raise RetryNotAllowedError(f"{setting} must be between {low} and {high}")
            before, hyper[setting] = hyper.get(setting), number
        else:
            raise RetryNotAllowedError(f"{setting} cannot be changed on a retry")
        if before != value:
            recorded.append(Change(setting, before, value))
    return RetryPlan(plan.preset, hyper, tier, tuple(recorded), message or plan.message,
                     plan.suggested or bool(message), plan.resume, plan.extra)


def _with_preset(plan: RetryPlan, name: str, message: str) -> RetryPlan:
    preset = preset_named(name)
    return RetryPlan(preset.name, preset.as_config(), plan.gpu_tier,
                     (*plan.changes, Change("preset", plan.preset, preset.name)), message, True)


def remaining_fraction(job: Any) -> float:
    """How much of the original's training a resume still has to do (for its estimate)."""
    if not job.total_steps:
        return 1.0
    return max(0.05, 1.0 - job.last_checkpoint_step / job.total_steps)
