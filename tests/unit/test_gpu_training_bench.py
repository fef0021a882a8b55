"""bench/gpu_training.py keeps working (issue #17): on the CPU it runs the agent's training path and the bare
loop on the tiny shape, and reports the ratio; the GPU shapes run the same code on a lent GPU."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import gpu_training  # noqa: E402


def test_the_gpu_training_benchmark_runs_the_tiny_shape_on_the_cpu_and_reports_agent_over_bare(tmp_path,
                                                                                              capsys) -> None:
    out = gpu_training.main(["--shapes", "tiny", "--steps", "4", "--warmup", "1", "--examples", "120",
                             "--json", str(tmp_path / "r.json")])
    (tiny,) = out["shapes"]
    rows = {row["variant"]: row for row in tiny["rows"]}
    assert rows["bare"]["tokens_per_s"] > 0 and rows["agent"]["tokens_per_s"] > 0
    assert tiny["agent_over_bare_percent"] > 0  # a ratio, never a timing assertion
    assert rows["agent"]["useful_share"] == rows["bare"]["useful_share"] > 0.9  # the same batches
    assert "CUDA" in rows["agent+liger"]["skipped"]
    assert "agent / bare:" in capsys.readouterr().out and (tmp_path / "r.json").is_file()


def test_the_70b_shape_is_a_subset_of_its_layers_and_the_model_flops_follow_the_shape() -> None:
    from domain.gpu_memory import LLAMA_3_70B

    class Tokens:
        pad_token_id, bos_token_id, eos_token_id = 0, 1, 2

    config = gpu_training.shape_config("llama3-70b-4", Tokens())
    assert config["num_hidden_layers"] == 4 and config["hidden_size"] == LLAMA_3_70B.hidden_size
    per_token = gpu_training.flops_per_token(LLAMA_3_70B, 1024)
    assert 4 * 70e9 < per_token < 4 * 72e9 + 12 * 80 * 8192 * 1024
