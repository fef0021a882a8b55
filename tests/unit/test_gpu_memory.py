"""The GPU memory model (domain/gpu_memory) pinned to published figures, the spec's presets and its own plan."""

import subprocess
import sys

import pytest

from domain.gpu import GPU_MEMORY_GB
from domain.gpu_memory import (
    GB,
    LLAMA_3_8B,
    LLAMA_3_70B,
    ModelShape,
    ModelShapeError,
    TrainingSetup,
    UnknownModelError,
    UnsupportedSettingError,
    Verdict,
    estimate,
    estimate_setup,
    largest_fitting_seq_len,
    plan,
    preflight,
    shape_for_model,
    usable_bytes,
)
from domain.presets import AGGRESSIVE, BALANCED, CONSERVATIVE, PRESETS

ALL_SEVEN = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# meta-llama/Meta-Llama-3-70B-Instruct's config.json, the keys that matter and a few that do not.
LLAMA_3_70B_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "hidden_size": 8192, "intermediate_size": 28672,
    "num_hidden_layers": 80, "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 128256,
    "tie_word_embeddings": False, "rope_theta": 500000.0, "torch_dtype": "bfloat16",
}


def weights_gb(shape: ModelShape, quantization: str, **settings) -> float:
    """Weights alone: a one-token step, so activations do not matter."""
    memory = estimate(shape, quantization=quantization, lora_rank=8, target_modules=["q_proj"], micro_batch=1,
                      seq_len=1, **settings)
    return memory.base_weights / GB


def unsloth_benchmark(seq_len: int = 1) -> TrainingSetup:
    """Unsloth's "Hugging Face + FA2" column: 4-bit QLoRA, r=32 on all seven projections, batch 1, checkpointing."""
    return TrainingSetup(lora_rank=32, target_modules=ALL_SEVEN, micro_batch=1, seq_len=seq_len,
                         gradient_checkpointing=True, attention="flash_attention_2")


def preset_setup(preset, seq_len: int, **settings) -> TrainingSetup:
    return TrainingSetup.from_hyperparameters(preset.as_config(), seq_len=seq_len, **settings)


# Shapes


def test_llama_3_shapes_count_the_published_8b_and_70b_parameters():
    assert LLAMA_3_8B.parameters == 8_030_261_248
    assert LLAMA_3_70B.parameters == 70_553_706_496
    assert LLAMA_3_70B.kv_size == 1024  # 8 key/value heads of 128


@pytest.mark.parametrize(("model_id", "shape"), [
    ("meta-llama/Meta-Llama-3-70B-Instruct", LLAMA_3_70B), ("meta-llama/Meta-Llama-3-8B", LLAMA_3_8B),
    ("meta-llama/Llama-3.1-8B-Instruct", LLAMA_3_8B), ("meta-llama/Llama-3.3-70B-Instruct", LLAMA_3_70B),
    ("unsloth/llama-3-70b-bnb-4bit", LLAMA_3_70B),
])
def test_a_llama_3_hub_id_resolves_to_its_published_shape(model_id, shape):
    assert shape_for_model(model_id) is shape


@pytest.mark.parametrize("model_id", ["tiny", "mistralai/Mistral-7B-v0.1", "meta-llama/Llama-3.2-3B",
                                      "meta-llama/Llama-2-70b-hf"])
def test_a_hub_id_without_a_published_shape_asks_for_the_models_config(model_id):
    with pytest.raises(UnknownModelError, match="from_config"):
        shape_for_model(model_id)


def test_a_shape_built_from_a_config_json_equals_the_published_one():
    assert ModelShape.from_config(LLAMA_3_70B_CONFIG) == LLAMA_3_70B


def test_a_config_without_key_value_heads_means_plain_multi_head_attention():
    config = {k: v for k, v in LLAMA_3_70B_CONFIG.items() if k != "num_key_value_heads"}
    assert ModelShape.from_config(config).num_key_value_heads == 64


def test_a_config_missing_a_size_is_refused_by_name():
    with pytest.raises(ModelShapeError, match="intermediate_size"):
        ModelShape.from_config({k: v for k, v in LLAMA_3_70B_CONFIG.items() if k != "intermediate_size"})


# Weights, adapters, optimizer


def test_llama_3_70b_loaded_in_4_bit_holds_35_to_40_gb_of_weights():
    assert 35 <= weights_gb(LLAMA_3_70B, "nf4", upcast_for_kbit=False) <= 40


def test_llama_3_8b_loaded_in_4_bit_holds_5_to_6_gb_of_weights():
    assert 5 <= weights_gb(LLAMA_3_8B, "nf4", upcast_for_kbit=False) <= 6


def test_llama_3_8b_in_bf16_holds_16_billion_bytes_of_weights():
    assert weights_gb(LLAMA_3_8B, "bf16") * GB / 1e9 == pytest.approx(16.06, abs=0.01)  # 15.0 GB in GiB


def test_preparing_for_kbit_training_keeps_embeddings_lm_head_and_norms_in_fp32():
    added = weights_gb(LLAMA_3_70B, "nf4") - weights_gb(LLAMA_3_70B, "nf4", upcast_for_kbit=False)
    assert added * GB == pytest.approx(2 * LLAMA_3_70B.other_parameters, abs=1)
    assert round(added, 1) == 3.9


def test_double_quantized_nf4_costs_a_little_over_half_a_byte_per_quantized_weight():
    setup = TrainingSetup(lora_rank=8, target_modules=["q_proj"], micro_batch=1, seq_len=1, upcast_for_kbit=False)
    quantized = estimate_setup(LLAMA_3_70B, setup).base_weights - 2 * LLAMA_3_70B.other_parameters
    assert quantized / LLAMA_3_70B.linear_parameters == pytest.approx(0.5 + 0.127 / 8, abs=1e-4)  # QLoRA §3


def test_rank_16_on_all_seven_projections_of_70b_checkpoints_2_5_gb_with_its_adamw_state():
    memory = estimate_setup(LLAMA_3_70B, preset_setup(BALANCED, 256))
    assert memory.lora_weights // 4 == 207_093_760
    assert (memory.lora_weights + memory.optimizer_state) / 1e9 == pytest.approx(2.5, abs=0.05)  # brief §3


def test_adamw_keeps_two_fp32_states_per_adapter_weight_and_paged_8_bit_adamw_two_bytes():
    adamw = estimate_setup(LLAMA_3_70B, preset_setup(AGGRESSIVE, 256))
    paged = estimate_setup(LLAMA_3_70B, preset_setup(AGGRESSIVE, 256, optimizer="paged_adamw_8bit"))
    assert adamw.optimizer_state == 2 * adamw.lora_weights == 2 * adamw.lora_gradients
    assert paged.optimizer_state * 4 == adamw.optimizer_state


# The published context lengths that fit (Unsloth's benchmarks, "Hugging Face + FA2" column)


def test_about_7k_tokens_of_70b_fit_an_80_gb_card_with_checkpointing_as_unsloth_measured():
    longest = largest_fitting_seq_len(LLAMA_3_70B, unsloth_benchmark(65_536), usable_bytes(80, headroom=0))
    assert 4_000 <= longest <= 12_000
    assert longest == pytest.approx(6_916, rel=0.15)


def test_70b_does_not_fit_a_48_gb_card_as_unsloth_measured():
    assert largest_fitting_seq_len(LLAMA_3_70B, unsloth_benchmark(65_536), usable_bytes(48, headroom=0)) is None


@pytest.mark.parametrize(("card_gb", "published"), [(12, 932), (16, 2_551), (24, 5_789), (40, 12_264),
                                                    (48, 15_502), (80, 28_454)])
def test_8b_context_lengths_that_fit_each_card_match_unsloths_measurements(card_gb, published):
    longest = largest_fitting_seq_len(LLAMA_3_8B, unsloth_benchmark(400_000), usable_bytes(card_gb, headroom=0))
    assert longest == pytest.approx(published, rel=0.15)


def test_8b_does_not_fit_an_8_gb_card_as_unsloth_measured():
    assert largest_fitting_seq_len(LLAMA_3_8B, unsloth_benchmark(400_000), usable_bytes(8, headroom=0)) is None


def test_the_logits_of_a_128k_vocabulary_outweigh_the_checkpoints_per_token():
    memory = estimate_setup(LLAMA_3_8B, unsloth_benchmark(8_192))
    assert memory.logits == 8_192 * 128_256 * 12
    assert memory.logits > memory.activations


# The spec's presets for Llama-3-70B on the 80 GB H100


@pytest.mark.parametrize(("preset", "seq_len", "verdict", "requested_gb", "adjusted_gb"), [
    # The agent's default max_seq_length (256): only Aggressive (micro-batch 1) fits without checkpointing.
    (CONSERVATIVE, 256, Verdict.FIT_AFTER_ADJUSTMENT, 98.2, 47.6),
    (BALANCED, 256, Verdict.FIT_AFTER_ADJUSTMENT, 81.7, 47.9),
    (AGGRESSIVE, 256, Verdict.FIT, 66.6, 66.6),
    # 2,048-token conversations: checkpointing for all; Conservative's micro-batch of 4 must also halve.
    (CONSERVATIVE, 2048, Verdict.FIT_AFTER_ADJUSTMENT, 486.5, 62.3),
    (BALANCED, 2048, Verdict.FIT_AFTER_ADJUSTMENT, 336.1, 65.7),
    (AGGRESSIVE, 2048, Verdict.FIT_AFTER_ADJUSTMENT, 193.8, 58.6),
    # 8,192 tokens: more than a micro-batch of 1 holds, whatever the preset.
    (CONSERVATIVE, 8192, Verdict.UNFIT, 1818.0, 81.8),
    (BALANCED, 8192, Verdict.UNFIT, 1208.3, 86.1),
    (AGGRESSIVE, 8192, Verdict.UNFIT, 630.2, 89.2),
])
def test_each_preset_for_70b_on_the_80_gb_h100_is_judged_with_its_figures(preset, seq_len, verdict, requested_gb,
                                                                             adjusted_gb):
    result = preflight(LLAMA_3_70B, preset_setup(preset, seq_len), GPU_MEMORY_GB)
    assert (result.verdict, result.estimate_gb, result.adjusted_gb) == (verdict, requested_gb, adjusted_gb)
    assert result.usable_gb == 72.0


def test_the_8b_presets_fit_the_80_gb_h100_as_configured_at_256_tokens():
    assert {preflight(LLAMA_3_8B, preset_setup(p, 256), GPU_MEMORY_GB).verdict for p in PRESETS} == {Verdict.FIT}


# The guard's plan


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
@pytest.mark.parametrize("seq_len", [256, 2048, 4096, 8192])
def test_plan_keeps_the_presets_effective_batch(preset, seq_len):
    memory = plan(LLAMA_3_70B, preset_setup(preset, seq_len), GPU_MEMORY_GB)
    assert memory.setup.effective_batch == preset.batch_size * preset.gradient_accumulation_steps


def test_plan_turns_checkpointing_on_before_it_touches_the_batch():
    memory = plan(LLAMA_3_70B, preset_setup(CONSERVATIVE, 2048), GPU_MEMORY_GB)
    assert memory.changes == (
        "Gradient checkpointing turned on: 486.5 GB → 81.8 GB estimated",
        "Micro-batch 4 → 2, gradient accumulation 1 → 2 (effective batch 4 kept): 81.8 GB → 62.3 GB estimated",
    )
    assert (memory.setup.gradient_checkpointing, memory.setup.micro_batch, memory.setup.seq_len) == (True, 2, 2048)


def test_plan_halves_an_odd_micro_batch_to_a_divisor_of_the_effective_batch():
    setup = TrainingSetup(lora_rank=8, target_modules=ALL_SEVEN, micro_batch=9, seq_len=1024,
                          gradient_checkpointing=True)
    memory = plan(LLAMA_3_70B, setup, GPU_MEMORY_GB)
    assert (memory.setup.micro_batch, memory.setup.gradient_accumulation_steps) == (3, 3)  # 4 does not divide 9


def test_plan_changes_nothing_that_already_fits():
    memory = plan(LLAMA_3_8B, preset_setup(BALANCED, 256), GPU_MEMORY_GB)
    assert (memory.changes, memory.setup, memory.verdict) == ((), memory.requested, Verdict.FIT)


def test_plan_caps_the_sequence_length_only_when_told_to():
    setup = preset_setup(CONSERVATIVE, 8192)
    assert plan(LLAMA_3_70B, setup, GPU_MEMORY_GB).setup.seq_len == 8192
    capped = plan(LLAMA_3_70B, setup, GPU_MEMORY_GB, may_cap_seq_len=True)
    assert capped.verdict is Verdict.FIT_AFTER_ADJUSTMENT
    assert capped.changes[-1] == "Sequence length capped at 6,080 tokens (was 8,192): 81.8 GB → 71.7 GB estimated"


def test_an_unfit_plan_offers_the_specs_oom_fixes_that_would_make_it_fit():
    memory = plan(LLAMA_3_70B, preset_setup(BALANCED, 5760), GPU_MEMORY_GB)
    assert memory.verdict is Verdict.UNFIT
    assert memory.fixes == ("Switch to Conservative preset (r=8 instead of r=16)",
                            "Reduce sequence length (if conversations are very long): 5,312 tokens per row fit")


def test_an_unfit_conservative_plan_offers_only_a_shorter_sequence():
    assert plan(LLAMA_3_70B, preset_setup(CONSERVATIVE, 8192), GPU_MEMORY_GB).fixes == (
        "Reduce sequence length (if conversations are very long): 6,080 tokens per row fit",)


def test_a_model_too_large_for_the_card_says_so_instead_of_suggesting_shorter_rows():
    memory = plan(LLAMA_3_70B, preset_setup(CONSERVATIVE, 256), 40)
    assert memory.fixes == ("Even 64 tokens per row do not fit: this model needs a GPU with more memory",)


def test_preflight_messages_carry_the_figures_with_one_decimal():
    messages = [preflight(LLAMA_3_70B, preset_setup(AGGRESSIVE, n), GPU_MEMORY_GB).message for n in (256, 2048, 8192)]
    assert messages[0] == "Fits: 66.6 GB estimated of 72.0 GB usable on the 80 GB GPU"
    assert messages[1] == ("Fits after adjustment: 193.8 GB estimated as configured, 58.6 GB once the agent "
                           "adjusts it, of 72.0 GB usable on the 80 GB GPU")
    assert messages[2] == ("Does not fit: needs about 89.2 GB even after adjustment, more than the 72.0 GB usable "
                           "on the 80 GB GPU. Try: Reduce sequence length (if conversations are very long): "
                           "4,672 tokens per row fit")


def test_fits_leaves_the_headroom_free():
    memory = estimate_setup(LLAMA_3_70B, preset_setup(AGGRESSIVE, 256))  # 66.6 GB
    assert memory.fits(80) and not memory.fits(80, headroom=0.2) and not memory.fits(72)


# Monotonic properties


@pytest.mark.parametrize("checkpointing", [False, True])
@pytest.mark.parametrize("attention", ["sdpa", "flash_attention_2", "eager"])
def test_more_tokens_never_need_less_memory(checkpointing, attention):
    totals = [estimate(LLAMA_3_70B, lora_rank=16, target_modules=ALL_SEVEN, micro_batch=batch, seq_len=seq,
                       gradient_checkpointing=checkpointing, attention=attention).total
              for batch, seq in [(1, 256), (1, 512), (2, 512), (2, 2048), (4, 2048), (4, 8192)]]
    assert totals == sorted(totals) and len(set(totals)) == len(totals)


@pytest.mark.parametrize("shape", [LLAMA_3_8B, LLAMA_3_70B])
@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_checkpointing_always_needs_less_memory(shape, preset):
    assert estimate_setup(shape, preset_setup(preset, 1024, gradient_checkpointing=True)).total < \
        estimate_setup(shape, preset_setup(preset, 1024)).total


def test_a_higher_rank_or_more_target_modules_need_more_memory():
    def total(rank, modules):
        return estimate(LLAMA_3_70B, lora_rank=rank, target_modules=modules, micro_batch=1, seq_len=1024).total
    assert total(8, ALL_SEVEN[:4]) < total(16, ALL_SEVEN[:4]) < total(16, ALL_SEVEN) < total(32, ALL_SEVEN)


def test_eager_attention_grows_with_the_square_of_the_sequence_and_flash_attention_stays_linear():
    def attention_cost(attention, seq_len):
        sdpa = estimate(LLAMA_3_8B, lora_rank=8, target_modules=["q_proj"], micro_batch=1, seq_len=seq_len)
        other = estimate(LLAMA_3_8B, lora_rank=8, target_modules=["q_proj"], micro_batch=1, seq_len=seq_len,
                         attention=attention)
        return other.activations - sdpa.activations
    assert attention_cost("eager", 4096) == 4 * attention_cost("eager", 2048) > 0
    assert attention_cost("flash_attention_2", 4096) == 2 * attention_cost("flash_attention_2", 2048) < 0


def test_lora_dropout_costs_each_adapter_its_own_dropout_output_and_mask():
    with_dropout = preset_setup(BALANCED, 1024, gradient_checkpointing=True)  # lora_dropout 0.1
    without = with_dropout.with_changes(lora_dropout=0.0)
    added = estimate_setup(LLAMA_3_70B, with_dropout).activations - estimate_setup(LLAMA_3_70B, without).activations
    h, i = LLAMA_3_70B.hidden_size, LLAMA_3_70B.intermediate_size
    # 5 bytes × each adapter's input, instead of the 4-byte fp32 inputs the adapters shared without dropout
    assert added == with_dropout.tokens * (5 * (6 * h + i) - 4 * (3 * h + i))


# Settings


def test_settings_read_a_presets_hyperparameters():
    setup = preset_setup(BALANCED, 512)
    assert (setup.lora_rank, setup.target_modules, setup.micro_batch, setup.gradient_accumulation_steps,
            setup.lora_dropout, setup.tokens) == (16, BALANCED.target_modules, 2, 2, 0.1, 1024)


@pytest.mark.parametrize("change", [{"quantization": "int8"}, {"optimizer": "sgd"}, {"attention": "flex"},
                                    {"micro_batch": 0}, {"target_modules": ()}, {"lora_dropout": 1.0}])
def test_an_unsupported_setting_is_refused(change):
    with pytest.raises(UnsupportedSettingError):
        TrainingSetup(**{"lora_rank": 8, "target_modules": ["q_proj"], "micro_batch": 1, "seq_len": 8} | change)


def test_an_unknown_target_module_is_refused_by_name():
    with pytest.raises(ModelShapeError, match="lm_head"):
        estimate(LLAMA_3_8B, lora_rank=8, target_modules=["lm_head"], micro_batch=1, seq_len=8)


def test_parts_add_up_to_the_total_and_are_shown_in_gb():
    memory = estimate_setup(LLAMA_3_70B, preset_setup(BALANCED, 2048, gradient_checkpointing=True))
    assert sum(memory.parts().values()) == memory.total
    assert {name: round(gb, 1) for name, gb in memory.parts_gb().items()} == {
        "base_weights": 40.7, "lora_weights": 0.8, "lora_gradients": 0.8, "optimizer_state": 1.5,
        "activations": 14.5, "logits": 5.9, "overhead": 1.5}


def test_the_memory_model_imports_no_torch():
    code = "import sys, domain.gpu_memory; sys.exit('torch' in sys.modules or 'transformers' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
