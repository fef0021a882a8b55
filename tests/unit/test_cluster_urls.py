"""NATS_URL with a cluster's servers (issue #21): split, shown without secrets, and the login given to
every server the client learns of."""

from infra import bus, telemetry
from infra.leadership import lock_key

CLUSTER = "nats://control:p%2Fw@10.0.0.1:4222, nats://control:p%2Fw@10.0.0.2:4222,nats://10.0.0.3:4222"


def test_a_cluster_url_lists_each_server_once_trimmed() -> None:
    assert bus.servers(CLUSTER) == ["nats://control:p%2Fw@10.0.0.1:4222", "nats://control:p%2Fw@10.0.0.2:4222",
                                    "nats://10.0.0.3:4222"]


def test_a_cluster_url_is_shown_without_any_password() -> None:
    assert bus.shown(CLUSTER) == "nats://10.0.0.1:4222,nats://10.0.0.2:4222,nats://10.0.0.3:4222"


def test_the_login_in_the_url_becomes_connection_options_for_discovered_servers_too() -> None:
    assert bus.credentials(CLUSTER) == {"user": "control", "password": "p/w"}
    assert bus.credentials("nats://10.0.0.3:4222") == {}


def test_each_decision_domain_has_its_own_fixed_lock_key() -> None:
    keys = {domain: lock_key(domain) for domain in ("relay", "jobs", "provisioning", *telemetry.PARTITION_DOMAINS)}
    assert len(set(keys.values())) == len(keys)
    assert all(-(2**63) <= key < 2**63 for key in keys.values())
    assert lock_key("relay") == lock_key("relay")


def test_a_partition_of_the_telemetry_reads_back_as_the_subject_its_pod_published_on() -> None:
    assert telemetry.published_subject("tpart.3.6f1c.step") == telemetry.subject("6f1c", "step")
    assert telemetry.published_subject("telemetry.6f1c.step") == "telemetry.6f1c.step"
    assert telemetry.partition_subjects(2) == "tpart.2.>"
    assert len(telemetry.PARTITION_DOMAINS) == telemetry.PARTITIONS
