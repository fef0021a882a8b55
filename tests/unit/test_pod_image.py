"""The pod image (docker/agent/Dockerfile), checked without a Docker engine: the file parses, its base is
CUDA 12, its pins are the `agent` extra's, every file it copies exists, and its entry point, run on a copy
of exactly what it copies, starts the agent (and refuses plain-text NATS to another machine)."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser
from packaging.requirements import Requirement

from handlers.pods.local_pod import AGENT_MODULE
from infra.pod_env import encode_json

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "agent" / "Dockerfile"
REQUIREMENTS = ROOT / "docker" / "agent" / "requirements.txt"
# What the agent imports besides the agent extra (a unit test below finds them in the image's requirements).
AGENT_IMPORTS_TOO = ("nats-py", "pydantic")
JOB_ID = "0b5c3c1e-8d2f-4f7e-9a51-3f0d2c6e7a10"
JOB_CONFIG = encode_json({
    "training_file": {"bucket": "job-x", "name": "x/train.json", "sha256": "a" * 64, "size": 10},
    "hyperparameters": {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ["q_proj"],
                        "learning_rate": 1e-4, "num_train_epochs": 1, "per_device_train_batch_size": 1,
                        "gradient_accumulation_steps": 1}})


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    parser = DockerfileParser(fileobj=DOCKERFILE.open("rb"))
    assert parser.structure, "the Dockerfile has no instructions"
    return parser


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def image_requirements() -> list[Requirement]:
    lines = [line.strip() for line in REQUIREMENTS.read_text().splitlines()]
    return [Requirement(line) for line in lines if line and not line.startswith("#")]


def copies(dockerfile: DockerfileParser) -> list[tuple[str, str]]:
    found = []
    for instruction in dockerfile.structure:
        if instruction["instruction"] == "COPY":
            *sources, target = instruction["value"].split()
            found += [(source, target) for source in sources if not source.startswith("--")]
    return found


def test_the_image_builds_on_a_cuda_12_base_and_runs_the_agent_as_the_local_pods_do(
        dockerfile: DockerfileParser) -> None:
    base = dockerfile.baseimage  # ARG defaults substituted
    assert base.startswith("nvidia/cuda:12."), base
    assert "runtime" in base
    assert dockerfile.structure[-1]["instruction"] == "ENTRYPOINT"
    assert dockerfile.structure[-1]["value"] == f'["python", "-m", "{AGENT_MODULE}"]'
    assert "PYTHONPATH=/app" in dockerfile.content


def test_the_images_pins_are_the_agent_extras_and_the_dependencies_the_agent_imports() -> None:
    project = pyproject()["project"]
    wanted = {Requirement(spec).name: Requirement(spec) for spec in project["optional-dependencies"]["agent"]}
    base = {Requirement(spec).name: Requirement(spec) for spec in project["dependencies"]}
    wanted |= {name: base[name] for name in AGENT_IMPORTS_TOO}
    found = {r.name: r for r in image_requirements()}
    assert found == wanted  # same names, same version specifiers (Requirement compares both)


def test_every_file_the_image_copies_exists(dockerfile: DockerfileParser) -> None:
    copied = copies(dockerfile)
    assert {source.rstrip("/") for source, _ in copied} >= {"domain", "infra", "gpu_agent", "samples/suites"}
    for source, _ in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"


def image_layout(dockerfile: DockerfileParser, into: Path) -> Path:
    """What the image's /app holds: the copied folders, nothing else of the repository."""
    app = into / "app"
    for source, target in copies(dockerfile):
        if not target.startswith("/app/"):
            continue
        destination = app / target.removeprefix("/app/")
        shutil.copytree(ROOT / source, destination, ignore=shutil.ignore_patterns("__pycache__"))
    return app


def run_agent(app: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    plain = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "VIRTUAL_ENV")}
    return subprocess.run([sys.executable, "-m", AGENT_MODULE], cwd=app.parent, capture_output=True, text=True,
                          env=plain | {"PYTHONPATH": str(app)} | env, timeout=120)


def test_the_entry_point_runs_the_agent_from_exactly_what_the_image_copies(
        dockerfile: DockerfileParser, tmp_path: Path) -> None:
    app = image_layout(dockerfile, tmp_path)
    unconfigured = run_agent(app, {})
    assert unconfigured.returncode == 2
    assert "PIPELINE_JOB_ID is not set" in unconfigured.stderr

    plain_text = run_agent(app, {"PIPELINE_JOB_ID": JOB_ID, "PIPELINE_JOB_CONFIG": JOB_CONFIG,
                                 "NATS_URL": "nats://203.0.113.9:4222"})
    assert plain_text.returncode == 2
    assert "NATS_URL nats://203.0.113.9:4222 is plain text to another machine" in plain_text.stderr


@pytest.mark.slow
def test_every_module_of_the_agent_imports_from_exactly_what_the_image_copies(
        dockerfile: DockerfileParser, tmp_path: Path) -> None:
    app = image_layout(dockerfile, tmp_path)
    every_module = ("import importlib, pkgutil, gpu_agent; "
                    "[importlib.import_module('gpu_agent.' + m.name) for m in pkgutil.iter_modules(gpu_agent.__path__)"
                    " if m.name != '__main__']; import domain.quality, infra.objectstore; print('imported')")
    imported = subprocess.run([sys.executable, "-c", every_module], cwd=tmp_path, capture_output=True, text=True,
                              env={"PATH": os.environ["PATH"], "PYTHONPATH": str(app)}, timeout=180)
    assert imported.returncode == 0, imported.stderr[-2000:]
    assert imported.stdout.strip() == "imported"
