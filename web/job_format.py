"""How the jobs list, its CSV export and the queue tab write a job's fields: labels for statuses,
presets, GPU tiers, failures and cancel reasons, amounts, durations and times."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from domain.job_status import CancelReason
from domain.money import usd
from domain.presets import PRESETS

GPU_TIERS = {"spot": "Spot", "on_demand": "On-demand"}
PRESET_TITLES = {p.name: p.title for p in PRESETS}
STATUS_LABELS = {
    "pending_configuration": "Pending configuration", "configured": "Configured", "queued": "Queued",
    "provisioning": "Provisioning", "queued_waiting_for_gpu": "Waiting for GPU", "preprocessing": "Preprocessing",
    "downloading_model": "Downloading model", "model_loading": "Loading model", "training": "Training",
    "finalization": "Finalizing", "evaluating": "Evaluating",
    "completed": "Completed", "interrupted": "Interrupted", "recovering": "Recovering", "failed": "Failed",
    "cancelled": "Cancelled", "pausing": "Pausing", "paused": "Paused"}
CANCEL_REASONS = {CancelReason.LOSS_NOT_DECREASING: "Loss not decreasing", CancelReason.TOO_EXPENSIVE: "Too expensive",
                  CancelReason.WRONG_CONFIGURATION: "Wrong configuration", CancelReason.TESTING: "Testing",
                  CancelReason.OTHER: "Other"}  # FR2.2.1's dropdown
FAILURES = {"oom": "Out of memory", "dataset_format": "Dataset format error", "provisioning": "GPU provisioning failed",
            "timeout": "Timed out", "recovery_exhausted": "Recovery attempts exhausted", "unknown": "Error"}


class Fmt:
    """The formatting helpers the templates call (as `fmt`)."""

    @staticmethod
    def usd(amount: Any) -> str:
        return "" if amount is None else usd(Decimal(str(amount)))

    @staticmethod
    def duration(seconds: Any) -> str:
        if seconds is None:
            return ""
        minutes = int(Decimal(str(seconds)) // 60)
        hours, minutes = divmod(max(minutes, 0), 60)
        return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"

    @staticmethod
    def when(moment: datetime | None) -> str:
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M") if moment else ""

    @staticmethod
    def status(value: str) -> str:
        return STATUS_LABELS.get(value, value.replace("_", " ").capitalize())

    @staticmethod
    def preset(value: str | None) -> str:
        return PRESET_TITLES.get(value or "", value or "")

    @staticmethod
    def gpu(value: str | None) -> str:
        return GPU_TIERS.get(value or "", value or "")

    @staticmethod
    def failure(value: str | None) -> str:
        return FAILURES.get(value or "", (value or "").replace("_", " ").capitalize())

    @staticmethod
    def percent(value: Any) -> str:
        return "" if value is None else f"{Decimal(str(value)):.0f}%"
