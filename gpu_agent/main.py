"""`python -m gpu_agent`: preprocessing → (the download →) model loading → training → finalization, on TELEMETRY.

Exit codes: 0 completed, 1 failed (a `failed` message says why), 2 bad configuration,
143 interrupted by SIGTERM (an `interrupted` message carries the checkpoint to resume from)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from domain.retries import oom_fixes
from gpu_agent.config import AgentConfig, ConfigError, load_config
from gpu_agent.signals import SigtermWatcher

log = logging.getLogger("gpu_agent")


def main() -> int:
    watcher = SigtermWatcher().install()  # before torch starts any thread
    logging.basicConfig(level=logging.INFO, format="%(asctime)s gpu_agent %(levelname)s %(message)s")
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"gpu_agent: error: {exc}", file=sys.stderr)
        report_bad_config(str(exc))
        return 2
    if threads := os.environ.get("AGENT_THREADS"):
        import torch

        torch.set_num_threads(int(threads))
    return Agent(config, watcher).run()


def report_bad_config(message: str) -> None:
    """A `failed` message when the job and NATS are known, so the control plane learns why."""
    job_id, url = os.environ.get("PIPELINE_JOB_ID"), os.environ.get("NATS_URL")
    if not job_id or not url:
        return
    from gpu_agent.config import JobSpec, nats_options
    from gpu_agent.publisher import Publisher

    spec = JobSpec(training_file=None, hyperparameters={})  # type: ignore[arg-type]
    attempt = int(os.environ.get("PIPELINE_ATTEMPT", "1")) if os.environ.get("PIPELINE_ATTEMPT", "1").isdigit() else 1
    try:
        options = nats_options(os.environ, url)
    except ConfigError:
        return  # plain text to another machine, or a bad CA: not even this message goes out
    publisher = Publisher(AgentConfig(job_id, attempt, url, Path("/tmp"), spec, nats_options=options))
    try:
        publisher.start(connect_timeout_s=3)
        publisher.emit("failed", {"failure_type": "unknown", "message": message, "stage": "configuration"})
        publisher.flush(5)
    except Exception:  # noqa: BLE001 - best effort: the exit code and stderr say it too
        pass
    finally:
        publisher.close()


class Agent:
    def __init__(self, config: AgentConfig, watcher: SigtermWatcher) -> None:
        from gpu_agent.publisher import Publisher

        self.config, self.watcher = config, watcher
        self.publisher = Publisher(config)
        self.stage = "starting"
        self.step = 0
        self.guarded: Any = None  # the memory guard's decision, once made
        config.work_dir.mkdir(parents=True, exist_ok=True)

    def run(self) -> int:
        from domain.training_file import DatasetFormatError

        self.publisher.start()
        self.watcher.on_timeout = self.interrupted_without_checkpoint
        threading.Thread(target=self.heartbeat, name="heartbeat", daemon=True).start()
        try:
            return self.stages()
        except DatasetFormatError as exc:
            return self.fail("dataset_format", str(exc), {"problem": exc.report.first_problem.message,
                                                            "place": exc.report.first_problem.place})
        except Exception as exc:  # noqa: BLE001 - every crash is reported once, typed
            if is_oom(exc):
                return self.fail("oom", str(exc), self.oom_details())
            log.exception("training failed")
            return self.fail("unknown", f"{type(exc).__name__}: {exc}", {})
        finally:
            self.watcher.finished.set()
            self.publisher.flush(10)
            self.publisher.close()

    def stages(self) -> int:
        from gpu_agent import data, settings, train
        from gpu_agent.batching import TokenCounter
        from gpu_agent.callbacks import CheckpointCallback, StopCallback, TelemetryCallback
        from gpu_agent.checkpoints import CheckpointUploader, unpack
        from gpu_agent.finalize import finalize
        from gpu_agent.model import base_model, build_tokenizer, with_adapters
        from gpu_agent.prepare import prepare
        from infra.objectstore import ObjectStore

        spec, work = self.config.spec, self.config.work_dir
        objects = ObjectStore(self.publisher.nc.jetstream())
        self.enter("preprocessing", "Downloading and validating the training file...")
        path = self.publisher.call_retrying(lambda: objects.get_file(spec.training_file, work / "training-file"),
                                            "download of the training file")
        training_file, examples = data.examples(path.read_bytes())
        split = data.split(examples) if spec.validation_file is None else data.with_validation_file(
            examples, self.download(objects, spec.validation_file, "validation-file").read_bytes())
        device = settings.device_type()
        attention = settings.attention_implementation(device)
        seen = examples if split.validation_file is None else examples + split.validation
        tokenizer = build_tokenizer(spec, [m["content"] for e in seen for m in e.messages])
        prepared = prepare(spec, tokenizer, split, device, attention)
        self.guarded = prepared.guarded
        if spec.mode == "evaluate":
            return self.evaluate_only(objects, tokenizer, training_file, split, prepared, device, attention)
        download = self.download_weights(spec.base_model)
        self.enter("model_loading", f"Loading {spec.base_model} ({'4-bit QLoRA' if spec.qlora else 'LoRA'})...",
                   **({"download": download.report()} if download else {}))
        model = with_adapters(base_model(spec, tokenizer, work, device, attention), spec)
        resume_dir = self.fetch_resume(objects, unpack)
        uploader = CheckpointUploader(self.publisher, objects, self.config.job_id, work, self.config.attempt)
        stop = StopCallback(self.watcher, spec.fault, stored=uploader.wait)
        counter = TokenCounter()
        run = train.build(spec, model, tokenizer, prepared.train, prepared.validation, work / "trainer",
                          [TelemetryCallback(self.publisher, counter), CheckpointCallback(uploader), stop], resume_dir,
                          prepared.guarded.settings, device, prepared.speedups, counter)
        self.enter("training", f"Training {len(split.train)} examples, validating on {len(split.validation)}...",
                   **prepared.report())
        run.train()
        uploader.wait()
        if stop.interrupted_at is not None:
            return self.interrupted(stop.interrupted_at, uploader)
        self.enter("finalization", "Saving adapters and finalizing...")
        ref, metrics = finalize(run.trainer, self.publisher, objects, self.config.job_id, self.config.attempt, work,
                                {"conversations": len(training_file.conversations), "examples": len(examples),
                                 "hyperparameters": spec.hyperparameters, "base_model": spec.base_model,
                                 "training_setup": prepared.report()})
        self.step = run.trainer.state.global_step
        evaluation = self.evaluate(run.trainer.model, tokenizer, training_file, split, prepared, objects, uploader)
        self.publisher.emit("completed", {"adapter": ref.as_dict(), "metrics": metrics,
                                          **({"evaluation": evaluation.as_dict()} if evaluation else {})})
        return 0

    def evaluate_only(self, objects: Any, tokenizer: Any, training_file: Any, split: Any, prepared: Any, device: str,
                      attention: str) -> int:
        """A re-evaluation (docs/quality-validation.md): the stored adapter on its base, scored as the
        training run's own evaluation stage scores it; `completed` names the results and no adapter."""
        from types import SimpleNamespace

        from peft import PeftModel

        from gpu_agent.checkpoints import unpack
        from gpu_agent.model import base_model

        spec, work = self.config.spec, self.config.work_dir
        download = self.download_weights(spec.base_model)
        self.enter("model_loading", f"Loading {spec.base_model} and the adapter to evaluate...",
                   **({"download": download.report()} if download else {}))
        adapter_dir = unpack(self.download(objects, spec.adapter, "evaluated-adapter.tar"), work / "evaluated")
        model = PeftModel.from_pretrained(base_model(spec, tokenizer, work, device, attention), adapter_dir)
        evaluation = self.evaluate(model, tokenizer, training_file, split, prepared, objects,
                                   SimpleNamespace(latest=None))
        scored = {"evaluation": evaluation.as_dict()} if evaluation else {}
        self.publisher.emit("completed", {"metrics": {}, **scored})
        return 0

    def evaluate(self, model: Any, tokenizer: Any, training_file: Any, split: Any, prepared: Any, objects: Any,
                 uploader: Any) -> Any:
        """The evaluation stage (FR6.1, FR6.3; gpu_agent/evaluation.py): item-level results to the job's
        bucket, their reference in `completed`. Deterministic, so a preempted stage is run again on the
        next pod (from the last checkpoint, which is the trained adapter) to the same figures."""
        from domain.quality import load_ei_suite, load_knowledge_suite, load_rubric
        from gpu_agent.evaluation import evaluate
        from infra.bus import job_bucket

        spec, work, job_id = self.config.spec, self.config.work_dir, self.config.job_id
        if not split.validation:
            return None
        self.enter("evaluating", "Evaluating the adapter against the base model...")
        suites = [load_knowledge_suite(self.download(objects, ref, f"suite-{i}").read_bytes(), Path(ref.name).name)
                  for i, ref in enumerate([spec.knowledge_suite, *spec.probe_suites]) if ref is not None]
        knowledge = suites.pop(0) if spec.knowledge_suite is not None else None
        ei = load_ei_suite(self.download(objects, spec.ei_suite, "suite-ei").read_bytes(),
                           Path(spec.ei_suite.name).name) if spec.ei_suite is not None else None
        rubric = load_rubric(self.download(objects, spec.rubric, "suite-rubric").read_bytes()) \
            if spec.rubric is not None else None
        length = prepared.guarded.settings.seq_len
        validation = [(example.conversation_id, {"input_ids": row.input_ids[:length], "labels": row.labels[:length]})
                      for example, row in zip(split.validation, prepared.validation, strict=True)]
        results = evaluate(model, tokenizer, training_file, validation, [e.conversation_id for e in split.train],
                           knowledge, suites, job_id, self.config.attempt,
                           lambda part, done, total: self.evaluation_progress(part, done, total, uploader),
                           ei=ei, rubric=rubric, held_out=split.validation_file,
                           max_new_tokens=spec.max_new_tokens or default_new_tokens(spec),
                           batch_size=spec.generation_batch, seed=spec.seed)
        path = work / "evaluation.json"
        path.write_bytes(results.to_json())
        name = f"{job_id}/evaluation-attempt-{self.config.attempt}.json"
        return self.publisher.call_retrying(lambda: objects.put_file(job_bucket(job_id), name, path),
                                            f"upload of {name}")

    def download_weights(self, model_id: str) -> Any:
        """The base model's weights into HF_HOME (the pod's network volume: later pods find them there),
        timed on their own (gpu_agent/weights.py) in the `downloading_model` stage; None, and no such stage,
        for the tiny model or a local directory. Whether the volume already holds every file of the hub's
        current revision is only known by asking the hub, so a hub id always enters the stage (seconds long
        when cached); the model loading stage's `download` then says how long it took and whether it was cached."""
        from gpu_agent.weights import fetch, needs_fetch

        if not needs_fetch(model_id):
            return None
        self.enter("downloading_model", f"Downloading {model_id} (cached for later pods)...")
        fetched = fetch(model_id)
        log.info("model weights: %s", fetched.describe())
        return fetched

    def download(self, objects: Any, ref: Any, name: str) -> Path:
        return self.publisher.call_retrying(lambda: objects.get_file(ref, self.config.work_dir / name),
                                            f"download of {ref.name}")

    def evaluation_progress(self, part: str, done: int, total: int, uploader: Any) -> None:
        """Progress every tenth of a part; SIGTERM is answered here (the training loop's callback is
        gone): the trained adapter's checkpoint is already stored, so the next pod evaluates again."""
        if self.watcher.requested.is_set():
            self.interrupted(self.step, uploader)
        if done == total or done % max(1, total // 10) == 0:
            self.publisher.emit("evaluation", {"part": part, "done": done, "total": total})
        fault = self.config.spec.fault
        if fault == f"sigterm_in_evaluation:{done}" and part == "perplexity":
            os.kill(os.getpid(), signal.SIGTERM)
            self.watcher.requested.wait(2)
            self.interrupted(self.step, uploader)

    def fetch_resume(self, objects: Any, unpack: Any) -> Path | None:
        ref = self.config.resume_from
        if ref is None:
            return None
        archive = self.publisher.call_retrying(lambda: objects.get_file(ref, self.config.work_dir / "resume.tar"),
                                               "download of the checkpoint")
        return unpack(archive, self.config.work_dir / "resume")

    def enter(self, stage: str, status: str, **details: Any) -> None:
        self.stage = stage
        self.publisher.emit("stage", {"stage": stage, "status": status, **details})
        log.info("%s: %s", stage, status)

    def heartbeat(self) -> None:
        while not self.watcher.finished.wait(self.config.spec.heartbeat_s):
            self.publisher.emit("heartbeat", {"stage": self.stage, "pod_id": os.environ.get("RUNPOD_POD_ID", "")})

    def interrupted(self, step: int, uploader: Any) -> int:
        latest = uploader.latest
        self.publisher.emit("interrupted", {
            "reason": "sigterm", "step": step, "emergency_checkpoint": latest is not None and latest[0] == step,
            "checkpoint": latest[1].as_dict() if latest else None, "checkpoint_step": latest[0] if latest else None})
        self.publisher.flush(3)
        os._exit(143)  # sys.exit takes over a second to tear down torch; the pod has ~5 s

    def interrupted_without_checkpoint(self) -> None:
        """The watcher's path when no step boundary came within the grace period."""
        self.publisher.emit("interrupted", {"reason": "sigterm", "step": None, "emergency_checkpoint": False,
                                            "checkpoint": None, "checkpoint_step": None})
        self.publisher.flush(0.8)

    def fail(self, failure_type: str, message: str, details: dict[str, Any]) -> int:
        self.publisher.emit("failed", {"failure_type": failure_type, "message": message, "stage": self.stage,
                                       "details": details})
        log.error("failed (%s): %s", failure_type, message)
        return 1

    def oom_details(self) -> dict[str, Any]:
        import torch

        hyper = self.config.spec.hyperparameters
        batch = int(hyper["per_device_train_batch_size"])
        details: dict[str, Any] = {
            "batch_size": batch, "r": hyper["r"], "gpu_memory_total_gb": 80,
            "suggested_fixes": oom_fixes(batch, int(hyper["r"]))}
        if self.guarded is not None:
            details["memory_guard"] = self.guarded.report()
        if torch.cuda.is_available():
            details["max_memory_allocated_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            details["gpu_memory_total_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 2)
        return details


def default_new_tokens(spec: Any) -> int:
    """How long a generated reply may be unless the job says: a full advisor's answer on a real model; a few
    tokens on the tiny CPU model, whose replies only need to exist (tests, rehearsals)."""
    return 24 if spec.base_model == "tiny" else 256


def is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()
