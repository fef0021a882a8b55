"""The training stage: transformers Trainer over the tokenized split, batched by length, resumable at the exact step."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler
from transformers import PrinterCallback, Trainer, TrainerState, TrainingArguments

from gpu_agent.batching import LengthGroupedSampler, PaddingCollator, TokenCounter, drop_counts
from gpu_agent.config import JobSpec
from gpu_agent.settings import CPU, RunSettings, training_argument_values
from gpu_agent.tokens import Tokenized


class TokenizedExamples(Dataset):
    def __init__(self, rows: Sequence[Tokenized], seq_len: int) -> None:
        self.items = [{"input_ids": row.input_ids[:seq_len], "labels": row.labels[:seq_len]} for row in rows]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.items[index]

    @property
    def lengths(self) -> list[int]:
        return [len(item["input_ids"]) for item in self.items]

    def longest_first(self) -> TokenizedExamples:
        """The same rows sorted by length (evaluation: its batches then hold rows of like length)."""
        ordered = TokenizedExamples([], 0)
        ordered.items = sorted(self.items, key=lambda item: -len(item["input_ids"]))
        return ordered


class AgentTrainer(Trainer):
    """Trainer with the length-grouped sampler and the collator's token counts (taken off each batch, added to
    `counter` and to `state.num_input_tokens_seen`: the real tokens trained on, padding excluded)."""

    def __init__(self, *args: Any, counter: TokenCounter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counter = counter
        self.parameter_count: int | None = None

    def floating_point_ops(self, inputs: dict[str, Any]) -> int:
        """Trainer's estimate (6 × tokens × parameters) with the parameters counted once: Trainer walks every
        module to count them at each micro-batch (6 ms a step on the tiny model, more with 80 layers)."""
        if self.parameter_count is None:
            self.parameter_count = int(self.model.num_parameters(exclude_embeddings=True))
        return 6 * inputs["input_ids"].numel() * self.parameter_count

    def create_optimizer(self, model: Any = None) -> torch.optim.Optimizer:
        """Trainer's optimizer; and the model's `zero_grad` clears the trainable (LoRA) parameters only, through
        the optimizer, instead of visiting every frozen base weight after each step (the frozen ones never
        have gradients)."""
        optimizer = super().create_optimizer(model)
        self.model.zero_grad = lambda set_to_none=True: optimizer.zero_grad(set_to_none=set_to_none)
        return optimizer

    def _get_train_sampler(self, train_dataset: Dataset | None = None) -> Sampler | None:
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        return LengthGroupedSampler(dataset.lengths, self.args.per_device_train_batch_size, self.args.seed)

    def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> torch.Tensor:
        useful = self.counter.useful
        inputs = self.counter.add(inputs)
        self.state.num_input_tokens_seen += self.counter.useful - useful
        return super().training_step(model, inputs, num_items_in_batch)

    def prediction_step(self, model: Any, inputs: dict[str, Any], prediction_loss_only: bool,
                        ignore_keys: list[str] | None = None) -> Any:
        return super().prediction_step(model, drop_counts(inputs), prediction_loss_only, ignore_keys)


def arguments(spec: JobSpec, output_dir: Path, run: RunSettings, device: str = CPU,
              speedups: tuple[str, ...] = (), evaluate: bool = True) -> TrainingArguments:
    return TrainingArguments(**training_argument_values(spec, output_dir, device, run, speedups, evaluate))


@dataclass
class TrainingRun:
    trainer: AgentTrainer
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
            return
        # Stopped after the last step (in finalization or evaluation): no step to run, but the model is
        # the trained one only once the checkpoint's adapter and the trainer's state are loaded.
        assert self.resume_dir is not None
        self.trainer._load_from_checkpoint(str(self.resume_dir))  # noqa: SLF001 - Trainer's own loader
        self.trainer.state = TrainerState.load_from_json(str(self.resume_dir / "trainer_state.json"))


def build(spec: JobSpec, model: Any, tokenizer: Any, train: Sequence[Tokenized], validation: Sequence[Tokenized],
          output_dir: Path, callbacks: list[Any], resume_dir: Path | None, run: RunSettings, device: str = CPU,
          speedups: tuple[str, ...] = (), counter: TokenCounter | None = None) -> TrainingRun:
    trainer = AgentTrainer(
        model=model, args=arguments(spec, output_dir, run, device, speedups, evaluate=bool(validation)),
        train_dataset=TokenizedExamples(train, run.seq_len),
        eval_dataset=TokenizedExamples(validation, run.seq_len).longest_first() if validation else None,
        data_collator=PaddingCollator(tokenizer.pad_token_id), processing_class=tokenizer,
        callbacks=callbacks, counter=counter or TokenCounter(),
    )
    trainer.remove_callback(PrinterCallback)  # it prints every log dict; telemetry carries them
    return TrainingRun(trainer, resume_dir)
