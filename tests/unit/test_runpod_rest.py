"""The RunPod REST v2 client against a local fake of the v2 API (tests/fakes/runpod_v2.py)."""

from collections.abc import Iterator
from decimal import Decimal

import pytest

from handlers.pods.provider import NoCapacityError
from handlers.pods.runpod_errors import (
    AccountError,
    ConflictError,
    RateLimit,
    RateLimitedError,
    RequestInvalidError,
    RunPodUnavailableError,
    UnknownGpuError,
    Window,
)
from handlers.pods.runpod_rest import RestConfig, RunPodRestClient
from tests.fakes.runpod_v2 import H100, NO_CAPACITY, FakeRunPodV2

ENV = {"PIPELINE_JOB_ID": "0b5c3c1e", "PIPELINE_JOB_CONFIG": "eyJzZWVkIjo0Mn0="}
IMAGE = "ghcr.io/acme/lora-agent:1.4"


@pytest.fixture
def fake() -> Iterator[FakeRunPodV2]:
    server = FakeRunPodV2().start()
    yield server
    server.stop()


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def client(fake: FakeRunPodV2, slept: list[float]) -> Iterator[RunPodRestClient]:
    with client_for(fake, slept) as made:
        yield made


def client_for(fake: FakeRunPodV2, slept: list[float], **overrides: object) -> RunPodRestClient:
    config = {"api_key": fake.api_key, "base_url": fake.url, "timeout_s": 5.0} | overrides
    return RunPodRestClient(RestConfig(**config), sleep=slept.append, jitter=lambda: 1.0)  # type: ignore[arg-type]


def create(client: RunPodRestClient, name: str = "lora-0b5c3c1e-a1", **options: object):
    return client.create_pod(name, IMAGE, H100, env=ENV, container_disk_gb=40, **options)  # type: ignore[arg-type]


def test_a_pod_is_created_read_listed_and_terminated_in_the_v2_shapes(
        fake: FakeRunPodV2, client: RunPodRestClient) -> None:
    pod = create(client, data_center_ids=["EU-RO-1"])
    fake.advance(60)

    (sent,) = fake.sent("POST", "/v2/pods")
    assert sent.json == {"name": "lora-0b5c3c1e-a1", "image": IMAGE, "gpu": {"id": H100, "count": 1},
                         "cloud": "SECURE", "env": ENV, "disk": 40, "dataCenterIds": ["EU-RO-1"]}
    assert sent.headers["Authorization"] == f"Bearer {fake.api_key}"
    assert (pod.status, pod.cost_per_hour, pod.data_center_id, pod.started_at) == (
        "PROVISIONING", Decimal("2.39"), "EU-RO-1", None)
    assert client.get_pod(pod.id).status == "STARTING"  # type: ignore[union-attr]
    running = client.get_pod(pod.id)
    assert running is not None and running.status == "RUNNING"
    assert running.started_at == fake.now and running.uptime_s == 0 and running.gpu_id == H100

    create(client, name="someone-elses-notebook")
    assert [p.id for p in client.list_pods("lora-")] == [pod.id]

    assert client.terminate_pod(pod.id) is True
    assert fake.sent("DELETE", f"/v2/pods/{pod.id}")
    assert client.get_pod(pod.id) is None
    assert client.terminate_pod(pod.id) is False  # already gone: fine
    assert [p.name for p in client.list_pods()] == ["someone-elses-notebook"]


def test_no_capacity_is_a_no_capacity_error_with_runpods_words(fake: FakeRunPodV2, client: RunPodRestClient) -> None:
    fake.no_capacity_next = 1

    with pytest.raises(NoCapacityError, match="no longer any instances") as refused:
        create(client)

    assert refused.value.problem.status == 400 and refused.value.problem.detail == NO_CAPACITY  # type: ignore[attr-defined]
    assert len(fake.sent("POST", "/v2/pods")) == 1  # not retried by the client: the provisioner decides
    fake.stock[H100] = {"US-KS-2": "NONE", "EU-RO-1": "NONE"}
    with pytest.raises(NoCapacityError):
        create(client)


def test_a_429_is_retried_once_after_the_delay_its_retry_after_header_says(
        fake: FakeRunPodV2, client: RunPodRestClient, slept: list[float]) -> None:
    fake.rate_limit_next, fake.retry_after_s = 1, 7

    assert client.list_pods() == []

    assert slept == [7.0]
    assert len(fake.sent("GET", "/v2/pods")) == 2


def test_a_429_without_retry_after_waits_until_the_exhausted_ratelimit_window_resets(
        fake: FakeRunPodV2, client: RunPodRestClient, slept: list[float]) -> None:
    fake.rate_limit_next, fake.retry_after_s = 1, None

    client.list_pods()

    assert slept == [12.0]  # the fake's `"minute";r=0;t=12`


def test_repeated_429s_give_up_after_the_bound_with_a_clear_error(
        fake: FakeRunPodV2, client: RunPodRestClient, slept: list[float]) -> None:
    fake.rate_limit_next = 10

    with pytest.raises(RateLimitedError, match=r"rate limit hit for listPods \(exhausted: minute; retry after 12 s\)"):
        client.list_pods()

    assert slept == [12.0, 12.0]  # rate_limit_retries=2: three requests in all, no storm
    assert len(fake.sent("GET", "/v2/pods")) == 3


def test_a_retry_after_longer_than_the_client_will_sleep_gives_up_at_once(
        fake: FakeRunPodV2, client: RunPodRestClient, slept: list[float]) -> None:
    fake.rate_limit_next, fake.retry_after_s = 1, 3600

    with pytest.raises(RateLimitedError) as limited:
        client.list_pods()

    assert slept == [] and limited.value.retry_after_s == 3600


def test_the_quota_from_the_ratelimit_headers_is_kept_per_window(client: RunPodRestClient) -> None:
    client.list_pods()

    assert client.rate_limit is not None
    minute = client.rate_limit.windows["minute"]
    assert (minute.remaining, minute.reset_s, minute.quota, minute.length_s) == (59, 60, 60, 60)
    assert client.rate_limit.windows["day"].quota == 50000


def test_the_ratelimit_headers_are_read_in_the_documented_structured_field_form() -> None:
    quota = RateLimit.from_headers({  # the OpenAPI's RateLimitHeader and RateLimitPolicyHeader examples
        "RateLimit": '"minute";r=0;t=12, "hour";r=2800;t=1812, "day";r=49500;t=45012',
        "RateLimit-Policy": '"minute";q=60;w=60, "hour";q=3000;w=3600, "day";q=50000;w=86400'})

    assert quota is not None and quota.exhausted() == ["minute"] and quota.exhausted_wait_s() == 12
    assert quota.windows["hour"] == Window("hour", remaining=2800, reset_s=1812, quota=3000, length_s=3600)
    assert RateLimit.from_headers({}) is None


def test_a_refused_key_is_an_account_error_whose_message_does_not_show_the_key(
        fake: FakeRunPodV2, slept: list[float]) -> None:
    secret = "rpa_SECRET0123456789"
    with client_for(fake, slept, api_key=secret) as client, pytest.raises(AccountError) as refused:
        client.list_pods()

    assert refused.value.problem.status == 401  # type: ignore[union-attr]
    assert "RUNPOD_API_KEY" in str(refused.value) and secret not in str(refused.value)
    assert secret not in repr(client.config) and slept == []


def test_insufficient_balance_is_an_account_error_not_a_capacity_one(
        fake: FakeRunPodV2, client: RunPodRestClient) -> None:
    fake.insufficient_funds = True

    with pytest.raises(AccountError, match="lack of funds") as refused:
        create(client)

    assert refused.value.problem.status == 402 and not isinstance(refused.value, NoCapacityError)  # type: ignore[union-attr]


def test_an_unknown_gpu_is_an_unknown_gpu_error_from_the_catalog_and_from_a_create(client: RunPodRestClient) -> None:
    with pytest.raises(UnknownGpuError):
        client.gpu_catalog("NVIDIA H900")
    with pytest.raises(UnknownGpuError):
        client.create_pod("lora-x", IMAGE, "NVIDIA H900")


def test_server_errors_are_retried_with_exponential_backoff_then_given_up(
        fake: FakeRunPodV2, client: RunPodRestClient, slept: list[float]) -> None:
    fake.server_error_next = 2
    assert client.list_pods() == []
    assert slept == [1.0, 2.0]

    fake.server_error_next, fake.disconnect_next = 2, 2
    with pytest.raises(RunPodUnavailableError):
        client.list_pods()
    assert slept == [1.0, 2.0, 1.0, 2.0, 4.0]  # max_attempts=4


def test_a_create_whose_answer_was_lost_finds_its_pod_instead_of_making_a_second(
        fake: FakeRunPodV2, client: RunPodRestClient, slept: list[float]) -> None:
    fake.fail_after_create_next = 1

    pod = create(client)

    assert list(fake.pods) == [pod.id] and len(fake.sent("POST", "/v2/pods")) == 1
    assert fake.sent("GET", "/v2/pods") and slept == []


def test_pod_billing_sums_its_hourly_buckets_to_a_decimal(fake: FakeRunPodV2, client: RunPodRestClient) -> None:
    pod = create(client)
    fake.advance(30 * 60)
    fake.progress(pod.id)  # RUNNING from 09:30
    fake.advance(90 * 60)
    fake.set_status(pod.id, "EXITED")  # 11:00
    fake.advance(3600)

    bill = client.pod_billing(pod.id, start=pod.created_at, end=fake.now)

    assert [(b.start.hour, b.total) for b in bill.buckets] == [(9, Decimal("1.195")), (10, Decimal("2.39"))]
    assert bill.total == Decimal("3.585") == bill.reported_total
    (sent,) = fake.sent("GET", "/v2/billing/pods")
    assert sent.query == {"podId": pod.id, "bucketSize": "hour", "startTime": "2026-12-01T09:00:00Z",
                          "endTime": "2026-12-01T12:00:00Z"}
    assert client.get_pod(pod.id).cost_per_hour == Decimal(0)  # type: ignore[union-attr]


def test_the_catalog_gives_list_prices_and_pod_availability(fake: FakeRunPodV2, client: RunPodRestClient) -> None:
    offer = client.gpu_catalog(H100)

    assert (offer.secure_price, offer.community_price) == (Decimal("2.39"), Decimal("1.99"))
    assert offer.hourly_rate("SECURE", 2) == Decimal("4.78")
    assert offer.availability == "HIGH" and offer.available
    assert offer.data_centers == {"US-KS-2": "HIGH", "EU-RO-1": "LOW"}
    (sent,) = fake.sent("GET", f"/v2/catalog/gpus/{H100}")
    assert sent.query == {"include": "AVAILABILITY", "product": "POD", "cloud": "SECURE", "count": "1"}
    crowded = client.gpu_catalog(H100, cloud="COMMUNITY", gpu_count=4)
    assert crowded.availability == "NONE" and crowded.data_centers == {} and not crowded.available
    assert client.gpu_catalog(H100, availability=False).availability is None


def test_a_body_against_the_contract_is_refused_with_422_and_each_violation(client: RunPodRestClient) -> None:
    with pytest.raises(RequestInvalidError) as refused:
        create(client, cloud_type="SPOT", persistent_volume_gb=5)

    assert refused.value.problem.status == 422  # type: ignore[union-attr]
    assert refused.value.problem.errors == (  # type: ignore[union-attr]
        "$.cloud: value must be one of 'SECURE', 'COMMUNITY'", "$.mounts.persistent.size: must be >= 10")


def test_a_pod_mounts_a_network_volume_by_its_id(fake: FakeRunPodV2, client: RunPodRestClient) -> None:
    volume = client.create_network_volume("lora-checkpoints", 50, "EU-RO-1", "STANDARD")

    assert client.get_network_volume(volume.id) == volume and client.list_network_volumes() == [volume]
    create(client, network_volume_id=volume.id, data_center_ids=["EU-RO-1"])
    assert fake.sent("POST", "/v2/pods")[0].json["mounts"] == {
        "network": [{"volumeId": volume.id, "path": "/runpod-volume"}]}
    assert client.get_network_volume("nope") is None


def test_an_action_the_pods_status_does_not_allow_is_a_conflict(fake: FakeRunPodV2, client: RunPodRestClient) -> None:
    pod = create(client)
    fake.progress(pod.id)

    with pytest.raises(ConflictError):
        client.pod_action(pod.id, "start")
    stopped = client.pod_action(pod.id, "stop")
    assert stopped is not None and stopped.status == "EXITED" and stopped.gone


def test_a_create_refused_with_a_server_error_is_posted_again_once_no_pod_of_its_name_exists(
        fake: FakeRunPodV2, client: RunPodRestClient, slept: list[float]) -> None:
    fake.server_error_next = 1  # a 503 before anything was made

    pod = create(client)

    assert list(fake.pods) == [pod.id] and len(fake.sent("POST", "/v2/pods")) == 2
    assert [r.method for r in fake.requests] == ["POST", "GET", "POST"] and slept == [1.0]


def test_a_pod_the_test_fails_or_terminates_reads_as_gone(fake: FakeRunPodV2, client: RunPodRestClient) -> None:
    pod = create(client)
    fake.progress(pod.id)

    fake.set_status(pod.id, "ERROR")
    failed = client.get_pod(pod.id)
    assert failed is not None and failed.gone and failed.actions == ("start", "terminate")
    fake.set_status(pod.id, "TERMINATED")
    ended = client.get_pod(pod.id)
    assert ended is not None and ended.status == "TERMINATED" and ended.cost_per_hour == 0


def test_the_fake_refuses_a_body_without_the_fields_the_openapi_requires(
        fake: FakeRunPodV2, client: RunPodRestClient) -> None:
    answer = client.http.post("/v2/pods", json={"gpu": {"count": 0}, "bogus": 1})

    assert answer.status_code == 422 and answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["errors"] == [
        "$: missing property 'name'", "$.gpu: missing property 'id'", "$.gpu.count: must be >= 1",
        "$: additional properties 'bogus' not allowed", "$: missing property 'image'"]
    pod = create(client)
    reset = client.http.post(f"/v2/pods/{pod.id}/action", json={"action": "reset"})  # v1's reset is gone in v2
    assert reset.status_code == 422
    assert reset.json()["errors"] == ["$.action: value must be one of 'start', 'stop', 'restart', 'terminate'"]
    assert client.http.patch("/v2/billing/pods").status_code == 405
