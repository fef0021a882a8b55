"""The GPU agent for real: tiny Llama on the CPU, real nats-server, real Trainer, real peft."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import tarfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from domain.values import ArtifactRef
from infra.embedded import EmbeddedNats
from tests.agent_helpers import (
    agent_env,
    declare_streams,
    download,
    of_kind,
    small_training_file,
    spec,
    start_agent,
    telemetry,
    upload,
)
from tests.helpers import wait_for

pytestmark = pytest.mark.slow
FAST_LR = {"learning_rate": 5e-3}


@pytest.fixture(scope="module")
def nats(tmp_path_factory: pytest.TempPathFactory):
    server = EmbeddedNats(tmp_path_factory.mktemp("agent-nats"))
    server.start()
    declare_streams(server.url)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def training_ref(nats, tmp_path_factory):
    return upload(nats.url, small_training_file(12), tmp_path_factory.mktemp("file"))


def job_spec(ref, **overrides):
    base = spec(ref, **overrides)
    base["hyperparameters"] = base["hyperparameters"] | FAST_LR
    return base


def run_agent(nats, tmp: Path, job_spec, job_id=None, attempt=1, resume=None, timeout=240):
    job_id = job_id or str(uuid.uuid4())
    process = start_agent(agent_env(job_id, nats.url, job_spec, tmp / f"work-{attempt}", attempt, resume),
                          tmp / f"agent-{attempt}.log")
    code = process.wait(timeout)
    return job_id, code, telemetry(nats.url, job_id)


def losses(messages, attempt=None) -> dict[int, float]:
    return {m.data["step"]: m.data["loss"] for m in messages if m.kind == "step" and attempt in (None, m.attempt)}


def adapter_weights(nats, ref: dict, tmp: Path) -> bytes:
    archive = download(nats.url, ArtifactRef(**ref), tmp / f"adapter-{uuid.uuid4().hex}.tar")
    with tarfile.open(archive) as tar:
        return tar.extractfile("adapter/adapter_model.safetensors").read()


@pytest.fixture(scope="module")
def reference(nats, training_ref, tmp_path_factory):
    """One uninterrupted run: the yardstick for the resume tests."""
    tmp = tmp_path_factory.mktemp("reference")
    job_id, code, messages = run_agent(nats, tmp, job_spec(training_ref))
    assert code == 0, (tmp / "agent-1.log").read_text()[-3000:]
    return job_id, messages, tmp


def test_a_full_run_reports_every_stage_and_step_once_and_ships_an_adapter_that_beats_the_base(
    nats, training_ref, reference, tmp_path
) -> None:
    from peft import PeftModel

    from gpu_agent.config import JobSpec
    from gpu_agent.data import examples
    from gpu_agent.model import base_model, build_tokenizer

    _, messages, _ = reference
    assert [d["stage"] for d in of_kind(messages, "stage")] == ["preprocessing", "model_loading", "training",
                                                                "finalization", "evaluating"]
    steps = [d["step"] for d in of_kind(messages, "step")]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) == 24
    assert [d["step"] for d in of_kind(messages, "checkpoint")] == [5, 10, 15, 20, 24]
    assert [d["epoch"] for d in of_kind(messages, "epoch")] == [1, 2]
    assert of_kind(messages, "heartbeat")
    (completed,) = of_kind(messages, "completed")
    metrics = completed["metrics"]
    assert metrics["adapter_perplexity"] < metrics["base_perplexity"]
    assert metrics["steps"] == 24

    archive = download(nats.url, ArtifactRef(**completed["adapter"]), tmp_path / "adapter.tar")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path, filter="data")
        names = set(tar.getnames())
    assert {"adapter/adapter_model.safetensors", "adapter/adapter_config.json",
            "adapter/training_summary.json", "adapter/tokenizer_config.json"} <= names
    job = JobSpec(training_file=training_ref, hyperparameters=job_spec(training_ref)["hyperparameters"], seed=7)
    _, items = examples(small_training_file(12))
    tokenizer = build_tokenizer(job, [m["content"] for e in items for m in e.messages])
    loaded = PeftModel.from_pretrained(base_model(job, tokenizer, tmp_path), tmp_path / "adapter")
    assert loaded.peft_config["default"].r == 8


def test_the_validation_series_holds_only_the_trained_model_and_the_baseline_has_its_own_fields(reference) -> None:
    _, messages, _ = reference
    evals = of_kind(messages, "eval")
    (completed,) = of_kind(messages, "completed")
    metrics = completed["metrics"]
    last = max(e["step"] for e in evals)
    # Every validation point is the adapter's: the last ones give the adapter's perplexity, never the base's.
    assert {round(math.exp(e["eval_loss"]), 6) for e in evals if e["step"] == last} == {
        round(metrics["adapter_perplexity"], 6)}
    assert metrics["base_eval_loss"] == pytest.approx(math.log(metrics["base_perplexity"]))
    assert metrics["final_eval_loss"] == pytest.approx(math.log(metrics["adapter_perplexity"]))


def test_a_tiny_model_jobs_deployment_package_holds_its_base_and_runs(nats, reference, tmp_path) -> None:
    import zipfile

    from domain.applications import BudgetPolicy, Pipeline
    from tests.factories import queue_sample_job
    from web.deployment.package import build

    _, messages, _ = reference
    (completed,) = of_kind(messages, "completed")
    archive = download(nats.url, ArtifactRef(**completed["adapter"]), tmp_path / "adapter.tar")
    app = Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=BudgetPolicy(default_limit=5000))
    job = app.get_job(queue_sample_job(app))
    package = build(job, archive, None, tmp_path / "package.zip", datetime.now(timezone.utc))
    with zipfile.ZipFile(package) as zipped:
        zipped.extractall(tmp_path / "unzipped")
    config = json.loads((tmp_path / "unzipped" / "adapters" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "base_model"
    assert (tmp_path / "unzipped" / "base_model" / "config.json").is_file()
    answer = subprocess.run([sys.executable, "inference.py", "How big should my emergency fund be?",
                             "--max-tokens", "6", "--temperature", "0"], cwd=tmp_path / "unzipped",
                            capture_output=True, text=True, timeout=300)
    assert answer.returncode == 0, answer.stderr[-3000:]


def test_the_evaluation_stage_scores_the_suites_and_a_preempted_evaluation_resumes_to_the_same_figures(
    nats, training_ref, tmp_path
) -> None:
    from dataclasses import replace

    from domain.quality.results import parse, summary

    root = Path(__file__).resolve().parents[2]
    knowledge = upload(nats.url, (root / "samples" / "suites" / "financial-knowledge.jsonl").read_bytes(), tmp_path,
                       "financial-knowledge.jsonl")
    probes = upload(nats.url, b"id,category,question,A,B,C,D,answer,critical\n"
                              b"p1,compliance,Who regulates broker-dealers?,NASA,FINRA,NOAA,FIFA,B,true\n",
                    tmp_path, "acme-probes.csv")
    suites = {"evaluation": {"knowledge": knowledge.as_dict(), "probes": [probes.as_dict()]}}

    def results(messages, attempt):
        (completed,) = of_kind(messages, "completed")
        path = download(nats.url, ArtifactRef(**completed["evaluation"]), tmp_path / f"results-{attempt}.json")
        return parse(path.read_bytes())

    job_id, code, messages = run_agent(nats, tmp_path, job_spec(training_ref, **suites))
    assert code == 0, (tmp_path / "agent-1.log").read_text()[-3000:]
    assert "evaluating" in [d["stage"] for d in of_kind(messages, "stage")]
    assert {d["part"] for d in of_kind(messages, "evaluation")} >= {"perplexity", "financial-knowledge.jsonl"}
    first = results(messages, 1)
    assert first.knowledge is not None and len(first.knowledge.answers) == 100 and first.samples
    assert [p.suite for p in first.probes] == ["acme-probes.csv"] and summary(first)["outcome"] in {
        "pass", "review", "block"}

    (tmp_path / "again").mkdir()
    stopped, code, messages = run_agent(nats, tmp_path / "again",
                                        job_spec(training_ref, fault="sigterm_in_evaluation:1", **suites))
    assert code == 143, (tmp_path / "again" / "agent-1.log").read_text()[-3000:]
    (interrupted,) = of_kind(messages, "interrupted")
    resume = ArtifactRef(**interrupted["checkpoint"])  # the trained adapter's last checkpoint
    _, code, messages = run_agent(nats, tmp_path / "again", job_spec(training_ref, **suites), stopped, attempt=2,
                                  resume=resume)
    assert code == 0, (tmp_path / "again" / "agent-2.log").read_text()[-3000:]
    resumed = results(messages, 2)
    assert replace(resumed, job_id=first.job_id, attempt=1) == first  # the same item-level results, bit for bit


def test_a_re_evaluation_scores_a_stored_adapter_as_its_training_run_did(nats, training_ref, reference,
                                                                        tmp_path) -> None:
    from dataclasses import replace

    from domain.quality.results import parse

    _, ref_messages, _ = reference
    (trained,) = of_kind(ref_messages, "completed")
    mode = {"mode": "evaluate", "adapter": trained["adapter"]}
    _, code, messages = run_agent(nats, tmp_path, job_spec(training_ref, **mode))
    assert code == 0, (tmp_path / "agent-1.log").read_text()[-3000:]
    assert [d["stage"] for d in of_kind(messages, "stage")] == ["preprocessing", "model_loading", "evaluating"]
    assert not of_kind(messages, "step")  # nothing trained
    (completed,) = of_kind(messages, "completed")
    assert "adapter" not in completed

    def results(done, name):
        return parse(download(nats.url, ArtifactRef(**done["evaluation"]), tmp_path / name).read_bytes())

    again, original = results(completed, "again.json"), results(trained, "original.json")
    assert replace(again, job_id=original.job_id) == original  # the same figures, bit for bit


@pytest.mark.parametrize("where", ["a random step", "the last step of an epoch"])
def test_sigterm_at_a_random_step_then_resume_matches_an_uninterrupted_run_bit_for_bit(
    nats, training_ref, reference, tmp_path, where
) -> None:
    ref_job, ref_messages, ref_tmp = reference
    stop_at = 12 if where == "the last step of an epoch" else random.Random().randint(2, 22)
    job_id, code, messages = run_agent(nats, tmp_path, job_spec(training_ref, fault=f"sigterm_at_step:{stop_at}"))
    assert code == 143, f"stop at {stop_at}: " + (tmp_path / "agent-1.log").read_text()[-2000:]
    (interrupted,) = of_kind(messages, "interrupted")
    assert interrupted["step"] == stop_at and interrupted["emergency_checkpoint"], interrupted
    resume = ArtifactRef(**interrupted["checkpoint"])
    job_id, code, messages = run_agent(nats, tmp_path, job_spec(training_ref), job_id, attempt=2, resume=resume)
    assert code == 0, (tmp_path / "agent-2.log").read_text()[-3000:]
    resumed = losses(messages, attempt=2)
    assert min(resumed) == stop_at + 1  # 0 steps lost
    expected = losses(ref_messages)
    assert resumed == {s: expected[s] for s in resumed}
    (completed,) = of_kind(messages, "completed")
    (ref_completed,) = of_kind(ref_messages, "completed")
    assert adapter_weights(nats, completed["adapter"], tmp_path) == adapter_weights(nats, ref_completed["adapter"],
                                                                                      ref_tmp)


def test_sigkill_loses_at_most_the_steps_since_the_last_checkpoint_and_resumes_identically(
    nats, training_ref, reference, tmp_path
) -> None:
    _, ref_messages, _ = reference
    job_id, code, messages = run_agent(nats, tmp_path, job_spec(training_ref, fault="sigkill_at_step:13"))
    assert code == -9
    assert not of_kind(messages, "interrupted")  # no chance to say anything
    checkpoints = of_kind(messages, "checkpoint")
    latest = max(checkpoints, key=lambda c: c["step"])
    assert 13 - latest["step"] <= 5
    job_id, code, messages = run_agent(nats, tmp_path, job_spec(training_ref), job_id, attempt=2,
                                       resume=ArtifactRef(**latest["checkpoint"]))
    assert code == 0
    resumed = losses(messages, attempt=2)
    assert min(resumed) == latest["step"] + 1
    assert resumed == {s: losses(ref_messages)[s] for s in resumed}


def test_a_malformed_training_file_fails_in_preprocessing_with_the_exact_place(nats, tmp_path) -> None:
    broken = (Path(__file__).parents[2] / "samples" / "broken-missing-target.json").read_bytes()
    ref = upload(nats.url, broken, tmp_path)
    _, code, messages = run_agent(nats, tmp_path, job_spec(ref))
    assert code == 1
    (failed,) = of_kind(messages, "failed")
    assert (failed["failure_type"], failed["stage"]) == ("dataset_format", "preprocessing")
    assert failed["details"]["place"] == "conversations[1].training_pairs[1].target_response"
    assert failed["details"]["problem"] == "Training pair #4 (conversation conv_abc123) is missing 'target_response'"


def test_out_of_memory_fails_typed_with_the_suggested_fixes(nats, training_ref, tmp_path) -> None:
    _, code, messages = run_agent(nats, tmp_path, job_spec(training_ref, fault="oom_at_step:2"))
    assert code == 1
    (failed,) = of_kind(messages, "failed")
    assert failed["failure_type"] == "oom" and "out of memory" in failed["message"]
    assert failed["details"]["suggested_fixes"][0] == "Reduce batch_size to 2 (recommended)"


def test_a_bad_configuration_is_refused_with_one_line_and_a_failed_message(nats, tmp_path) -> None:
    import os
    import subprocess
    import sys

    job_id = str(uuid.uuid4())
    env = {"PIPELINE_JOB_ID": job_id, "NATS_URL": nats.url, "PIPELINE_JOB_CONFIG": "not base64!"}
    result = subprocess.run([sys.executable, "-m", "gpu_agent"], env=os.environ | env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "gpu_agent: error: PIPELINE_JOB_CONFIG is not base64-encoded JSON (Only base64 data is allowed)"]
    (failed,) = of_kind(telemetry(nats.url, job_id), "failed")
    assert failed["stage"] == "configuration"


def test_the_qlora_path_trains_in_4_bit_and_resumes_identically(nats, training_ref, tmp_path) -> None:
    qlora = job_spec(training_ref, qlora=True, max_steps=10)
    (tmp_path / "reference").mkdir()
    _, code, ref_messages = run_agent(nats, tmp_path / "reference", qlora)
    assert code == 0
    job_id, code, messages = run_agent(nats, tmp_path, qlora | {"fault": "sigterm_at_step:4"})
    assert code == 143
    (interrupted,) = of_kind(messages, "interrupted")
    _, code, messages = run_agent(nats, tmp_path, qlora, job_id, attempt=2,
                                  resume=ArtifactRef(**interrupted["checkpoint"]))
    assert code == 0
    resumed = losses(messages, attempt=2)
    assert sorted(resumed) == list(range(5, 11))
    assert resumed == {s: losses(ref_messages)[s] for s in resumed}


def test_nats_down_for_a_while_mid_run_loses_no_step_and_counts_none_twice(training_ref, tmp_path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    try:
        ref = upload(server.url, small_training_file(40), tmp_path)
        job_id = str(uuid.uuid4())
        longer = job_spec(ref, checkpoint_every=20) | {"hyperparameters": job_spec(ref)["hyperparameters"] | {
            "num_train_epochs": 3, "per_device_train_batch_size": 2}}
        process = start_agent(agent_env(job_id, server.url, longer, tmp_path / "work"), tmp_path / "agent.log")
        wait_for(lambda: any(m.kind == "step" for m in telemetry(server.url, job_id)), timeout=120,
                 message="training to start")
        server.stop()
        time.sleep(3)
        server.start()
        assert process.wait(300) == 0, (tmp_path / "agent.log").read_text()[-3000:]
        messages = telemetry(server.url, job_id)
        steps = [d["step"] for d in of_kind(messages, "step")]
        assert steps == list(range(1, len(steps) + 1)) and len(steps) > 60
        assert [m.seq for m in messages] == list(range(1, len(messages) + 1))
        assert len(of_kind(messages, "completed")) == 1
        assert b"NATS reconnected after" in (tmp_path / "agent.log").read_bytes()  # the outage did happen mid-run
    finally:
        server.stop()


def test_the_training_stage_reports_the_cut_and_the_masked_share_and_each_step_its_useful_tokens(reference) -> None:
    """Issue #17: the sequence length comes from the data (here capped by the job's max_seq_length of 96), the
    cut is counted, the loss is on the assistant's answers only, and padding costs under 5 % of the compute."""
    _, messages, _ = reference
    (training,) = [d for d in of_kind(messages, "stage") if d["stage"] == "training"]
    data = training["data"]
    assert (data["seq_len"], data["decided_by"]) == (96, "max_seq_length") and data["longest"] > 96
    assert data["truncated_examples"] > 0 and data["most_cut"] == data["longest"] - 96
    assert 0.3 < data["masked_share"] < 0.7  # system and user tokens: no loss on them
    assert training["memory"]["guarded"] is False  # a CPU pod without a nominal GPU memory
    steps = of_kind(messages, "step")
    assert all(s["useful_tokens"] <= s["processed_tokens"] and s["step_time_s"] > 0 for s in steps)
    assert sum(s["useful_tokens"] for s in steps) / sum(s["processed_tokens"] for s in steps) >= 0.95
    (completed,) = of_kind(messages, "completed")
    assert completed["metrics"]["trained_tokens"] == sum(s["useful_tokens"] for s in steps)  # padding not counted


def test_the_memory_guard_turns_on_checkpointing_and_halves_the_micro_batch_keeping_the_effective_batch(
    nats, training_ref, tmp_path
) -> None:
    """A nominal GPU memory (the CPU has none) between the memory model's estimates for the tiny model with
    checkpointing at micro-batch 4 and at micro-batch 2: the guard must make both changes, and says so."""
    from domain.gpu_memory import DEFAULT_HEADROOM, GB, ModelShape, estimate_setup
    from gpu_agent.config import JobSpec
    from gpu_agent.data import examples
    from gpu_agent.memory import setup_for
    from gpu_agent.model import build_tokenizer, model_config

    job = JobSpec(training_file=training_ref, hyperparameters=job_spec(training_ref)["hyperparameters"], seed=7)
    _, items = examples(small_training_file(12))
    tokenizer = build_tokenizer(job, [m["content"] for e in items for m in e.messages])
    shape = ModelShape.from_config(model_config(job, tokenizer).to_dict())
    checkpointed = setup_for(job, 96, "cpu", "sdpa").with_changes(gradient_checkpointing=True)
    halved = checkpointed.with_changes(micro_batch=2, gradient_accumulation_steps=2)
    between = (estimate_setup(shape, checkpointed).total + estimate_setup(shape, halved).total) / 2
    _, code, messages = run_agent(nats, tmp_path, job_spec(training_ref, max_steps=4,
                                                           gpu_memory_gb=between / (1 - DEFAULT_HEADROOM) / GB))
    assert code == 0, (tmp_path / "agent-1.log").read_text()[-3000:]
    (training,) = [d for d in of_kind(messages, "stage") if d["stage"] == "training"]
    memory = training["memory"]
    assert (memory["gradient_checkpointing"], memory["micro_batch"], memory["gradient_accumulation_steps"]) == (
        True, 2, 2)
    assert [c.split(":")[0] for c in memory["changes"]] == [
        "Gradient checkpointing turned on", "Micro-batch 4 → 2, gradient accumulation 1 → 2 (effective batch 4 kept)"]
    assert [d["step"] for d in of_kind(messages, "step")] == [1, 2, 3, 4]


def test_a_validation_file_is_validated_on_the_whole_training_file_trained_on_and_a_resume_matches(
    nats, training_ref, tmp_path
) -> None:
    """OpenAI's `validation_file`: no hold-out of the training file; the eval losses and the held-out
    perplexity are the validation file's own conversations; SIGTERM and resume still give the same run."""
    from domain.quality.results import parse
    from gpu_agent.data import examples
    from tests.agent_helpers import SAMPLE

    doc = json.loads(SAMPLE.read_bytes())
    doc["conversations"] = doc["conversations"][40:43]  # none of the training file's 12
    held_out = json.dumps(doc).encode()
    with_validation = job_spec(training_ref, validation_file=upload(nats.url, held_out, tmp_path, "val.json").as_dict())
    training_file, trained_on = examples(small_training_file(12))
    validation_file, validated_on = examples(held_out)
    validation_ids = {c.id for c in validation_file.conversations}
    assert validation_ids.isdisjoint(c.id for c in training_file.conversations)

    (tmp_path / "whole").mkdir()
    _, code, messages = run_agent(nats, tmp_path / "whole", with_validation)
    assert code == 0, (tmp_path / "whole" / "agent-1.log").read_text()[-3000:]
    (training,) = [d for d in of_kind(messages, "stage") if d["stage"] == "training"]
    assert training["status"] == f"Training {len(trained_on)} examples, validating on {len(validated_on)}..."
    (completed,) = of_kind(messages, "completed")
    results = parse(download(nats.url, ArtifactRef(**completed["evaluation"]), tmp_path / "results.json").read_bytes())
    assert results.samples and {s.id for s in results.samples} <= validation_ids  # the perplexity: its conversations
    evals = {e["step"]: e["eval_loss"] for e in of_kind(messages, "eval")}
    assert evals

    (tmp_path / "resumed").mkdir()
    job_id, code, stopped = run_agent(nats, tmp_path / "resumed", with_validation | {"fault": "sigterm_at_step:7"})
    assert code == 143, (tmp_path / "resumed" / "agent-1.log").read_text()[-3000:]
    (interrupted,) = of_kind(stopped, "interrupted")
    _, code, again = run_agent(nats, tmp_path / "resumed", with_validation, job_id, attempt=2,
                               resume=ArtifactRef(**interrupted["checkpoint"]))
    assert code == 0, (tmp_path / "resumed" / "agent-2.log").read_text()[-3000:]
    assert losses(again, attempt=2) == {s: loss for s, loss in losses(messages).items() if s > 7}
    assert {e["step"]: e["eval_loss"] for e in of_kind(again, "eval") if e["step"] > 7} == {
        s: loss for s, loss in evals.items() if s > 7}
    (done,) = of_kind(again, "completed")
    assert adapter_weights(nats, done["adapter"], tmp_path) == adapter_weights(nats, completed["adapter"], tmp_path)
