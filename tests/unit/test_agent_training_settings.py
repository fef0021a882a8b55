"""What the GPU agent trains with, checked without a GPU: the TrainingArguments, model loading, collator, sampler,
labels, sequence length and memory guard it builds for a CUDA spec (issue #17), and the CPU ones it runs here."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from domain.gpu_memory import LLAMA_3_70B, plan  # noqa: E402
from domain.presets import BALANCED, CONSERVATIVE  # noqa: E402
from gpu_agent import data  # noqa: E402
from gpu_agent.batching import MEGA_BATCH, PROCESSED, USEFUL, LengthGroupedSampler, PaddingCollator  # noqa: E402
from gpu_agent.config import ConfigError, JobSpec, _spec  # noqa: E402
from gpu_agent.memory import guard, guard_lengths, setup_for  # noqa: E402
from gpu_agent.model import build_tokenizer, model_config, with_adapters  # noqa: E402
from gpu_agent.settings import (  # noqa: E402
    CPU,
    CUDA,
    RunSettings,
    active_speedups,
    attention_implementation,
    model_load_values,
    training_argument_values,
)
from gpu_agent.tokens import IGNORE, candidate_lengths, covering_length, length_report, tokenize  # noqa: E402
from gpu_agent.train import AgentTrainer, TokenizedExamples, arguments  # noqa: E402

SAMPLE = Path(__file__).parents[2] / "samples" / "financial-advisory.json"
LLAMA_3_70B_CONFIG = {"hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80,
                      "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 128256}


def job(preset=CONSERVATIVE, **overrides) -> JobSpec:
    return JobSpec(training_file=None, hyperparameters=preset.as_config(), seed=7, **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def sample():
    """The shipped sample's examples and the tiny model's tokenizer, trained on them as the agent does."""
    _, items = data.examples(SAMPLE.read_bytes())
    return items, build_tokenizer(job(), [m["content"] for e in items for m in e.messages])


def test_a_cuda_spec_trains_in_bf16_with_non_reentrant_checkpointing_the_fused_optimizer_and_the_guards_batch(
    tmp_path, monkeypatch
) -> None:
    run = RunSettings(micro_batch=2, gradient_accumulation_steps=2, gradient_checkpointing=True, seq_len=1024)
    values = training_argument_values(job(qlora=True), tmp_path, CUDA, run)
    assert (values["bf16"], values["use_cpu"], values["optim"]) == (True, False, "adamw_torch_fused")
    assert values["activation_checkpointing"] is True  # transformers 5's name for gradient checkpointing
    assert values["activation_checkpointing_kwargs"] == {"use_reentrant": False}
    assert (values["per_device_train_batch_size"], values["gradient_accumulation_steps"]) == (2, 2)
    assert values["include_num_input_tokens_seen"] == "no"  # its count synchronises with the GPU every micro-batch
    # transformers itself accepts them (its bf16 check asks for a GPU: told there is one)
    monkeypatch.setattr("transformers.training_args.is_torch_bf16_gpu_available", lambda: True)
    from transformers import TrainingArguments

    args = TrainingArguments(**values)
    assert args.bf16 and args.gradient_checkpointing and args.gradient_checkpointing_kwargs == {"use_reentrant": False}
    assert args.optim == "adamw_torch_fused" and not args.use_liger_kernel


def test_the_cpu_stays_fp32_and_checkpoints_only_when_the_guard_asks(tmp_path) -> None:
    spec = job()
    args = arguments(spec, tmp_path, RunSettings.requested(spec, 256))
    assert not args.bf16 and args.use_cpu and args.optim == "adamw_torch"
    assert not args.gradient_checkpointing and args.per_device_train_batch_size == CONSERVATIVE.batch_size
    guarded = arguments(spec, tmp_path, RunSettings(2, 2, True, 256))
    assert guarded.gradient_checkpointing and guarded.gradient_checkpointing_kwargs == {"use_reentrant": False}


def test_flash_attention_2_on_cuda_when_installed_and_sdpa_otherwise() -> None:
    assert attention_implementation(CUDA, flash_attention=True) == "flash_attention_2"
    assert attention_implementation(CUDA, flash_attention=False) == "sdpa"
    assert attention_implementation(CPU, flash_attention=True) == "sdpa"


def test_a_hub_model_on_cuda_loads_whole_on_the_gpu_in_bf16_and_4_bit_nf4_for_qlora() -> None:
    values = model_load_values(job(qlora=True), CUDA, "flash_attention_2")
    assert values["dtype"] == torch.bfloat16 and values["attn_implementation"] == "flash_attention_2"
    assert values["device_map"] == {"": 0}  # never offloaded to the CPU
    quantization = values["quantization_config"]
    assert quantization.load_in_4bit and quantization.bnb_4bit_quant_type == "nf4"
    assert quantization.bnb_4bit_use_double_quant and quantization.bnb_4bit_compute_dtype == torch.bfloat16
    cpu = model_load_values(job(), CPU, "sdpa")
    assert cpu["dtype"] == torch.float32 and "quantization_config" not in cpu


def test_lora_goes_on_every_module_the_preset_names(sample, tmp_path) -> None:
    from transformers import LlamaForCausalLM

    _, tokenizer = sample
    spec = job(BALANCED)
    model = with_adapters(LlamaForCausalLM(model_config(spec, tokenizer)), spec)
    assert set(model.peft_config["default"].target_modules) == set(BALANCED.target_modules)
    adapted = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if hasattr(module, "lora_A")}
    assert adapted == set(BALANCED.target_modules) and len(BALANCED.target_modules) == 7  # every linear layer


def test_the_loss_is_on_the_assistants_target_only_system_user_and_context_are_masked(sample) -> None:
    _, tokenizer = sample
    messages = [{"role": "system", "content": "You are a plain-spoken advisor."},
                {"role": "user", "content": "Should I pay off my card?"},
                {"role": "assistant", "content": "Yes, the highest rate first."},
                {"role": "user", "content": "And then?"},
                {"role": "assistant", "content": "Build a small emergency fund."}]
    row = tokenize(tokenizer, messages)
    assert row.input_ids == tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)
    trained = [label for label in row.labels if label != IGNORE]
    assert tokenizer.decode(trained) == "Build a small emergency fund.<|end|>"
    assert row.labels[-len(trained):] == row.input_ids[-len(trained):]  # one span, at the end


def test_the_collator_pads_to_the_longest_row_masks_padding_and_counts_the_real_tokens() -> None:
    rows = [{"input_ids": [5, 6, 7], "labels": [IGNORE, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    batch = PaddingCollator(pad_token_id=0)(rows)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE, 6, 7], [8, IGNORE, IGNORE]]
    assert (batch[USEFUL], batch[PROCESSED]) == (4, 6)


def test_the_length_grouped_sampler_is_a_pure_function_of_seed_and_epoch_and_leaves_the_global_rng_alone() -> None:
    lengths = [random.Random(1).randint(20, 400) for _ in range(1003)]
    before = torch.get_rng_state()
    sampler = LengthGroupedSampler(lengths, batch_size=4, seed=7)
    sampler.set_epoch(1)
    first = list(sampler)
    assert torch.equal(torch.get_rng_state(), before)
    again = LengthGroupedSampler(lengths, batch_size=4, seed=7)
    again.set_epoch(1)
    assert list(again) == first and sampler.indices(0) != first
    assert LengthGroupedSampler(lengths, 4, seed=8).indices(1) != first
    assert sorted(first) == list(range(len(lengths)))
    batches = [first[i:i + 4] for i in range(0, len(first), 4)]
    assert max(lengths[i] for i in batches[0]) == max(lengths)  # the longest batch first: an OOM shows at step 1
    assert len(batches[-1]) == len(lengths) % 4  # the short batch last, so the data loader cuts the same batches
    assert sum(len(b) == 4 for b in batches) == len(lengths) // 4
    useful = sum(lengths)
    processed = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    assert useful / processed > 0.95 and MEGA_BATCH == 50


def test_length_grouping_lifts_the_shipped_samples_useful_token_share_above_95_percent(sample) -> None:
    """Before issue #17 Trainer's random sampler padded Conservative's batches of 4 to their longest row."""
    items, tokenizer = sample
    lengths = [len(tokenize(tokenizer, e.messages)) for e in data.split(items).train]

    def share(order: list[int]) -> float:
        batches = [order[i:i + 4] for i in range(0, len(order), 4)]
        return sum(lengths) / sum(max(lengths[i] for i in b) * len(b) for b in batches)

    random_order = [share(torch.randperm(len(lengths), generator=torch.Generator().manual_seed(s)).tolist())
                    for s in range(3)]
    grouped = [share(LengthGroupedSampler(lengths, 4, seed=7).indices(epoch)) for epoch in range(3)]
    print(f"useful/processed, batch 4: random {sum(random_order) / 3:.1%}, grouped {sum(grouped) / 3:.1%}")
    assert max(random_order) < 0.8 and min(grouped) >= 0.95


def test_the_sequence_length_covers_every_example_unless_the_long_tail_would_cost_memory() -> None:
    lengths = [100] * 990 + [3000] * 10
    assert covering_length(lengths) == 100 and covering_length(lengths, 0.995) == 3000
    assert candidate_lengths(lengths, None, 8192) == [(3000, "data"), (100, "data")]
    assert candidate_lengths(lengths, 2048, 8192) == [(2048, "max_seq_length"), (100, "data")]
    assert candidate_lengths(lengths, None, 1024) == [(1024, "model context"), (100, "data")]
    spec = job(qlora=True)
    # No GPU memory to plan for: nothing costs memory, every example whole
    chosen, decided_by = guard_lengths(spec, LLAMA_3_70B_CONFIG, [(3000, "data"), (100, "data")], CPU, "sdpa", None)
    assert (chosen.settings.seq_len, decided_by, chosen.plan) == (3000, "data", None)
    # On an H100 the 3,000-token tail needs a smaller micro-batch than 100-token rows: the tail is cut
    chosen, decided_by = guard_lengths(spec, LLAMA_3_70B_CONFIG, [(3000, "data"), (100, "data")], CUDA, "sdpa", 79.2)
    assert (chosen.settings.seq_len, decided_by) == (100, "data")
    # A tail that costs nothing more is kept
    chosen, _ = guard_lengths(spec, LLAMA_3_70B_CONFIG, [(112, "data"), (100, "data")], CUDA, "sdpa", 79.2)
    assert chosen.settings.seq_len == 112


def test_a_cut_is_counted_with_how_much_it_removed_and_the_masked_share() -> None:
    from gpu_agent.tokens import Tokenized

    rows = [Tokenized(list(range(10)), [IGNORE] * 6 + list(range(6, 10))),
            Tokenized(list(range(4)), [IGNORE, IGNORE, 2, 3])]
    report = length_report(rows, 8, "max_seq_length")
    assert (report.truncated_examples, report.truncated_tokens, report.most_cut, report.longest) == (1, 2, 2, 10)
    assert report.covered_share == 0.5 and report.masked_share == pytest.approx(8 / 12, abs=1e-4)


def test_the_memory_guard_plans_llama_3_70b_on_an_h100_as_the_preflight_does_and_keeps_the_effective_batch() -> None:
    from domain.gpu_memory import ModelShape

    spec = job(qlora=True)
    guarded = guard(spec, LLAMA_3_70B_CONFIG, 2048, CUDA, "sdpa", 79.2)
    assert ModelShape.from_config(LLAMA_3_70B_CONFIG) == LLAMA_3_70B
    same = plan(LLAMA_3_70B, setup_for(spec, 2048, CUDA, "sdpa"), 79.2, may_cap_seq_len=True)
    run = guarded.settings
    assert (run.micro_batch, run.gradient_accumulation_steps, run.gradient_checkpointing, run.seq_len) == (
        same.setup.micro_batch, same.setup.gradient_accumulation_steps, True, 2048)
    assert run.micro_batch * run.gradient_accumulation_steps == CONSERVATIVE.batch_size * 1
    report = guarded.report()
    assert report["guarded"] and report["fits"] and report["changes"][0].startswith("Gradient checkpointing turned on")
    assert json.loads(json.dumps(report)) == report  # travels as telemetry


def test_speedups_are_named_checked_and_skipped_with_a_reason_where_they_cannot_run() -> None:
    used, skipped = active_speedups(job(speedups=("liger",)), CPU)
    assert used == () and "CUDA" in skipped["liger"]
    ref = {"bucket": "files", "name": "f.json", "sha256": "a" * 64, "size": 1}
    raw = {"training_file": ref, "hyperparameters": CONSERVATIVE.as_config()}
    assert _spec(raw | {"speedups": ["liger"]}).speedups == ("liger",)
    assert _spec(raw).max_seq_length is None  # from the data unless the job caps it
    with pytest.raises(ConfigError, match="speedups must be a list of some of"):
        _spec(raw | {"speedups": ["unsloth"]})


def test_evaluation_batches_hold_rows_of_like_length_and_the_trainer_uses_the_grouped_sampler(sample, tmp_path) -> None:
    from transformers import LlamaForCausalLM

    items, tokenizer = sample
    spec = job(max_steps=1)
    rows = [tokenize(tokenizer, e.messages) for e in items[:40]]
    dataset = TokenizedExamples(rows, 64)
    assert max(dataset.lengths) == 64 and dataset.longest_first().lengths == sorted(dataset.lengths, reverse=True)
    model = with_adapters(LlamaForCausalLM(model_config(spec, tokenizer)), spec)
    from gpu_agent.batching import TokenCounter

    trainer = AgentTrainer(model=model, args=arguments(spec, tmp_path, RunSettings.requested(spec, 64)),
                           train_dataset=dataset, eval_dataset=dataset.longest_first(),
                           data_collator=PaddingCollator(tokenizer.pad_token_id),
                           counter=TokenCounter())
    assert isinstance(trainer._get_train_sampler(), LengthGroupedSampler)
