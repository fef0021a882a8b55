"""Training steps per second: the GPU agent's Trainer (telemetry per step through a real nats-server,
the in-order spool, checkpoints every 100 steps uploaded to the object store) against a bare
Trainer on the same tiny model and data, in the same process. Target: agent ≥ 98 % of bare.

    python bench/agent_throughput.py [--steps 600] [--repeats 5]

Both runs save Trainer checkpoints every 100 steps, so the ratio measures what the agent adds
(telemetry, spool, uploads); `--bare-without-checkpoints` also times a bare run that saves none."""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore")

import torch  # noqa: E402

from gpu_agent import data, train  # noqa: E402
from gpu_agent.callbacks import CheckpointCallback, StopCallback, TelemetryCallback  # noqa: E402
from gpu_agent.checkpoints import CheckpointUploader  # noqa: E402
from gpu_agent.config import AgentConfig, JobSpec  # noqa: E402
from gpu_agent.model import base_model, build_tokenizer, with_adapters  # noqa: E402
from gpu_agent.prepare import prepare  # noqa: E402
from gpu_agent.publisher import Publisher  # noqa: E402
from gpu_agent.signals import SigtermWatcher  # noqa: E402
from infra import bus  # noqa: E402
from infra.embedded import EmbeddedNats  # noqa: E402
from infra.objectstore import ObjectStore  # noqa: E402
from tests.agent_helpers import declare_streams, small_training_file, spec, upload  # noqa: E402


def one_run(job: JobSpec, items, split, work: Path, callbacks_for) -> float:
    tokenizer = build_tokenizer(job, [m["content"] for e in items for m in e.messages])
    prepared = prepare(job, tokenizer, split, "cpu", "sdpa")
    model = with_adapters(base_model(job, tokenizer, work), job)
    run = train.build(job, model, tokenizer, prepared.train, prepared.validation, work / "trainer", [], None,
                      prepared.guarded.settings)
    for callback in callbacks_for(work):
        if isinstance(callback, TelemetryCallback):
            callback.counter = run.trainer.counter  # the trainer's token counts, as the agent wires them
        run.trainer.add_callback(callback)
    started = time.perf_counter()
    run.train()
    elapsed = time.perf_counter() - started
    return run.trainer.state.global_step / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bare-without-checkpoints", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    nats = EmbeddedNats(tmp / "nats")
    nats.start()
    try:
        declare_streams(nats.url)
        raw = small_training_file(40)
        ref = upload(nats.url, raw, tmp)
        job_dict = spec(ref, checkpoint_every=100, max_steps=args.steps)
        job = JobSpec(training_file=ref, hyperparameters=job_dict["hyperparameters"], checkpoint_every=100,
                      max_steps=args.steps, seed=7, max_seq_length=96)
        _, items = data.examples(raw)
        split = data.split(items)
        config = AgentConfig(str(uuid.uuid4()), 1, nats.url, tmp, job)
        publisher = Publisher(config)
        publisher.start()
        publisher.call(bus.ensure_job_bucket(publisher.nc.jetstream(), config.job_id))
        objects = ObjectStore(publisher.nc.jetstream())
        uploaders: list[CheckpointUploader] = []

        def agent_callbacks(work: Path):
            uploader = CheckpointUploader(publisher, objects, config.job_id, work)
            uploaders.append(uploader)
            return [TelemetryCallback(publisher), CheckpointCallback(uploader), StopCallback(SigtermWatcher())]

        def no_callbacks(work: Path):
            return []

        variants = {"bare": (job, no_callbacks), "agent": (job, agent_callbacks)}
        if args.bare_without_checkpoints:
            variants["bare, no checkpoints"] = (JobSpec(**{**job.__dict__, "checkpoint_every": 10**9}), no_callbacks)
        rates: dict[str, list[float]] = {name: [] for name in variants}
        order = list(variants)
        for repeat in range(-1, args.repeats):  # repeat -1 warms up (imports, allocator) and is dropped
            for name in order if repeat % 2 else reversed(order):  # alternate who goes first
                job_variant, callbacks = variants[name]
                work = tmp / f"{name.replace(' ', '_').replace(',', '')}-{repeat}"
                rate = one_run(job_variant, items, split, work, callbacks)
                shutil.rmtree(work, ignore_errors=True)
                if repeat >= 0:
                    rates[name].append(rate)
                    print(f"  rep {repeat + 1}: {name:<22} {rate:7.1f} steps/s", flush=True)
        for uploader in uploaders:
            uploader.wait()
        publisher.flush(30)
        print(f"\nsteps per run: {args.steps}, repetitions: {args.repeats}, telemetry acknowledged: {publisher.acked}")
        for name, values in rates.items():
            print(f"{name:<22}: median {statistics.median(values):7.1f} steps/s   best {max(values):7.1f}")
        ratio = statistics.median(rates["agent"]) / statistics.median(rates["bare"]) * 100
        print(f"agent / bare          : {ratio:.1f} %   (target >= 98 %)  {'PASS' if ratio >= 98 else 'FAIL'}")
        publisher.close()
    finally:
        nats.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
