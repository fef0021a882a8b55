"""Issue #17: the control plane's estimate of a file's example lengths, what a sequence length cuts, and the length
the agent's memory guard would train with (domain/training_file/lengths.py, domain/gpu_memory/lengths.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from domain.gpu_memory import LLAMA_3_70B, TrainingSetup, plan
from domain.gpu_memory.job_check import MemoryCheck
from domain.gpu_memory.lengths import trained_length
from domain.presets import BALANCED
from domain.training_file import TrainingPair, summarize
from domain.training_file.lengths import COVERAGE, Cut, LengthDistribution, covering_length, estimated_tokens

SAMPLE = Path(__file__).parents[2] / "samples" / "financial-advisory.json"
HYPER = BALANCED.as_config()


def test_an_example_is_estimated_at_four_characters_a_token_plus_the_chat_templates_tokens() -> None:
    pair = TrainingPair(system_prompt="s" * 40, user_input="u" * 81, target_response="a" * 400,
                        context=(("assistant", "c" * 8),))
    # 1 for the example, 5 per message (system, context, user, assistant), and each text rounded up
    assert estimated_tokens(pair) == 1 + 4 * 5 + 10 + 2 + 21 + 100
    assert estimated_tokens(dataclasses.replace(pair, system_prompt="", context=())) == 1 + 2 * 5 + 21 + 100


def test_the_covering_length_fits_99_percent_of_the_examples_and_the_cut_counts_the_rest() -> None:
    lengths = LengthDistribution.of([100] * 990 + [300] * 5 + [2_000] * 5)
    assert lengths.counts == ((100, 990), (300, 5), (2_000, 5)) and lengths.examples == 1_000
    assert lengths.longest == 2_000 and lengths.covering_length() == 100 == covering_length([100] * 99 + [900])
    assert COVERAGE == 0.99 and LengthDistribution.of([100] * 985 + [300] * 15).covering_length() == 300
    cut = lengths.cut_at(256)
    assert cut == Cut(seq_len=256, examples=10, total=1_000, most_tokens=1_744) and cut.percent == 1.0
    assert lengths.cut_at(2_000).examples == 0 and lengths.cut_at(2_000).warning is None


def test_the_warning_says_how_many_examples_lose_how_much_and_what_to_do() -> None:
    warning = Cut(seq_len=4_096, examples=12, total=2_400, most_tokens=9_500).warning
    assert warning is not None
    assert "About 12 of 2,400 examples (0.5 %) are longer than the 4,096 tokens" in warning
    assert "up to about 9,500 tokens" in warning and "Shorten or split those examples" in warning
    assert "preset with a smaller batch" in warning and "estimated from characters" in warning
    assert "(under 0.1 %)" in (Cut(100, 1, 5_000, 7).warning or "")


def test_lengths_round_trip_through_a_files_stored_statistics() -> None:
    lengths = LengthDistribution.of([5, 7, 7])
    stored = [list(pair) for pair in lengths.counts]  # as the event and the read model keep them
    assert LengthDistribution.stored(stored) == lengths
    assert LengthDistribution.stored(None) is None and LengthDistribution.stored([]) is None


def test_a_files_statistics_keep_the_estimated_length_of_every_training_pair() -> None:
    stats = summarize(SAMPLE.read_bytes())
    lengths = LengthDistribution.stored(stats.example_tokens)
    assert lengths is not None and lengths.examples == stats.training_pair_count
    assert 50 < lengths.covering_length() <= lengths.longest < 2_048


def test_the_guard_keeps_every_example_whole_when_the_tail_needs_no_stricter_settings() -> None:
    setup = TrainingSetup.from_hyperparameters(HYPER, seq_len=2_048)
    assert trained_length(LLAMA_3_70B, setup, 80.0, whole=900, covering=400) == 900
    assert trained_length(LLAMA_3_70B, setup, 80.0, whole=400, covering=400) == 400


def test_a_tail_too_long_for_the_gpu_is_cut_at_the_covering_length_or_what_memory_allows() -> None:
    setup = TrainingSetup.from_hyperparameters(HYPER, seq_len=2_048)
    assert trained_length(LLAMA_3_70B, setup, 80.0, whole=200_000, covering=1_000) == 1_000
    memory_cap = plan(LLAMA_3_70B, setup.with_changes(seq_len=200_000), 80.0, may_cap_seq_len=True).setup.seq_len
    assert 1_000 < memory_cap < 200_000
    assert trained_length(LLAMA_3_70B, setup, 80.0, whole=300_000, covering=200_000) == memory_cap


def test_the_memory_check_caps_at_max_seq_length_and_takes_every_example_of_an_unknown_model() -> None:
    llama = MemoryCheck("meta-llama/Meta-Llama-3-70B-Instruct", qlora=True, gpu_memory_gb=80.0)
    assert llama.trained_length(HYPER, whole=200_000, covering=1_000) == 1_000
    assert llama.trained_length(HYPER | {"max_seq_length": 512}, whole=900, covering=400) == 512
    assert MemoryCheck("tiny", qlora=False).trained_length(HYPER, whole=200_000, covering=1_000) == 200_000
    assert MemoryCheck("tiny", qlora=False).trained_length(HYPER | {"max_seq_length": 256}, 900, 400) == 256


@pytest.mark.parametrize(("whole", "covering"), [(900, 400), (3_000, 100), (112, 100), (200_000, 1_000),
                                                 (300_000, 200_000), (400, 400)])
def test_the_length_judged_before_launch_is_the_one_the_agents_guard_picks(whole: int, covering: int) -> None:
    pytest.importorskip("torch")
    from gpu_agent.config import JobSpec
    from gpu_agent.memory import guard_lengths, setup_for

    spec = JobSpec(training_file=None, hyperparameters=HYPER, seed=7, qlora=True)  # type: ignore[arg-type]
    config = {"hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80, "num_attention_heads": 64,
              "num_key_value_heads": 8, "vocab_size": 128256}  # Llama-3-70B's config.json
    chosen, _ = guard_lengths(spec, config, [(whole, "data"), (covering, "data")], "cuda", "sdpa", 80.0)
    judged = trained_length(LLAMA_3_70B, setup_for(spec, whole, "cuda", "sdpa"), 80.0, whole, covering)
    assert judged == chosen.settings.seq_len
