"""The GPU agent trains on a training file in OpenAI's chat format (JSON Lines of {"messages": [...]}):
the tiny model on the CPU, real nats-server, the same path as our own format (gpu_agent/data.py)."""

from __future__ import annotations

import json

import pytest

from domain.training_file import load
from gpu_agent.data import examples
from infra.embedded import EmbeddedNats
from tests.agent_helpers import (
    agent_env,
    declare_streams,
    of_kind,
    small_training_file,
    spec,
    start_agent,
    telemetry,
    upload,
)

pytestmark = pytest.mark.slow


def as_chat_lines(document: bytes) -> bytes:
    """Our conversations as OpenAI chat lines: the system prompt, then every pair as a turn."""
    lines = []
    for conversation in json.loads(document)["conversations"]:
        pairs = conversation["training_pairs"]
        messages = [{"role": "system", "content": pairs[0]["system_prompt"]}]
        for pair in pairs:
            messages += [{"role": "user", "content": pair["user_input"]},
                         {"role": "assistant", "content": pair["target_response"]}]
        lines.append(json.dumps({"messages": messages}))
    return "\n".join(lines).encode()


def test_a_job_from_openai_chat_lines_trains_on_the_tiny_model_and_counts_its_tokens(tmp_path) -> None:
    data = as_chat_lines(small_training_file(12))
    _, items = examples(data)
    assert len(items) == load(data).training_pair_count == 56  # one example per assistant turn
    assert max(len(e.messages) for e in items) > 3  # later turns carry the conversation before them
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    try:
        declare_streams(server.url)
        ref = upload(server.url, data, tmp_path, name="advisor.jsonl")
        job_spec = spec(ref, max_steps=6, checkpoint_every=3)
        job_spec["hyperparameters"] = job_spec["hyperparameters"] | {"learning_rate": 5e-3}
        process = start_agent(agent_env("chat-job", server.url, job_spec, tmp_path / "work"), tmp_path / "agent.log")
        code = process.wait(240)
        messages = telemetry(server.url, "chat-job")
    finally:
        server.stop()

    assert code == 0, (tmp_path / "agent.log").read_text()[-3000:]
    assert [d["stage"] for d in of_kind(messages, "stage")][:4] == ["preprocessing", "model_loading", "training",
                                                                    "finalization"]
    assert [d["step"] for d in of_kind(messages, "step")] == [1, 2, 3, 4, 5, 6]
    (completed,) = of_kind(messages, "completed")
    assert completed["metrics"]["steps"] == 6 and completed["metrics"]["trained_tokens"] > 0
