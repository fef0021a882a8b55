"""Running the real GPU agent in tests: a small training file in the object store, the agent as a
subprocess (`python -m gpu_agent`) on the CPU with the tiny model, its telemetry read back."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from domain.presets import CONSERVATIVE
from domain.values import ArtifactRef
from infra import bus
from infra.objectstore import ObjectStore
from infra.pod_env import encode_json
from infra.telemetry import Telemetry

SAMPLE = Path(__file__).parents[1] / "samples" / "financial-advisory.json"


def small_training_file(conversations: int = 12) -> bytes:
    doc = json.loads(SAMPLE.read_bytes())
    doc["conversations"] = doc["conversations"][:conversations]
    return json.dumps(doc).encode()


async def _with_js(url: str, body):
    nc = await bus.connect(url, "test-agent-helper")
    try:
        js = nc.jetstream()
        await bus.declare(js)
        return await body(js)
    finally:
        await nc.close()


def declare_streams(url: str) -> None:
    async def nothing(js) -> None:
        return None

    asyncio.run(_with_js(url, nothing))


def upload(url: str, data: bytes, tmp: Path, name: str = "train.json") -> ArtifactRef:
    path = tmp / f"upload-{uuid.uuid4().hex}.json"
    path.write_bytes(data)
    return asyncio.run(_with_js(url, lambda js: ObjectStore(js).put_file("files", f"{uuid.uuid4().hex}/{name}", path)))


def download(url: str, ref: ArtifactRef, path: Path) -> Path:
    return asyncio.run(_with_js(url, lambda js: ObjectStore(js).get_file(ref, path)))


def spec(ref: ArtifactRef, **overrides: Any) -> dict[str, Any]:
    hyper = CONSERVATIVE.as_config() | {"num_train_epochs": 2, "per_device_train_batch_size": 4}
    return {"training_file": ref.as_dict(), "hyperparameters": hyper, "base_model": "tiny", "qlora": False,
            "checkpoint_every": 5, "seed": 7, "max_seq_length": 96, "heartbeat_s": 1.0} | overrides


def agent_env(job_id: str, url: str, job_spec: dict[str, Any], work: Path, attempt: int = 1,
              resume: ArtifactRef | None = None) -> dict[str, str]:
    """The env a provider gives a pod; the job's bucket exists, as staging makes it."""
    asyncio.run(_with_js(url, lambda js: bus.ensure_job_bucket(js, job_id)))
    env = {"PIPELINE_JOB_ID": job_id, "PIPELINE_ATTEMPT": str(attempt), "NATS_URL": url,
           "PIPELINE_JOB_CONFIG": encode_json(job_spec), "PIPELINE_WORK_DIR": str(work),
           "AGENT_THREADS": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    if resume is not None:
        env["PIPELINE_RESUME_FROM"] = encode_json(resume.as_dict())
    return env


def start_agent(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gpu_agent"], env=os.environ | env,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115


def telemetry(url: str, job_id: str) -> list[Telemetry]:
    """Every message of the job on TELEMETRY, in stream order."""

    async def read(js) -> list[Telemetry]:
        info = await js.stream_info("TELEMETRY")
        out = []
        if info.state.messages == 0:
            return out
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg("TELEMETRY", seq)
            if msg.subject.startswith(f"telemetry.{job_id}."):
                out.append(Telemetry.model_validate_json(msg.data))
        return out

    return asyncio.run(_with_js(url, read))


def of_kind(messages: list[Telemetry], kind: str) -> list[dict[str, Any]]:
    return [m.data for m in messages if m.kind == kind]
