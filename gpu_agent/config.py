"""The agent's configuration: environment variables set by the pod provider, validated at start."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domain.values import ArtifactRef
from infra.nats_tls import PlainTextNatsError, client_options
from infra.pod_env import PodEnvError
from infra.pod_env import decode_json as _decode_json

SPEEDUPS = ("liger",)
REQUIRED_HYPERPARAMETERS = ("r", "lora_alpha", "lora_dropout", "target_modules", "learning_rate",
                            "num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps")


class ConfigError(ValueError):
    """The pod's configuration is unusable; the message is one line."""



@dataclass(frozen=True)
class JobSpec:
    """What to train: decoded from PIPELINE_JOB_CONFIG (base64 of a JSON object)."""

    training_file: ArtifactRef
    hyperparameters: dict[str, Any]
    # Validated on instead of a hold-out of the training file, which is then trained on in full (/v1's
    # `validation_file`); None: the 80/20 split of gpu_agent/data.py.
    validation_file: ArtifactRef | None = None
    base_model: str = "tiny"
    qlora: bool = False
    checkpoint_every: int = 100
    seed: int = 42
    max_steps: int = -1
    max_seq_length: int | None = None  # an explicit cap; by default the length comes from the data
    heartbeat_s: float = 5.0
    speedups: tuple[str, ...] = ()  # optional, each measured (docs/gpu-agent.md): "liger"
    # The GPU memory the memory guard plans for where there is no CUDA device (a rehearsal on the CPU, tests);
    # on CUDA the device's own total is used.
    gpu_memory_gb: float | None = None
    # The evaluation stage's suites (FR6.3): the knowledge suite and the client's probe suites, staged
    # into the job's bucket; without any, the stage still measures perplexity on the held-out split.
    knowledge_suite: ArtifactRef | None = None
    probe_suites: tuple[ArtifactRef, ...] = ()
    # The replies both models generate for scoring in the control plane (FR6.2.1, FR6.4.1): the EI
    # scenarios, the brand-voice rubric (its prompts), and how long a reply may be (None: the agent's default,
    # gpu_agent/generation.py) and how many are generated at once.
    ei_suite: ArtifactRef | None = None
    rubric: ArtifactRef | None = None
    max_new_tokens: int | None = None
    generation_batch: int = 8
    # "train", or "evaluate": a re-evaluation of a stored adapter (docs/quality-validation.md), no training.
    mode: str = "train"
    adapter: ArtifactRef | None = None
    fault: str = ""  # test-only fault injection, e.g. "oom_at_step:3"


@dataclass(frozen=True)
class AgentConfig:
    job_id: str
    attempt: int
    nats_url: str
    work_dir: Path
    spec: JobSpec
    resume_from: ArtifactRef | None = None
    nats_options: dict[str, Any] = field(default_factory=dict)
    # Random per pod attempt, part of every message id: another job's pod cannot guess our ids
    # and have JetStream drop our messages as duplicates.
    pod_nonce: str = "0"


def decode_json(value: str, name: str) -> Any:
    try:
        return _decode_json(value, name)
    except PodEnvError as exc:
        raise ConfigError(str(exc)) from None


def load_config(env: Mapping[str, str] = os.environ) -> AgentConfig:
    try:
        job_id = _required(env, "PIPELINE_JOB_ID")
        attempt = int(env.get("PIPELINE_ATTEMPT", "1"))
        raw = decode_json(_required(env, "PIPELINE_JOB_CONFIG"), "PIPELINE_JOB_CONFIG")
        spec = _spec(raw)
        resume = env.get("PIPELINE_RESUME_FROM")
        resume_from = ArtifactRef(**decode_json(resume, "PIPELINE_RESUME_FROM")) if resume else None
        url = _required(env, "NATS_URL")
        options = nats_options(env, url)
        work_dir = Path(env.get("PIPELINE_WORK_DIR", f"/tmp/lora-agent-{job_id}"))
        return AgentConfig(job_id, attempt, url, work_dir, spec, resume_from, options,
                           env.get("PIPELINE_POD_NONCE", "0"))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"invalid agent configuration: {exc}") from None


def nats_options(env: Mapping[str, str], url: str) -> dict[str, Any]:
    """The pod's credentials, and TLS with the server verified (PIPELINE_NATS_CA: the CA's PEM; else the
    system's CAs). Plain text to another machine is refused (infra/nats_tls.py)."""
    options: dict[str, Any] = {k: env[v] for k, v in (("user", "NATS_USER"), ("password", "NATS_PASSWORD"),
                                                      ("token", "NATS_TOKEN"), ("inbox_prefix", "NATS_INBOX_PREFIX"))
                               if env.get(v)}
    try:
        return options | client_options(url, env.get("PIPELINE_NATS_CA") or None)
    except PlainTextNatsError as exc:
        raise ConfigError(str(exc)) from None
    except ssl.SSLError as exc:
        raise ConfigError(f"PIPELINE_NATS_CA is not a PEM certificate ({exc.reason or exc})") from None


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set")
    return value


def _spec(raw: Any) -> JobSpec:
    if not isinstance(raw, dict):
        raise ConfigError("PIPELINE_JOB_CONFIG must be a JSON object")
    hyper = raw.get("hyperparameters")
    if not isinstance(hyper, dict) or (missing := [k for k in REQUIRED_HYPERPARAMETERS if k not in hyper]):
        raise ConfigError(f"hyperparameters missing: {', '.join(missing) if isinstance(hyper, dict) else 'all'}")
    known = {k: raw[k] for k in ("base_model", "qlora", "checkpoint_every", "seed", "max_steps",
                                 "max_seq_length", "heartbeat_s", "gpu_memory_gb", "fault") if k in raw}
    speedups = raw.get("speedups") or []
    if not isinstance(speedups, list) or any(s not in SPEEDUPS for s in speedups):
        raise ConfigError(f"speedups must be a list of some of {list(SPEEDUPS)}, not {speedups!r}")
    evaluation = raw.get("evaluation") or {}
    if not isinstance(evaluation, dict):
        raise ConfigError("evaluation must be a JSON object")
    knowledge = evaluation.get("knowledge")
    mode, adapter = raw.get("mode", "train"), raw.get("adapter")
    if mode not in ("train", "evaluate") or (mode == "evaluate" and not isinstance(adapter, dict)):
        raise ConfigError(f"mode must be 'train' or 'evaluate' (with the adapter to evaluate), not {mode!r}")
    ei, rubric, generation = evaluation.get("ei"), evaluation.get("rubric"), evaluation.get("generation") or {}
    if not isinstance(generation, dict):
        raise ConfigError("evaluation.generation must be a JSON object")
    validation = raw.get("validation_file")
    spec = JobSpec(training_file=ArtifactRef(**raw["training_file"]), hyperparameters=hyper,
                   validation_file=ArtifactRef(**validation) if validation else None,
                   speedups=tuple(speedups), knowledge_suite=ArtifactRef(**knowledge) if knowledge else None,
                   probe_suites=tuple(ArtifactRef(**p) for p in evaluation.get("probes") or ()), mode=mode,
                   adapter=ArtifactRef(**adapter) if isinstance(adapter, dict) else None,
                   ei_suite=ArtifactRef(**ei) if ei else None, rubric=ArtifactRef(**rubric) if rubric else None,
                   max_new_tokens=generation.get("max_new_tokens"), generation_batch=generation.get("batch_size", 8),
                   **known)
    if (spec.max_new_tokens is not None and not 1 <= spec.max_new_tokens <= 4096) or spec.generation_batch < 1:
        raise ConfigError("evaluation.generation needs max_new_tokens from 1 to 4096 and batch_size ≥ 1")
    if spec.checkpoint_every < 1 or (spec.max_seq_length is not None and spec.max_seq_length < 8):
        raise ConfigError("checkpoint_every must be ≥ 1 and max_seq_length ≥ 8")
    if spec.gpu_memory_gb is not None and spec.gpu_memory_gb <= 0:
        raise ConfigError("gpu_memory_gb must be positive")
    return spec
