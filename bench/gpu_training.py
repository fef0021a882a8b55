"""GPU training speed and memory (issue #17): the agent's training path against a bare transformers + peft
(+ bitsandbytes) loop on the same batches, with and without each optional speed-up; useful tokens/s, step time,
peak GPU memory, model-FLOPs utilisation. Prints ratios, never asserts timings.

    python bench/gpu_training.py                                   # CPU: the tiny shape (CI's smoke test runs it)
    python bench/gpu_training.py --shapes llama3-8b,llama3-70b-4,llama3-70b-8 --qlora --join 8   # on a GPU

No model hub is reachable from a lent GPU, so models are built from the published configs with random weights
(throughput does not depend on weight values) and saved to a scratch directory with a byte-level BPE tokenizer
trained on the shipped sample; the agent loads them as it loads a hub model (`base_model` is that directory).
Llama-3-70B runs with a subset of its 80 layers (`llama3-70b-4`, `llama3-70b-8`) under the settings the memory
guard picks for all 80; the per-layer time and memory are extrapolated to 80.

Variants: `bare` (from_pretrained with the same arguments, prepare_model_for_kbit_training, get_peft_model, fused
AdamW, bf16 autocast, the same batches in the same order, the same checkpointing), `agent` (gpu_agent.train.build:
Trainer, the length-grouped sampler, the collator, the telemetry callback into an in-memory spool; NATS is
measured by bench/agent_throughput.py), `agent+liger` (skipped with its reason where Liger cannot run).
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore")

import torch  # noqa: E402

from domain.gpu_memory import GB, LLAMA_3_8B, LLAMA_3_70B, ModelShape  # noqa: E402
from domain.presets import PRESETS, preset_named  # noqa: E402
from gpu_agent import data, train  # noqa: E402
from gpu_agent.batching import LengthGroupedSampler, PaddingCollator, TokenCounter  # noqa: E402
from gpu_agent.callbacks import TelemetryCallback  # noqa: E402
from gpu_agent.config import JobSpec  # noqa: E402
from gpu_agent.memory import gpu_memory_gb, guard  # noqa: E402
from gpu_agent.model import TINY, base_model, build_tokenizer, tiny_base_dir, with_adapters  # noqa: E402
from gpu_agent.prepare import prepare  # noqa: E402
from gpu_agent.settings import CUDA, RunSettings, active_speedups, attention_implementation, device_type  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "financial-advisory.json"
PEAK_BF16_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}  # dense


def shape_config(name: str, tokenizer: Any) -> dict[str, Any] | None:
    """A LlamaConfig's keys for a named shape; None for the agent's own tiny model."""
    if name == TINY:
        return None
    if name == "llama3-8b":
        shape, layers = LLAMA_3_8B, LLAMA_3_8B.num_layers
    elif name.startswith("llama3-70b"):
        shape, layers = LLAMA_3_70B, int(name.rsplit("-", 1)[-1]) if name.count("-") == 2 else 80
    else:
        raise SystemExit(f"unknown shape {name!r}: tiny, llama3-8b, llama3-70b-N")
    return {"hidden_size": shape.hidden_size, "intermediate_size": shape.intermediate_size,
            "num_hidden_layers": layers, "num_attention_heads": shape.num_attention_heads,
            "num_key_value_heads": shape.num_key_value_heads, "vocab_size": shape.vocab_size,
            "max_position_embeddings": 8192, "rope_theta": 500000.0, "rms_norm_eps": 1e-5,
            "pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id, "tie_word_embeddings": False}


def save_random_model(config: dict[str, Any], tokenizer: Any, directory: Path, device: str) -> Path:
    """Random bf16 weights, built on the GPU (fast), saved as a hub model would be, with the tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    with torch.device(device):
        model = LlamaForCausalLM(LlamaConfig(**config)).to(torch.bfloat16 if device == CUDA else torch.float32)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    del model
    release()
    return directory


def release() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def joined(examples: list[data.Example], join: int) -> list[data.Example]:
    """Longer rows: `join` consecutive examples of the file as one multi-turn conversation (its last answer
    trained), as a file of longer conversations would be."""
    if join <= 1:
        return examples
    out = []
    for start in range(0, len(examples) - join + 1, join):
        group = examples[start:start + join]
        system = [m for m in group[0].messages if m["role"] == "system"]
        turns = [m for e in group for m in e.messages if m["role"] != "system"]
        out.append(data.Example(group[0].conversation_id, system + turns))
    return out


@dataclass
class Result:
    variant: str
    tokens_per_s: float = 0.0
    step_s: float = 0.0
    peak_gb: float | None = None
    useful_share: float = 0.0
    skipped: str = ""
    tokens_per_step: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class Spool:
    """The publisher's interface, kept in memory (the NATS path is bench/agent_throughput.py's subject)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def emit(self, kind: str, payload: dict[str, Any]) -> int:
        self.messages.append((kind, payload))
        return len(self.messages)


def run_agent(spec: JobSpec, tokenizer: Any, prepared: Any, run: RunSettings, work: Path, device: str,
              attention: str, speedups: tuple[str, ...], warmup: int) -> Result:
    release()
    model = with_adapters(base_model(spec, tokenizer, work, device, attention), spec)
    spool, counter = Spool(), TokenCounter()
    built = train.build(spec, model, tokenizer, prepared.train, [], work / "trainer",
                        [TelemetryCallback(spool, counter)], None, run, device, speedups, counter)
    built.train()
    steps = [payload for kind, payload in spool.messages if kind == "step"][warmup:]
    seconds = sum(s["step_time_s"] for s in steps)
    useful, processed = sum(s["useful_tokens"] for s in steps), sum(s["processed_tokens"] for s in steps)
    result = Result("agent" + "".join(f"+{s}" for s in speedups), useful / seconds, seconds / len(steps),
                    peak(), useful / processed, tokens_per_step=useful / len(steps))
    del built, model
    release()
    return result


def run_bare(spec: JobSpec, prepared: Any, run: RunSettings, model_dir: Path, pad_token_id: int, device: str,
             attention: str, steps: int, warmup: int) -> Result:
    """transformers + peft (+ bitsandbytes) by hand: the same model arguments, batches, order and checkpointing."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    from gpu_agent.settings import model_load_values

    release()
    torch.manual_seed(spec.seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, **model_load_values(spec, device, attention))
    if spec.qlora:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    hyper = spec.hyperparameters
    model = get_peft_model(model, LoraConfig(r=int(hyper["r"]), lora_alpha=int(hyper["lora_alpha"]),
                                             lora_dropout=float(hyper["lora_dropout"]),
                                             target_modules=list(hyper["target_modules"]), task_type="CAUSAL_LM"))
    if run.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=float(hyper["learning_rate"]),
                                  fused=device == CUDA)
    dataset = train.TokenizedExamples(prepared.train, run.seq_len)
    order = LengthGroupedSampler(dataset.lengths, run.micro_batch, spec.seed).indices(0)
    collate = PaddingCollator(pad_token_id)
    batches = [collate([dataset[i] for i in order[b:b + run.micro_batch]])
               for b in range(0, len(order), run.micro_batch)]
    times, useful, processed = [], 0, 0
    for step in range(steps):
        sync(device)
        started = time.perf_counter()
        for micro in range(run.gradient_accumulation_steps):
            batch = batches[(step * run.gradient_accumulation_steps + micro) % len(batches)]
            if step >= warmup:
                useful, processed = useful + batch.pop("useful_tokens"), processed + batch.pop("processed_tokens")
            inputs = {k: v.to(device) for k, v in batch.items() if isinstance(v, torch.Tensor)}
            with torch.autocast(device, dtype=torch.bfloat16, enabled=device == CUDA):
                loss = model(**inputs).loss / run.gradient_accumulation_steps
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()  # as Trainer logs every step
        sync(device)
        if step >= warmup:
            times.append(time.perf_counter() - started)
    result = Result("bare", useful / sum(times), statistics.mean(times), peak(), useful / processed,
                    tokens_per_step=useful / len(times))
    del model, optimizer
    release()
    return result


def sync(device: str) -> None:
    if device == CUDA:
        torch.cuda.synchronize()


def peak() -> float | None:
    return torch.cuda.max_memory_allocated() / GB if torch.cuda.is_available() else None


def peak_tflops(override: float | None) -> float | None:
    if override:
        return override
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0)
    return next((tflops for key, tflops in PEAK_BF16_TFLOPS.items() if all(w in name for w in key.split())), None)


def flops_per_token(shape: ModelShape, mean_len: float) -> float:
    """Model FLOPs of one trained token: the linear layers' forward (2N) and input gradients (2N; the frozen base
    has no weight gradients, the adapters' are negligible), attention's 12 × layers × hidden × context (PaLM's
    convention); checkpointing's recomputation is not counted (model FLOPs, not hardware FLOPs)."""
    return 4 * shape.parameters + 12 * shape.num_layers * shape.hidden_size * mean_len


def bench_shape(name: str, args: argparse.Namespace, tmp: Path, examples: list[data.Example],
                tokenizer: Any) -> list[Result]:
    device = device_type()
    attention = attention_implementation(device)
    config = shape_config(name, tokenizer)
    model_dir = save_random_model(config, tokenizer, tmp / name, device) if config else None
    hyper = preset_named(args.preset).as_config()
    spec = JobSpec(training_file=None, hyperparameters=hyper, base_model=str(model_dir) if model_dir else TINY,  # type: ignore[arg-type]
                   qlora=args.qlora, checkpoint_every=10**9, seed=7, max_steps=args.steps,
                   max_seq_length=args.max_seq_length)
    split = data.Split(examples, [])
    prepared = prepare(spec, tokenizer, split, device, attention)
    run = prepared.guarded.settings
    if config and config["num_hidden_layers"] != 80 and name.startswith("llama3-70b"):
        full = dict(config, num_hidden_layers=80)  # the settings the guard picks for the real 80-layer model
        run = guard(spec, full, run.seq_len, device, attention, gpu_memory_gb(spec, device)).settings
    print(f"\n{name}: {len(prepared.train)} rows, longest {run.seq_len} tokens, micro-batch {run.micro_batch} × "
          f"{run.gradient_accumulation_steps}, checkpointing {'on' if run.gradient_checkpointing else 'off'}, "
          f"{'4-bit NF4' if spec.qlora else 'bf16' if device == CUDA else 'fp32'}, {attention}, {device}", flush=True)
    work = tmp / f"{name}-work"
    if model_dir is None:  # the tiny model, as the agent builds it (seeded), saved where the bare loop loads it
        base_model(spec, tokenizer, work)
    source = model_dir or tiny_base_dir(work)
    results = []
    for repeat in range(args.repeats):
        for variant in (("bare", "agent") if repeat % 2 == 0 else ("agent", "bare")):  # alternate who goes first
            if variant == "bare":
                results.append(run_bare(spec, prepared, run, source, tokenizer.pad_token_id, device, attention,
                                        args.steps, args.warmup))
            else:
                results.append(run_agent(spec, tokenizer, prepared, run, work, device, attention, (), args.warmup))
    for speedup in args.speedups:
        used, skipped = active_speedups(JobSpec(**{**spec.__dict__, "speedups": (speedup,)}), device)
        if skipped:
            results.append(Result(f"agent+{speedup}", skipped=skipped[speedup]))
            continue
        for _ in range(args.repeats):
            results.append(run_agent(spec, tokenizer, prepared, run, work, device, attention, used, args.warmup))
    merged = merge(results)
    shape = ModelShape.from_config(config) if config else None
    for result in merged:
        if shape is not None and result.tokens_per_s and (tflops := peak_tflops(args.peak_tflops)):
            mean_len = result.tokens_per_step / (run.micro_batch * run.gradient_accumulation_steps)
            result.extra["mfu"] = result.tokens_per_s * flops_per_token(shape, mean_len) / (tflops * 1e12)
    if model_dir is not None:
        shutil.rmtree(model_dir, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    return merged


def merge(results: list[Result]) -> list[Result]:
    """One row per variant: the median of its repetitions."""
    out = []
    for variant in dict.fromkeys(r.variant for r in results):
        runs = [r for r in results if r.variant == variant]
        if runs[0].skipped:
            out.append(runs[0])
            continue
        tokens = statistics.median(r.tokens_per_s for r in runs)
        out.append(Result(variant, tokens, statistics.median(r.step_s for r in runs),
                          max((r.peak_gb for r in runs if r.peak_gb is not None), default=None),
                          runs[0].useful_share, tokens_per_step=runs[0].tokens_per_step))
    return out


def report(name: str, results: list[Result]) -> dict[str, Any]:
    bare = next((r for r in results if r.variant == "bare"), None)
    agent = next((r for r in results if r.variant == "agent"), None)
    print(f"{'variant':<14}{'useful tok/s':>14}{'step s':>10}{'peak GB':>9}{'useful/processed':>18}{'MFU':>7}  vs")
    for r in results:
        if r.skipped:
            print(f"{r.variant:<14}  skipped: {r.skipped}")
            continue
        base = bare if r.variant == "agent" else agent
        versus = f"{r.tokens_per_s / base.tokens_per_s * 100:6.1f} % of {base.variant}" if base and r is not base \
            else ""
        mfu = f"{r.extra['mfu'] * 100:5.1f}%" if "mfu" in r.extra else "   n/a"
        peak_gb = f"{r.peak_gb:8.1f}" if r.peak_gb is not None else "     n/a"
        print(f"{r.variant:<14}{r.tokens_per_s:14,.0f}{r.step_s:10.3f} {peak_gb}{r.useful_share * 100:17.1f}%{mfu:>7}"
              f"  {versus}")
    ratio = agent.tokens_per_s / bare.tokens_per_s * 100 if agent and bare else None
    if ratio is not None:
        print(f"agent / bare: {ratio:.1f} %   (target >= 98 % with speed-ups off)")
    return {"shape": name, "agent_over_bare_percent": ratio,
            "rows": [{k: v for k, v in vars(r).items()} for r in results]}


def extrapolate(reports: dict[str, list[Result]]) -> None:
    """Llama-3-70B at 80 layers from the 4- and 8-layer runs: per-layer step time and memory, linear in layers."""
    small, large = reports.get("llama3-70b-4"), reports.get("llama3-70b-8")
    if not small or not large:
        return
    print("\nLlama-3-70B extrapolated to 80 layers (from 4 and 8):")
    for s, b in zip(small, large, strict=True):
        if s.skipped or b.skipped:
            continue
        per_layer = (b.step_s - s.step_s) / 4
        step = s.step_s + 76 * per_layer
        memory = f", peak {s.peak_gb + 76 * (b.peak_gb - s.peak_gb) / 4:.1f} GB" if s.peak_gb and b.peak_gb else ""
        print(f"  {s.variant:<14} {per_layer * 1000:7.1f} ms per layer per step → {step:7.2f} s per step, "
              f"{s.tokens_per_step / step:8,.0f} useful tokens/s{memory}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cuda = torch.cuda.is_available()
    parser.add_argument("--shapes", default="llama3-8b,llama3-70b-4,llama3-70b-8" if cuda else TINY)
    parser.add_argument("--preset", default="conservative", choices=[p.name for p in PRESETS])
    parser.add_argument("--qlora", action="store_true", help="4-bit NF4 (QLoRA), as the 70B jobs train")
    parser.add_argument("--steps", type=int, default=12 if cuda else 8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--join", type=int, default=1, help="examples joined into one multi-turn row (longer rows)")
    parser.add_argument("--max-seq-length", type=int, default=None)
    parser.add_argument("--examples", type=int, default=None, help="only the file's first N examples (smoke test)")
    parser.add_argument("--speedups", default="liger", help="comma-separated; each measured against the agent")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the card's dense bf16 peak (default: by name)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    args.speedups = [s for s in args.speedups.split(",") if s]
    torch.manual_seed(0)
    if not cuda:
        torch.set_num_threads(1)
    _, examples = data.examples(SAMPLE.read_bytes())
    examples = joined(examples[:args.examples], args.join)
    tokenizer = build_tokenizer(JobSpec(training_file=None, hyperparameters={}),  # type: ignore[arg-type]
                                [m["content"] for e in examples for m in e.messages])
    device_name = torch.cuda.get_device_name(0) if cuda else "CPU"
    print(f"device: {device_name}; bf16 peak: {peak_tflops(args.peak_tflops) or 'n/a'} TFLOPS; preset {args.preset}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-gpu-training-"))
    reports, out = {}, {"device": device_name, "shapes": []}
    try:
        for name in args.shapes.split(","):
            reports[name] = bench_shape(name, args, tmp, examples, tokenizer)
            out["shapes"].append(report(name, reports[name]))
        extrapolate(reports)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))
    return out


if __name__ == "__main__":
    main()
