"""TLS for pods (issue #16) against the embedded nats-server with the CA we generate: a pod connects
with the CA (through the agent's own publisher, with its per-pod user) and is refused without it; the
control plane keeps its plain connection on loopback; the certificates are made once and kept."""

import asyncio
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from nats.js.api import StreamConfig

from gpu_agent.config import ConfigError, load_config, nats_options
from gpu_agent.publisher import Publisher
from infra import bus
from infra.embedded import EmbeddedNats, free_port
from infra.nats_certs import ensure_server_tls, pod_listener
from infra.nats_tls import pod_ca_pem
from infra.natsauth import NatsAuthority
from infra.pod_env import encode_json
from infra.telemetry import subject

JOB = "7d7a4f0e-3b1c-4c55-9a0e-2f6b8c1d9e42"
CONFIG = {"training_file": {"bucket": f"job-{JOB}", "name": "x/train.json", "sha256": "a" * 64, "size": 10},
          "hyperparameters": {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ["q_proj"],
                              "learning_rate": 1e-4, "num_train_epochs": 1, "per_device_train_batch_size": 1,
                              "gradient_accumulation_steps": 1}}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    port = free_port()
    listener = pod_listener(f"tls://localhost:{port}", f"127.0.0.1:{port}", tmp_path / "state" / "nats")
    nats = EmbeddedNats(tmp_path / "state", auth=True, **listener)
    nats.start()
    yield nats
    nats.stop()


def pod_env(server: EmbeddedNats, credentials: dict[str, str], ca: str | None) -> dict[str, str]:
    env = {"PIPELINE_JOB_ID": JOB, "PIPELINE_ATTEMPT": "1", "PIPELINE_JOB_CONFIG": encode_json(CONFIG),
           "NATS_URL": f"tls://localhost:{server.port}", "PIPELINE_POD_NONCE": "n0nce", **credentials}
    return env | ({"PIPELINE_NATS_CA": ca} if ca is not None else {})


def test_a_pod_connects_with_the_ca_and_is_refused_without_it(server: EmbeddedNats, tmp_path: Path) -> None:
    ca = pod_ca_pem(None, server.auth_dir)
    assert ca.startswith("-----BEGIN CERTIFICATE-----")
    credentials = NatsAuthority(server.auth_dir, server.url).grant(JOB, 1).env()

    async def declare() -> None:
        control = await bus.connect(server.url, "control")  # plain text, on loopback
        await bus.declare(control.jetstream())
        await control.close()

    asyncio.run(declare())
    publisher = Publisher(load_config(pod_env(server, credentials, ca)))
    try:
        publisher.start(connect_timeout_s=5)
        assert publisher.nc is not None and publisher.nc._server_info.get("tls_required") is True  # TLS first
        publisher.emit("heartbeat", {"stage": "starting", "pod_id": "pod-1"})
        assert publisher.flush(10)  # acknowledged by JetStream
    finally:
        publisher.close()

    async def received() -> dict:
        control = await bus.connect(server.url, "control")
        try:
            found = await control.jetstream().get_last_msg("TELEMETRY", subject(JOB, "heartbeat"))
            return json.loads(found.data)
        finally:
            await control.close()

    assert asyncio.run(received())["data"] == {"stage": "starting", "pod_id": "pod-1"}

    async def connect_without_the_ca() -> None:
        options = nats_options(pod_env(server, credentials, None), f"tls://localhost:{server.port}")
        nc = await bus.connect(f"tls://localhost:{server.port}", "pod", 3, allow_reconnect=False, **options)
        await nc.close()

    with pytest.raises(bus.BusUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
        asyncio.run(connect_without_the_ca())


def test_plain_text_to_another_machine_is_refused_by_the_agents_configuration() -> None:
    env = {"PIPELINE_JOB_ID": JOB, "PIPELINE_JOB_CONFIG": encode_json(CONFIG), "NATS_URL": "nats://203.0.113.9:4222"}
    with pytest.raises(ConfigError, match="plain text to another machine: pods connect to NATS with TLS only"):
        load_config(env)
    assert load_config(env | {"NATS_URL": "nats://127.0.0.1:4222"}).nats_options == {}  # a local pod
    with pytest.raises(ConfigError, match="PIPELINE_NATS_CA is not a PEM certificate"):
        load_config(env | {"NATS_URL": "tls://nats.example.com:4222", "PIPELINE_NATS_CA": "not a certificate"})


def test_the_ca_is_made_once_and_the_server_certificate_again_only_for_new_names(tmp_path: Path) -> None:
    first = ensure_server_tls(tmp_path, ["nats.example.com", "localhost", "127.0.0.1"])
    ca, cert = first.ca_file.read_bytes(), first.cert_file.read_bytes()
    assert stat.S_IMODE(os.stat(first.key_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "ca-key.pem").st_mode) == 0o600

    same = ensure_server_tls(tmp_path, ["nats.example.com", "localhost", "127.0.0.1"])
    assert (same.ca_file.read_bytes(), same.cert_file.read_bytes()) == (ca, cert)
    moved = ensure_server_tls(tmp_path, ["203.0.113.7", "localhost", "127.0.0.1"])
    assert moved.ca_file.read_bytes() == ca and moved.cert_file.read_bytes() != cert


def test_pods_elsewhere_get_every_interface_on_their_urls_port_and_local_pods_change_nothing(tmp_path: Path) -> None:
    remote = pod_listener("tls://nats.example.com:4443", None, tmp_path)
    assert (remote["host"], remote["listen_port"]) == ("0.0.0.0", 4443) and remote["tls"] is not None
    assert "handshake_first: auto" in remote["tls"].config_block()
    assert pod_listener(None, None, tmp_path) == {} and pod_listener("nats://127.0.0.1:4222", None, tmp_path) == {}


def test_the_control_plane_keeps_its_plain_loopback_connection_beside_the_pods_tls(server: EmbeddedNats) -> None:
    async def plain() -> bool:
        nc = await bus.connect(server.url, "control")
        try:
            await nc.jetstream().add_stream(StreamConfig(name="PLAIN", subjects=["plain.>"]))
            return nc.is_connected and not nc._server_info.get("tls_required")
        finally:
            await nc.close()

    assert asyncio.run(plain())
