"""The settings the agent trains with, per device: bf16, FlashAttention-2 or SDPA and a fused optimizer on CUDA,
fp32 on the CPU; gradient checkpointing (non-reentrant) and the micro-batch as the memory guard decides.

Pure functions of the spec, the device name and the guard's settings, so the CUDA settings are checked by unit
tests on a machine without a GPU."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gpu_agent.config import JobSpec

CUDA, CPU = "cuda", "cpu"


@dataclass(frozen=True)
class RunSettings:
    """What the memory guard decided: the micro-batch and accumulation (their product is the preset's effective
    batch), gradient checkpointing, and the longest row."""

    micro_batch: int
    gradient_accumulation_steps: int
    gradient_checkpointing: bool
    seq_len: int

    @classmethod
    def requested(cls, spec: JobSpec, seq_len: int) -> RunSettings:
        hyper = spec.hyperparameters
        return cls(int(hyper["per_device_train_batch_size"]), int(hyper["gradient_accumulation_steps"]), False,
                   seq_len)


def device_type() -> str:
    return CUDA if torch.cuda.is_available() else CPU


def flash_attention_installed() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def attention_implementation(device: str, flash_attention: bool | None = None) -> str:
    """FlashAttention-2 on CUDA when the flash_attn package is there, else PyTorch's SDPA (CPU included)."""
    flash = flash_attention_installed() if flash_attention is None else flash_attention
    return "flash_attention_2" if device == CUDA and flash else "sdpa"


def compute_dtype(device: str) -> torch.dtype:
    return torch.bfloat16 if device == CUDA else torch.float32


def liger_installed() -> bool:
    return importlib.util.find_spec("liger_kernel") is not None


def active_speedups(spec: JobSpec, device: str) -> tuple[tuple[str, ...], dict[str, str]]:
    """(the speed-ups used, why each other asked-for one is not): Liger's Triton kernels need CUDA and the package."""
    used, skipped = [], {}
    for name in spec.speedups:
        if name == "liger" and device != CUDA:
            skipped[name] = "Liger's Triton kernels run on CUDA only"
        elif name == "liger" and not liger_installed():
            skipped[name] = "the liger-kernel package is not installed"
        else:
            used.append(name)
    return tuple(used), skipped


def training_argument_values(spec: JobSpec, output_dir: Path, device: str, run: RunSettings,
                             speedups: tuple[str, ...] = (), evaluate: bool = True) -> dict[str, Any]:
    """The keyword arguments of the Trainer's TrainingArguments. On CUDA: bf16 autocast, the fused AdamW and
    pinned memory; the length-grouped sampler is the agent's own (gpu_agent/batching.py), not group_by_length's,
    whose sampler draws from the global RNG."""
    hyper, cuda = spec.hyperparameters, device == CUDA
    return dict(
        output_dir=str(output_dir), seed=spec.seed, data_seed=spec.seed,
        per_device_train_batch_size=run.micro_batch, per_device_eval_batch_size=run.micro_batch,
        gradient_accumulation_steps=run.gradient_accumulation_steps,
        num_train_epochs=float(hyper["num_train_epochs"]), max_steps=spec.max_steps,
        learning_rate=float(hyper["learning_rate"]), lr_scheduler_type=hyper.get("lr_scheduler_type", "cosine"),
        # transformers 5 reads a float below 1 as a ratio of the total steps (warmup_ratio is gone).
        warmup_steps=float(hyper.get("warmup_ratio", 0.0)),
        # Paged 8-bit optimizers crash on resume (brief §3); the fused AdamW keeps the same state and resumes exactly.
        optim="adamw_torch_fused" if cuda else "adamw_torch",
        bf16=cuda, use_cpu=not cuda,
        # transformers 5's names for gradient checkpointing (gradient_checkpointing* are deprecated aliases);
        # non-reentrant: works with frozen inputs (no enable_input_require_grads) and keeps dropout's RNG exact
        activation_checkpointing=run.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if run.gradient_checkpointing else None,
        use_liger_kernel="liger" in speedups,
        logging_steps=1, eval_strategy="epoch" if evaluate else "no", save_strategy="steps",
        save_steps=spec.checkpoint_every,
        save_total_limit=2, report_to=[], disable_tqdm=True, dataloader_num_workers=0, dataloader_pin_memory=cuda,
        remove_unused_columns=False,
        # Counting tokens in Trainer synchronises with the GPU at every micro-batch; the collator counts them.
        include_num_input_tokens_seen="no",
    )


def model_load_values(spec: JobSpec, device: str, attention: str) -> dict[str, Any]:
    """from_pretrained's keyword arguments for a hub model: the whole model on the one GPU (never offloaded to
    the CPU, which would be silent and slow), bf16 compute, 4-bit NF4 with double quantization for QLoRA."""
    from transformers import BitsAndBytesConfig

    dtype = compute_dtype(device)
    values: dict[str, Any] = {"dtype": dtype, "attn_implementation": attention,
                              "device_map": {"": 0} if device == CUDA else {"": CPU}}
    if spec.qlora:
        values["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype)
    return values
