"""docker-compose.yml's `cluster` profile (issue #21): three NATS nodes routed to each other and a
second instance of every worker. Read as YAML here; `docker-compose config` (docker-compose 1.29,
no engine needed; `apt-get install docker-compose`) parses it too where that binary is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
WORKERS = ("web", "relay", "projections", "handlers", "notifications")


def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_the_cluster_profile_has_three_nats_nodes_routed_to_each_other() -> None:
    nodes = {name: s for name, s in services().items() if name.startswith("nats-")}
    assert sorted(nodes) == ["nats-1", "nats-2", "nats-3"]
    for name, node in nodes.items():
        command = node["command"]
        assert node["profiles"] == ["cluster"] and "-js" in command
        assert command[command.index("--server_name") + 1] == name
        routes = command[command.index("--routes") + 1].split(",")
        assert sorted(routes) == sorted(f"nats://{other}:6222" for other in nodes if other != name)


def test_the_cluster_profile_runs_a_second_instance_of_every_worker() -> None:
    found = services()
    for worker in WORKERS:
        assert found[f"{worker}-2"]["command"] == found[worker]["command"]
        assert found[f"{worker}-2"]["profiles"] == ["cluster"]
    assert found["handlers-2"]["environment"] == found["handlers"]["environment"]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="no docker-compose binary here")
def test_docker_compose_parses_the_file_with_the_cluster_profile() -> None:
    env = os.environ | {"COMPOSE_PROFILES": "cluster", "PIPELINE_NATS_REPLICAS": "3",
                        "NATS_URL": "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222"}
    listed = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config", "--services"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert {"nats-1", "nats-2", "nats-3", *(f"{w}-2" for w in WORKERS)} <= set(listed.stdout.split())
