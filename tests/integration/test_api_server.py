"""FR4.3.2's inference server, run as a client would run it: the deployment package is built from a
real tiny base with its base bundled in base_model/ (as the agent bundles a tiny base) and a real
LoRA adapter, unzipped, and `python api_server/app.py` started in a fresh process. Every endpoint is
called — streaming too, a bad key, an over-long prompt, a burst past the rate limit — and the
official OpenAI client talks to its `/v1`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from domain.applications import BudgetPolicy, Pipeline
from infra.embedded import free_port
from tests.factories import queue_sample_job
from tests.integration.test_deployment_package import SAMPLE, tiny_adapter
from web.deployment.package import build, file_name, model_id

AT = datetime(2026, 11, 25, 9, 30, tzinfo=timezone.utc)
KEY, BURST_KEY = "key-for-the-tests-0123456789", "key-for-the-burst-9876543210"
LIMIT = 12


def bundled_adapter(tmp: Path) -> Path:
    """The tiny adapter re-packed as gpu_agent/finalize.py packs a tiny base's: `base_model/` inside."""
    from gpu_agent.finalize import bundle_tiny_base

    archive = tiny_adapter(tmp)
    unpacked = tmp / "unpacked"
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    bundle_tiny_base(unpacked / "adapter", tmp / "base")
    shutil.rmtree(tmp / "base")  # only the bundled copy is left: the package must hold its base
    repacked = tmp / "bundled.tar"
    with tarfile.open(repacked, "w") as tar:
        tar.add(unpacked / "adapter", arcname="adapter")
    return repacked


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """One package for the module (building the tiny base and adapter takes seconds)."""
    tmp = tmp_path_factory.mktemp("api-package")
    app = Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=BudgetPolicy(default_limit=5000))
    job = app.get_job(queue_sample_job(app, name="Advisor tone v3"))
    return build(job, bundled_adapter(tmp), SAMPLE.read_bytes(), tmp / file_name(job), AT), job


@pytest.fixture(scope="module")
def server(package: tuple[Path, Any],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path, subprocess.Popen]]:
    tmp = tmp_path_factory.mktemp("api-server")
    built, job = package
    unzipped = tmp / "unzipped"
    zipfile.ZipFile(built).extractall(unzipped)
    port = free_port()
    log = (tmp / "server.log").open("w")
    env = {**os.environ, "API_KEYS": f"{KEY},{BURST_KEY}", "PORT": str(port), "HOST": "127.0.0.1",
           "RATE_LIMIT_PER_MINUTE": str(LIMIT), "MAX_PROMPT_CHARS": "500", "OMP_NUM_THREADS": "1"}
    env.pop("PACKAGE_DIR", None)
    process = subprocess.Popen([sys.executable, "api_server/app.py"], cwd=unzipped, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    while time.monotonic() - started < 180:
        if process.poll() is not None:
            pytest.fail(f"the server exited: {(tmp / 'server.log').read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        pytest.fail("the server did not start in 180 s")
    try:
        yield base, str(job.id), tmp / "server.log", process
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_the_package_holds_the_api_server_the_spec_lists(package: tuple[Path, Any]) -> None:
    built, job = package
    package = zipfile.ZipFile(built)
    names = set(package.namelist())
    assert "base_model/config.json" in names and "adapters/adapter_model.safetensors" in names
    assert {"api_server/app.py", "api_server/Dockerfile", "api_server/docker-compose.yml",
            "api_server/deploy_guide.md", "api_server/requirements.txt", ".dockerignore"} <= names
    compose = yaml.safe_load(package.read("api_server/docker-compose.yml"))
    service = compose["services"]["api"]
    assert service["build"] == {"context": "..", "dockerfile": "api_server/Dockerfile"}
    assert service["ports"] == ["8000:8000"] and "API_KEYS" in service["environment"]
    gpu = yaml.safe_load(package.read("api_server/docker-compose.gpu.yml"))
    assert gpu["services"]["api"]["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    dockerfile = package.read("api_server/Dockerfile").decode()
    assert 'CMD ["python", "api_server/app.py"]' in dockerfile and "/api/v1/health" in dockerfile
    requirements = package.read("api_server/requirements.txt").decode().splitlines()
    pinned = [r for r in requirements if r and not r.startswith(("#", "-r"))]
    assert "-r ../requirements.txt" in requirements and all("==" in r for r in pinned)
    guide = package.read("api_server/deploy_guide.md").decode()
    for part in ("docker-compose up", "AWS ECS", "GCP Cloud Run", "Azure Container Instances", "A10G", "H100",
                 "Kubernetes", "--enable-lora", "--lora-modules", "--max-lora-rank", "VLLM_ALLOW_RUNTIME_LORA_UPDATING",
                 'curl -X POST http://localhost:8000/api/v1/chat', f'model="{model_id(job.name)}"'):
        assert part in guide, part
    assert "{{" not in guide and "(this one: 16)" in guide  # the job's balanced preset: r=16
    readme = package.read("README.md").decode()
    assert "api_server/" in readme and "python api_server/app.py" in readme


@pytest.mark.slow
def test_every_endpoint_answers_with_its_checks_and_the_openai_client_works(server) -> None:
    base, job_id, log_file, _ = server
    health = httpx.get(f"{base}/api/v1/health")
    assert health.status_code == 200 and health.json()["status"] == "ok" and health.json()["model"] == "advisor-tone-v3"
    missing = httpx.get(f"{base}/api/v1/model-info")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json() == {"detail": "Missing or invalid API key: send Authorization: Bearer <key>",
                              "error": "invalid_api_key"}
    assert httpx.get(f"{base}/api/v1/model-info", headers=auth("wrong")).status_code == 401
    info = httpx.get(f"{base}/api/v1/model-info", headers=auth()).json()
    assert info["job_id"] == job_id and info["job_name"] == "Advisor tone v3" and info["preset"] == "balanced"
    assert info["base_model"].endswith("base_model") and info["adapter"]["r"] == 4
    assert info["limits"] == {"max_prompt_chars": 500, "max_tokens": 1024, "rate_limit_per_minute": LIMIT}

    chat = httpx.post(f"{base}/api/v1/chat", headers=auth(), timeout=60,
                      json={"prompt": "Explain asset allocation", "max_tokens": 6, "temperature": 0})
    assert chat.status_code == 200, chat.text
    answer = chat.json()
    assert isinstance(answer["response"], str) and answer["model"] == "advisor-tone-v3"
    assert 1 <= answer["usage"]["completion_tokens"] <= 6 and answer["usage"]["prompt_tokens"] > 0
    assert chat.headers["x-request-id"]
    too_long = httpx.post(f"{base}/api/v1/chat", headers=auth(), json={"prompt": "x" * 501})
    assert too_long.status_code == 400
    assert too_long.json()["detail"] == "The prompt is 501 characters; this server takes at most 500 (MAX_PROMPT_CHARS)"
    invalid = httpx.post(f"{base}/api/v1/chat", headers=auth(), json={"max_tokens": "many"})
    assert invalid.status_code == 400 and invalid.json()["detail"].startswith("prompt: Field required")
    with httpx.stream("POST", f"{base}/api/v1/chat", headers=auth(), timeout=60,
                      json={"prompt": "Explain asset allocation", "max_tokens": 6, "temperature": 0,
                            "stream": True}) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: ")]
    assert "".join(e.get("text", "") for e in events[:-1]).strip() == answer["response"]  # greedy: the same
    assert events[-1]["usage"] == answer["usage"] and events[-1]["finish_reason"] in ("stop", "length")

    import openai

    client = openai.OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0)
    completion = client.chat.completions.create(model="advisor-tone-v3", max_tokens=6, temperature=0,
                                                messages=[{"role": "user", "content": "Explain asset allocation"}])
    assert completion.choices[0].message.content == answer["response"]  # the same prompt, the same answer
    assert completion.usage.completion_tokens == answer["usage"]["completion_tokens"]
    chunks = list(client.chat.completions.create(model="advisor-tone-v3", max_tokens=6, temperature=0, stream=True,
                                                 stream_options={"include_usage": True},
                                                 messages=[{"role": "user", "content": "Explain asset allocation"}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == answer["response"] and chunks[-1].usage.completion_tokens == answer["usage"][
        "completion_tokens"]
    assert [c.id for c in chunks] == [chunks[0].id] * len(chunks)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{base}/v1", api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError, match="does not exist here"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="MAX_PROMPT_CHARS"):
        client.chat.completions.create(model="advisor-tone-v3", messages=[{"role": "user", "content": "y" * 600}])
    assert [m.id for m in client.models.list()] == ["advisor-tone-v3"]

    answers = [httpx.get(f"{base}/api/v1/model-info", headers=auth(BURST_KEY)).status_code for _ in range(LIMIT + 1)]
    assert answers == [200] * LIMIT + [429]
    limited = httpx.get(f"{base}/api/v1/model-info", headers=auth(BURST_KEY))
    assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 61
    assert f"{LIMIT} requests per minute per key" in limited.json()["detail"]

    records = [json.loads(line) for line in log_file.read_text().splitlines() if line.startswith("{")]
    requests = [r for r in records if r["event"] == "request"]
    assert {"/api/v1/chat", "/v1/chat/completions", "/api/v1/health"} <= {r["path"] for r in requests}
    assert any(r["status"] == 429 for r in requests) and any(r["event"] == "generation" for r in records)
    logged = log_file.read_text()
    assert KEY not in logged and "Explain asset allocation" not in logged  # keys never, content only if asked
