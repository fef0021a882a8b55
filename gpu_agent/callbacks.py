"""Trainer callbacks: telemetry per step/eval/epoch, checkpoint upload, stop on SIGTERM.
Steering goes only through TrainerControl (should_save, should_training_stop)."""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from gpu_agent.batching import TokenCounter
from gpu_agent.checkpoints import CheckpointUploader
from gpu_agent.publisher import Publisher
from gpu_agent.signals import SigtermWatcher


class TelemetryCallback(TrainerCallback):
    """One `step` message per optimizer step (loss, learning rate, useful tokens per second, the share of
    processed tokens that were real rather than padding, the step's wall time, GPU memory); `eval` after each
    evaluation; `epoch` at epoch ends."""

    def __init__(self, publisher: Publisher, counter: TokenCounter | None = None) -> None:
        self.publisher = publisher
        self.counter = counter or TokenCounter()
        self.last_time = time.monotonic()
        self.last_counts = (0, 0)

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        self.last_counts = (self.counter.useful, self.counter.processed)

    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                      **kwargs: Any) -> None:
        # The step's own time: an evaluation or a checkpoint between two steps is not training time.
        self.last_time = time.monotonic()

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        logs = logs or {}
        if "loss" not in logs:
            return
        now, counts = time.monotonic(), (self.counter.useful, self.counter.processed)
        elapsed = max(now - self.last_time, 1e-9)
        useful, processed = counts[0] - self.last_counts[0], counts[1] - self.last_counts[1]
        self.last_time, self.last_counts = now, counts
        self.publisher.emit("step", {
            "step": state.global_step, "total_steps": state.max_steps, "epoch": state.epoch,
            "loss": logs.get("loss"), "learning_rate": logs.get("learning_rate"),
            "grad_norm": _number(logs.get("grad_norm")), "tokens_per_s": round(useful / elapsed, 1),
            "useful_tokens": useful, "processed_tokens": processed,
            "token_efficiency": round(useful / processed, 4) if processed else None,
            "step_time_s": round(elapsed, 4), **gpu_figures()})

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    metrics: dict[str, float] | None = None, **kwargs: Any) -> None:
        loss = (metrics or {}).get("eval_loss")
        if loss is not None:
            self.publisher.emit("eval", {"step": state.global_step, "epoch": state.epoch, "eval_loss": loss,
                                         "perplexity": math.exp(min(loss, 50))})

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> None:
        epoch = state.epoch or 0
        if abs(epoch - round(epoch)) < 1e-6:  # not when training stopped mid-epoch
            self.publisher.emit("epoch", {"epoch": round(epoch), "step": state.global_step})


class CheckpointCallback(TrainerCallback):
    """Hands every checkpoint Trainer writes to the background uploader."""

    def __init__(self, uploader: CheckpointUploader) -> None:
        self.uploader = uploader

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self.uploader.submit(state.global_step, os.path.join(args.output_dir, f"checkpoint-{state.global_step}"))


class StopCallback(TrainerCallback):
    """At the step boundary after SIGTERM: save a checkpoint of that step, then stop. Also the
    test-only faults (`oom_at_step:N`, `sigterm_at_step:N`, `sigkill_at_step:N` — once the checkpoints
    already written are stored —, `oom_above_batch:N`: out of memory at the first step when the batch
    size is above N, as a real OOM would be, so a retry with a smaller batch gets through, and
    `slow_steps:MS`: each step takes MS milliseconds longer, so that a tiny model's run can be watched
    in a browser).

    A save due on the last step of an epoch (periodic or emergency) is moved after the epoch-end
    evaluation: creating the evaluation's data loader draws from the global RNG, so a checkpoint
    taken before it would resume with another RNG state than the uninterrupted run had."""

    def __init__(self, watcher: SigtermWatcher, fault: str = "", stored: Callable[[], None] = lambda: None) -> None:
        self.watcher = watcher
        self.stored = stored  # waits until the checkpoints written so far are in the object store
        self.interrupted_at: int | None = None
        self.deferred_save = False
        self.stopped_mid_epoch = False
        kind, _, step = fault.partition(":")
        self.fault = (kind, int(step)) if step.isdigit() else None

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> None:
        if self.fault and self.fault[0] == "slow_steps":
            time.sleep(self.fault[1] / 1000)
        elif self.fault and self.fault[0] == "oom_above_batch":
            if state.global_step == 1 and args.per_device_train_batch_size > self.fault[1]:
                self.inject("oom_at_step")
        elif self.fault and state.global_step == self.fault[1]:
            self.inject(self.fault[0])
        epoch_end = abs((state.epoch or 0) - round(state.epoch or 0)) < 1e-9 and args.eval_strategy == "epoch"
        if self.watcher.requested.is_set() and self.interrupted_at is None:
            self.interrupted_at = state.global_step
            self.stopped_mid_epoch = not epoch_end
            control.should_save = True
            control.should_training_stop = not epoch_end  # at an epoch's end: after its evaluation
        if epoch_end and control.should_save:
            control.should_save, self.deferred_save = False, True

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                     **kwargs: Any) -> None:
        if self.deferred_save:
            control.should_save, self.deferred_save = True, False
        if self.interrupted_at is not None:
            control.should_training_stop = True
            if self.stopped_mid_epoch:  # no evaluation of a partial epoch inside the 5 s window
                control.should_evaluate = False

    def inject(self, kind: str) -> None:
        if kind == "oom_at_step":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected fault)")
        if kind == "sigkill_at_step":
            # Once the checkpoints written so far are stored, so a test knows the newest one the recovery must
            # find; their telemetry may still be unsent, as when a real pod dies just after an upload (the
            # recovery takes the object store's word: handlers/provisioning.adopt_stored_checkpoint).
            self.stored()
            os.kill(os.getpid(), signal.SIGKILL)
        if kind == "sigterm_at_step":
            os.kill(os.getpid(), signal.SIGTERM)
            self.watcher.requested.wait(2)


def gpu_figures() -> dict[str, float]:
    """The card's memory in use (all processes, the caching allocator's reserve included, as nvidia-smi shows it),
    the peak this process allocated since it started, and the utilisation when pynvml is there."""
    if not torch.cuda.is_available():
        return {}
    free, total = torch.cuda.mem_get_info()
    figures = {"gpu_memory_used_gb": round((total - free) / 2**30, 2), "gpu_memory_total_gb": round(total / 2**30, 2),
               "gpu_peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2)}
    try:
        figures["gpu_utilization"] = float(torch.cuda.utilization())
    except Exception:  # noqa: BLE001 - needs pynvml; memory figures are enough without it
        pass
    return figures


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
