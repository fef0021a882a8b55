"""Finalization: the adapter (safetensors + adapter_config.json) with training_summary.json,
perplexity of the base model and of base + adapter on the validation split (FR6.1.1), uploaded."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from transformers import Trainer

from domain.values import ArtifactRef
from gpu_agent.checkpoints import pack
from gpu_agent.publisher import Publisher
from infra.bus import job_bucket
from infra.objectstore import ObjectStore


def validation_losses(trainer: Trainer) -> tuple[float | None, float | None]:
    """The base model's and the trained model's loss on the validation split. Only the trained
    model's evaluation is an `eval` point of the job's series; the baseline's is evaluated under
    another metric prefix, which the telemetry callback does not report (it belongs in the
    completion's own fields, never in the trained series)."""
    if trainer.eval_dataset is None:
        return None, None
    tuned = trainer.evaluate()["eval_loss"]
    with trainer.model.disable_adapter():
        base = trainer.evaluate(metric_key_prefix="baseline")["baseline_loss"]
    return base, tuned


def perplexity(loss: float | None) -> float | None:
    return math.exp(min(loss, 50)) if loss is not None else None


def finalize(trainer: Trainer, publisher: Publisher, objects: ObjectStore, job_id: str, attempt: int,
             work_dir: Path, extra: dict[str, Any]) -> tuple[ArtifactRef, dict[str, Any]]:
    adapter_dir = work_dir / "adapter"
    trainer.model.save_pretrained(adapter_dir)
    if trainer.processing_class is not None:  # the tokenizer travels with the adapter (deployment package)
        trainer.processing_class.save_pretrained(adapter_dir)
    base_loss, tuned_loss = validation_losses(trainer)
    base_ppl, tuned_ppl = perplexity(base_loss), perplexity(tuned_loss)
    history = [e for e in trainer.state.log_history if "loss" in e]
    metrics = {
        "final_loss": history[-1]["loss"] if history else None, "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch, "base_eval_loss": base_loss, "final_eval_loss": tuned_loss,
        "base_perplexity": base_ppl, "adapter_perplexity": tuned_ppl,
        "perplexity_improvement_percent": (base_ppl - tuned_ppl) / base_ppl * 100 if base_ppl and tuned_ppl else None,
    }
    summary = {"job_id": job_id, "attempt": attempt, **metrics, **extra}
    (adapter_dir / "training_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    archive = pack(adapter_dir, work_dir / "adapter.tar")
    name = f"{job_id}/adapter-attempt-{attempt}.tar"
    ref = publisher.call_retrying(lambda: objects.put_file(job_bucket(job_id), name, archive), f"upload of {name}")
    return ref, metrics
