"""Hyperparameters asked in OpenAI's terms mapped onto our presets (domain/preset_choice.py), and the
labels and suffix rules a job created through the OpenAI-compatible API keeps (domain/job_metadata.py)."""

from __future__ import annotations

import pytest

from domain.job_metadata import InvalidLabelsError, InvalidSuffixError, clean_labels, clean_suffix
from domain.preset_choice import (
    HyperparameterError,
    PresetChoice,
    RequestedHyperparameters,
    choose_preset,
    effective_batch,
    learning_rate_multiplier,
)
from domain.presets import AGGRESSIVE, BALANCED, CONSERVATIVE, Preset


def everything_unlocked(_: Preset) -> bool:
    return True


def aggressive_locked(preset: Preset) -> bool:
    return preset is not AGGRESSIVE


def test_auto_everywhere_is_the_files_default_preset_unchanged() -> None:
    choice = choose_preset(RequestedHyperparameters(), BALANCED, everything_unlocked)

    assert choice == PresetChoice(BALANCED, {})
    assert choice.hyperparameters == BALANCED.as_config() and choice.epochs == BALANCED.epochs


@pytest.mark.parametrize(("epochs", "unlocked", "chosen"), [
    (2, everything_unlocked, CONSERVATIVE), (3, everything_unlocked, BALANCED), (4, everything_unlocked, AGGRESSIVE),
    (4, aggressive_locked, BALANCED),  # locked: the default, with the epochs overridden
    (7, everything_unlocked, BALANCED),  # no preset has 7: the default
])
def test_the_asked_epochs_pick_the_preset_that_has_them(epochs: int, unlocked, chosen: Preset) -> None:
    choice = choose_preset(RequestedHyperparameters(n_epochs=epochs), BALANCED, unlocked)

    assert choice.preset is chosen and choice.epochs == epochs
    assert choice.overrides == ({} if chosen.epochs == epochs else {"num_train_epochs": epochs})


def test_a_batch_size_keeps_the_presets_examples_per_device_step_at_most_and_accumulates_the_rest() -> None:
    eight = choose_preset(RequestedHyperparameters(batch_size=8), CONSERVATIVE, everything_unlocked)
    six = choose_preset(RequestedHyperparameters(batch_size=6), CONSERVATIVE, everything_unlocked)
    one = choose_preset(RequestedHyperparameters(batch_size=1), BALANCED, everything_unlocked)

    assert eight.overrides == {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 2}
    assert six.overrides == {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 3}
    assert one.overrides == {"per_device_train_batch_size": 1, "gradient_accumulation_steps": 1}
    assert [effective_batch(c.hyperparameters) for c in (eight, six, one)] == [8, 6, 1]
    assert choose_preset(RequestedHyperparameters(batch_size=4), BALANCED, everything_unlocked).overrides == {}


def test_the_learning_rate_multiplier_scales_the_presets_rate_and_reads_back() -> None:
    choice = choose_preset(RequestedHyperparameters(learning_rate_multiplier=0.3, seed=11), BALANCED,
                           everything_unlocked)

    assert choice.overrides == {"learning_rate": 0.00006, "seed": 11}
    assert learning_rate_multiplier(BALANCED, choice.hyperparameters) == 0.3
    assert learning_rate_multiplier(BALANCED, BALANCED.as_config()) == 1.0


def test_a_named_preset_is_kept_and_the_numbers_become_its_overrides() -> None:
    choice = choose_preset(RequestedHyperparameters(n_epochs=2), BALANCED, everything_unlocked, fixed=AGGRESSIVE)

    assert choice.preset is AGGRESSIVE and choice.overrides == {"num_train_epochs": 2}


@pytest.mark.parametrize(("asked", "field", "message"), [
    (RequestedHyperparameters(n_epochs=0), "n_epochs", "n_epochs must be between 1 and 10 (got 0)"),
    (RequestedHyperparameters(batch_size=65), "batch_size", "batch_size must be between 1 and 64 (got 65)"),
    (RequestedHyperparameters(learning_rate_multiplier=0), "learning_rate_multiplier",
     "learning_rate_multiplier must be a number above 0 (got 0)"),
    (RequestedHyperparameters(learning_rate_multiplier=0.001), "learning_rate_multiplier",
     "learning_rate_multiplier 0.001 gives a learning rate of 2e-07 (the Balanced preset's 0.0002 × 0.001),"
     " outside 1e-06 to 0.01"),
    (RequestedHyperparameters(seed=-1), "seed", "seed must be between 0 and 2147483647 (got -1)"),
])
def test_values_out_of_range_are_refused_naming_the_field(asked: RequestedHyperparameters, field: str,
                                                          message: str) -> None:
    with pytest.raises(HyperparameterError) as refused:
        choose_preset(asked, BALANCED, everything_unlocked)

    assert (refused.value.field, str(refused.value)) == (field, message)


def test_labels_take_at_most_16_pairs_of_short_keys_and_string_values() -> None:
    assert clean_labels({"team": "risk", "ticket": "ML-42"}) == {"team": "risk", "ticket": "ML-42"}
    assert clean_labels(None) == {}
    for labels, message in [
        ({f"k{n}": "v" for n in range(17)}, "Metadata may hold at most 16 key-value pairs (got 17)"),
        ({"k" * 65: "v"}, "Metadata key 'kkkkkkkkkkkkkkkkkkkk…' is longer than 64 characters"),
        ({"team": 3}, "Metadata value of 'team' must be a string"),
        ({"team": "x" * 513}, "Metadata value of 'team' is longer than 512 characters (got 513)"),
        ({" ": "x"}, "Metadata keys must be non-empty strings"),
    ]:
        with pytest.raises(InvalidLabelsError) as refused:
            clean_labels(labels)
        assert str(refused.value) == message


def test_a_suffix_is_up_to_64_letters_digits_dots_dashes_and_underscores() -> None:
    assert clean_suffix("advisor-v1.2_b") == "advisor-v1.2_b" and clean_suffix(None) is None
    for bad in ("", "a:b", "x" * 65, "two words"):
        with pytest.raises(InvalidSuffixError):
            clean_suffix(bad)
