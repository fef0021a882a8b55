"""Hyperparameter presets (FR1.1.2): exact parameters, metadata, defaults, the Aggressive lock, VRAM."""

import json

import pytest

from domain.gpu import GPU_MEMORY_GB
from domain.presets import (
    AGGRESSIVE,
    BALANCED,
    CONSERVATIVE,
    DOCS_LINK,
    HYPERPARAMETER_TOOLTIPS,
    LOCKED_TOOLTIP,
    PRESETS,
    InsufficientVramError,
    PresetLockedError,
    RiskLevel,
    UnknownPresetError,
    check_unlocked,
    default_preset,
    is_unlocked,
    preset_named,
    success_rate_text,
)

ATTENTION = ["q_proj", "v_proj", "k_proj", "o_proj"]
ALL_SEVEN = ATTENTION + ["gate_proj", "up_proj", "down_proj"]


def spec_config(r, lr, epochs, batch, accum, alpha, targets, dropout, warmup):
    return {
        "r": r, "learning_rate": lr, "num_train_epochs": epochs, "per_device_train_batch_size": batch,
        "gradient_accumulation_steps": accum, "lora_alpha": alpha, "target_modules": targets,
        "lora_dropout": dropout, "warmup_ratio": warmup, "lr_scheduler_type": "cosine",
    }


@pytest.mark.parametrize(("preset", "expected"), [
    (CONSERVATIVE, spec_config(8, 0.0001, 2, 4, 1, 16, ATTENTION, 0.05, 0.03)),
    (BALANCED, spec_config(16, 0.0002, 3, 2, 2, 32, ALL_SEVEN, 0.1, 0.05)),
    (AGGRESSIVE, spec_config(32, 0.0003, 4, 1, 4, 64, ALL_SEVEN, 0.1, 0.05)),
])
def test_each_preset_applies_exactly_the_spec_parameters(preset, expected):
    assert preset.as_config() == expected


def test_preset_config_is_json_ready_and_round_trips_unchanged():
    for preset in PRESETS:
        config = preset.as_config()
        assert json.loads(json.dumps(config)) == config


def test_presets_are_listed_in_the_cards_order():
    assert [p.name for p in PRESETS] == ["conservative", "balanced", "aggressive"]


def test_descriptions_and_use_cases_are_the_specs_texts():
    assert CONSERVATIVE.description == "Best for high-quality seed datasets and first training runs"
    assert BALANCED.description == "Production-ready configuration for most use cases"
    assert AGGRESSIVE.use_cases == (
        "Complex emotional intelligence, maximum quality, research/experimentation, when budget allows"
    )


def test_risk_levels_rise_with_aggressiveness_and_carry_their_tooltips():
    assert [p.risk for p in PRESETS] == [RiskLevel.LOW, RiskLevel.MEDIUM, RiskLevel.HIGH]
    assert CONSERVATIVE.risk.tooltip == "Minimal OOM risk, proven for most datasets, fastest completion"
    assert AGGRESSIVE.risk.tooltip.startswith("Highest quality potential")


def test_every_card_parameter_has_a_plain_language_tooltip():
    assert set(HYPERPARAMETER_TOOLTIPS) <= set(CONSERVATIVE.as_config())
    assert HYPERPARAMETER_TOOLTIPS["r"].startswith("Rank (r): Number of trainable parameters")
    assert DOCS_LINK == "/docs/hyperparameters-explained"


@pytest.mark.parametrize(("completed", "total", "text"), [
    (124, 127, "98% success rate (based on 127 completed jobs)"),
    (1, 8, "12% success rate (based on 8 completed jobs)"),  # 12.5 rounds half-even
    (0, 0, "No completed jobs yet"),
])
def test_success_rate_badge_comes_from_history_not_a_constant(completed, total, text):
    assert success_rate_text(completed, total) == text


def test_success_rate_rejects_more_successes_than_jobs():
    with pytest.raises(ValueError):
        success_rate_text(5, 4)


@pytest.mark.parametrize(("conversations", "expected"), [
    (50, CONSERVATIVE), (149, CONSERVATIVE), (150, BALANCED), (242, BALANCED), (300, BALANCED),
    (301, AGGRESSIVE), (5000, AGGRESSIVE),
])
def test_default_preset_follows_the_conversation_count(conversations, expected):
    assert default_preset(conversations) is expected


def test_the_default_preset_is_never_a_locked_one_for_a_new_user():
    for conversations in (50, 150, 300, 301, 1000):
        assert is_unlocked(default_preset(conversations), conversations, successful_jobs=0)


@pytest.mark.parametrize(("conversations", "successes", "unlocked"), [
    (242, 0, False), (300, 2, False), (301, 0, True), (242, 3, True), (50, 10, True),
])
def test_aggressive_unlocks_with_a_large_dataset_or_three_successful_runs(conversations, successes, unlocked):
    assert is_unlocked(AGGRESSIVE, conversations, successes) is unlocked


def test_a_locked_aggressive_choice_is_refused_with_the_specs_tooltip():
    with pytest.raises(PresetLockedError, match=LOCKED_TOOLTIP):
        check_unlocked(AGGRESSIVE, conversation_count=242, successful_jobs=2)
    assert LOCKED_TOOLTIP == "Unlock after 3 successful training runs"


def test_conservative_and_balanced_are_never_locked():
    check_unlocked(CONSERVATIVE, 50, 0)
    check_unlocked(BALANCED, 50, 0)


def test_every_preset_fits_the_h100_80gb():
    assert [p.vram_gb for p in PRESETS] == [60, 70, 75]
    for preset in PRESETS:
        preset.check_fits(GPU_MEMORY_GB)


def test_a_gpu_with_too_little_memory_blocks_the_preset():
    with pytest.raises(InsufficientVramError, match="75 GB"):
        AGGRESSIVE.check_fits(48)


def test_presets_are_found_by_name_case_insensitively():
    assert preset_named("Balanced") is BALANCED
    assert preset_named(" aggressive ") is AGGRESSIVE


def test_an_unknown_preset_name_is_a_named_error():
    with pytest.raises(UnknownPresetError, match="turbo"):
        preset_named("turbo")
