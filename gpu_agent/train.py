"""The training stage: transformers Trainer over the tokenized split, resumable at the exact step."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from transformers import DataCollatorForLanguageModeling, PrinterCallback, Trainer, TrainingArguments

from gpu_agent.config import JobSpec
from gpu_agent.data import Example


class TokenizedExamples(Dataset):
    def __init__(self, tokenizer: Any, examples: list[Example], max_length: int) -> None:
        self.items = [{"input_ids": tokenizer.apply_chat_template(e.messages, tokenize=True, truncation=True,
                                                                  max_length=max_length, return_dict=False)}
                      for e in examples]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.items[index]


def arguments(spec: JobSpec, output_dir: Path) -> TrainingArguments:
    hyper = spec.hyperparameters
    return TrainingArguments(
        output_dir=str(output_dir), seed=spec.seed, data_seed=spec.seed,
        per_device_train_batch_size=int(hyper["per_device_train_batch_size"]),
        per_device_eval_batch_size=int(hyper["per_device_train_batch_size"]),
        gradient_accumulation_steps=int(hyper["gradient_accumulation_steps"]),
        num_train_epochs=float(hyper["num_train_epochs"]), max_steps=spec.max_steps,
        learning_rate=float(hyper["learning_rate"]), lr_scheduler_type=hyper.get("lr_scheduler_type", "cosine"),
        # transformers 5 reads a float below 1 as a ratio of the total steps (warmup_ratio is gone).
        warmup_steps=float(hyper.get("warmup_ratio", 0.0)),
        optim="adamw_torch",  # paged 8-bit optimizers crash on resume (brief §3)
        logging_steps=1, eval_strategy="epoch", save_strategy="steps", save_steps=spec.checkpoint_every,
        save_total_limit=2, report_to=[], disable_tqdm=True, dataloader_num_workers=0,
        include_num_input_tokens_seen=True, use_cpu=not torch.cuda.is_available(),
    )


@dataclass
class TrainingRun:
    trainer: Trainer
    resume_dir: Path | None

    def already_finished(self) -> bool:
        """transformers 5.24 runs one extra step when resumed from a checkpoint already at max_steps."""
        if self.resume_dir is None:
            return False
        state = json.loads((self.resume_dir / "trainer_state.json").read_text())
        return state["global_step"] >= state["max_steps"]

    def train(self) -> None:
        if not self.already_finished():
            self.trainer.train(resume_from_checkpoint=str(self.resume_dir) if self.resume_dir else None)


def build(spec: JobSpec, model: Any, tokenizer: Any, train: list[Example], validation: list[Example],
          output_dir: Path, callbacks: list[Any], resume_dir: Path | None) -> TrainingRun:
    trainer = Trainer(
        model=model, args=arguments(spec, output_dir),
        train_dataset=TokenizedExamples(tokenizer, train, spec.max_seq_length),
        eval_dataset=TokenizedExamples(tokenizer, validation, spec.max_seq_length) if validation else None,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False), processing_class=tokenizer,
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # it prints every log dict; telemetry carries them
    return TrainingRun(trainer, resume_dir)
