"""Finalization: the adapter (safetensors + adapter_config.json) with training_summary.json,
perplexity of the base model and of base + adapter on the validation split (FR6.1.1), uploaded."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from transformers import Trainer

from domain.values import ArtifactRef
from gpu_agent.checkpoints import pack
from gpu_agent.model import tiny_base_dir
from gpu_agent.publisher import Publisher
from infra.bus import job_bucket
from infra.objectstore import ObjectStore

BUNDLED_BASE = "base_model"


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


def bundle_tiny_base(adapter_dir: Path, tiny_base: Path) -> None:
    """A base built from a config has no hub id to name: its weights travel with the adapter in
    `base_model/`, which adapter_config.json then names (a package always names or holds its base)."""
    if not tiny_base.is_dir():
        return
    shutil.copytree(tiny_base, adapter_dir / BUNDLED_BASE, dirs_exist_ok=True)
    config_file = adapter_dir / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = BUNDLED_BASE
    config_file.write_text(json.dumps(config, indent=2))


def finalize(trainer: Trainer, publisher: Publisher, objects: ObjectStore, job_id: str, attempt: int,
             work_dir: Path, extra: dict[str, Any]) -> tuple[ArtifactRef, dict[str, Any]]:
    adapter_dir = work_dir / "adapter"
    trainer.model.save_pretrained(adapter_dir)
    if trainer.processing_class is not None:  # the tokenizer travels with the adapter (deployment package)
        trainer.processing_class.save_pretrained(adapter_dir)
    bundle_tiny_base(adapter_dir, tiny_base_dir(work_dir))
    base_loss, tuned_loss = validation_losses(trainer)
    base_ppl, tuned_ppl = perplexity(base_loss), perplexity(tuned_loss)
    history = [e for e in trainer.state.log_history if "loss" in e]
    metrics = {
        "final_loss": history[-1]["loss"] if history else None, "steps": trainer.state.global_step,
        "trained_tokens": int(trainer.state.num_input_tokens_seen or 0),  # every epoch's tokens, as OpenAI counts
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
