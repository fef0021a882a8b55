"""The RunPod provider against a local fake of RunPod's GraphQL API (tests/fakes/runpod_api.py)."""

from collections.abc import Iterator
from decimal import Decimal

import pytest
import runpod
from runpod.error import AuthenticationError, QueryError

from domain.gpu import PricingTier
from handlers.pods.provider import NoCapacityError
from handlers.pods.runpod import (
    ProviderAccountError,
    RunPodConfig,
    RunPodProvider,
    SpotUnavailableError,
    UnknownGpuError,
    runpod_provider_from_settings,
)
from infra.settings import SettingsError, load_settings
from tests.fakes.runpod_api import FakeRunPod

JOB = "0b5c3c1e-8d2f-4f7e-9a51-3f0d2c6e7a10"
ENV = {"PIPELINE_JOB_ID": JOB, "NATS_URL": "nats://10.0.0.5:4222", "PIPELINE_JOB_CONFIG": "eyJzZWVkIjo0Mn0="}


@pytest.fixture
def fake() -> Iterator[FakeRunPod]:
    server = FakeRunPod().start()
    yield server
    server.stop()


def provider_for(fake: FakeRunPod, **overrides: object) -> RunPodProvider:
    config = {"api_key": fake.api_key, "image_name": "ghcr.io/acme/lora-agent:1.4", "api_url": fake.url,
              "poll_every_s": 0.0, "timeout_s": 5.0} | overrides
    return RunPodProvider(RunPodConfig(**config))  # type: ignore[arg-type]


def test_an_on_demand_pod_is_deployed_with_our_image_gpu_and_env_at_runpods_rate(fake: FakeRunPod) -> None:
    pod = provider_for(fake).create_pod(JOB, 2, "on_demand", ENV)

    (sent,) = fake.sent("podFindAndDeployOnDemand")
    assert sent.input["name"] == "lora-0b5c3c1e-a2"
    assert sent.input["imageName"] == "ghcr.io/acme/lora-agent:1.4"
    assert sent.input["gpuTypeId"] == "NVIDIA H100 PCIe"
    assert (sent.input["cloudType"], sent.input["gpuCount"]) == ("SECURE", "1")
    assert sent.input["env"] == ENV
    assert sent.authorization == f"Bearer {fake.api_key}"
    assert pod.pod_id in fake.pods and pod.hourly_rate == Decimal("2.39")
    assert not fake.sent("podRentInterruptable")


def test_without_a_price_from_runpod_the_spec_rate_is_used(fake: FakeRunPod) -> None:
    fake.on_demand_price = None
    fake.minimum_bid = None
    provider = provider_for(fake)

    assert provider.quote(PricingTier.ON_DEMAND) == Decimal("7.99")
    assert provider.quote(PricingTier.SPOT) == Decimal("2.49")


def test_a_spot_pod_is_rented_with_the_current_minimum_bid(fake: FakeRunPod) -> None:
    pod = provider_for(fake).create_pod(JOB, 1, "spot", ENV)

    (sent,) = fake.sent("podRentInterruptable")
    assert sent.input["bidPerGpu"] == "1.25"
    assert sent.input["gpuTypeId"] == "NVIDIA H100 PCIe" and sent.input["env"] == ENV
    assert fake.pods[pod.pod_id]["podType"] == "INTERRUPTABLE"
    assert pod.hourly_rate == Decimal("1.25")


def test_a_spot_pod_costs_what_runpod_says_it_costs(fake: FakeRunPod) -> None:
    fake.spot_charge = 1.31

    pod = provider_for(fake).create_pod(JOB, 1, "spot", ENV)

    assert fake.sent("podRentInterruptable")[0].input["bidPerGpu"] == "1.25"
    assert pod.hourly_rate == Decimal("1.31")


def test_spot_removed_from_runpod_is_reported_once_and_not_asked_again(fake: FakeRunPod) -> None:
    fake.spot_removed = True
    provider = provider_for(fake)

    with pytest.raises(SpotUnavailableError, match="switch this job to on-demand") as first:
        provider.create_pod(JOB, 1, "spot", ENV)
    requests_after_first = len(fake.requests)
    with pytest.raises(SpotUnavailableError):
        provider.create_pod(JOB, 2, "spot", ENV)

    assert isinstance(first.value, NoCapacityError) and "\n" not in str(first.value)
    assert len(fake.sent("podRentInterruptable")) == 1
    assert len(fake.requests) == requests_after_first
    assert provider.create_pod(JOB, 3, "on_demand", ENV).pod_id in fake.pods


@pytest.mark.parametrize(("tier", "message"), [
    ("spot", "All H100 spot instances are currently in use. High demand."),
    ("on_demand", "All H100 on-demand instances are currently in use. High demand."),
])
def test_no_capacity_is_the_spec_message_and_the_next_try_succeeds(fake: FakeRunPod, tier: str, message: str) -> None:
    fake.no_capacity_left = 1
    provider = provider_for(fake)

    with pytest.raises(NoCapacityError) as caught:
        provider.create_pod(JOB, 1, tier, ENV)

    assert str(caught.value) == message and not isinstance(caught.value, SpotUnavailableError)
    assert not fake.pods and provider.running() == []
    assert provider.create_pod(JOB, 2, tier, ENV).pod_id in fake.pods


def test_an_empty_balance_is_an_account_error_not_capacity(fake: FakeRunPod) -> None:
    fake.no_funds = True

    with pytest.raises(ProviderAccountError, match="top up") as caught:
        provider_for(fake).create_pod(JOB, 1, "on_demand", ENV)

    assert not isinstance(caught.value, NoCapacityError)


def test_an_unknown_gpu_type_is_refused_before_any_pod_is_asked_for(fake: FakeRunPod) -> None:
    with pytest.raises(UnknownGpuError, match="NVIDIA H999"):
        provider_for(fake, gpu_type_id="NVIDIA H999").create_pod(JOB, 1, "on_demand", ENV)

    assert [r.operation for r in fake.requests] == ["gpuTypes"]


def test_a_bad_api_key_is_a_clear_account_error(fake: FakeRunPod) -> None:
    with pytest.raises(ProviderAccountError, match="RUNPOD_API_KEY"):
        provider_for(fake, api_key="wrong").create_pod(JOB, 1, "on_demand", ENV)

    assert fake.requests == [] and not fake.pods


def test_terminating_twice_or_an_unknown_pod_is_fine(fake: FakeRunPod) -> None:
    provider = provider_for(fake)
    pod = provider.create_pod(JOB, 1, "on_demand", ENV)

    provider.terminate(pod.pod_id)
    provider.terminate(pod.pod_id)
    provider.terminate("nosuchpod00000")

    assert pod.pod_id not in fake.pods
    assert len(fake.sent("podTerminate")) == 3


def test_a_terminate_refused_while_the_pod_still_runs_is_raised(fake: FakeRunPod) -> None:
    provider = provider_for(fake)
    pod = provider.create_pod(JOB, 1, "on_demand", ENV)
    fake.terminate_refusal = "Something went wrong."

    with pytest.raises(QueryError, match="Something went wrong"):
        provider.terminate(pod.pod_id)

    assert pod.pod_id in fake.pods and provider.running() == [pod.pod_id]


def test_a_pod_that_exits_is_reported_once_and_terminated(fake: FakeRunPod) -> None:
    provider = provider_for(fake)
    exiting = provider.create_pod(JOB, 1, "on_demand", ENV)
    staying = provider.create_pod(JOB, 2, "on_demand", ENV)
    assert provider.exited() == []

    fake.exit_pod(exiting.pod_id)
    (gone,) = provider.exited()

    assert (gone.pod_id, gone.exit_code) == (exiting.pod_id, None)
    assert provider.exited() == []
    assert exiting.pod_id not in fake.pods and staying.pod_id in fake.pods
    assert provider.running() == [staying.pod_id]


def test_a_terminated_pod_is_reported_at_its_termination_time(fake: FakeRunPod) -> None:
    provider = provider_for(fake)
    pod = provider.create_pod(JOB, 1, "spot", ENV)
    provider.terminate(pod.pod_id)
    terminated = fake.sent("podTerminate")

    (gone,) = provider.exited()

    assert gone.pod_id == pod.pod_id and gone.at >= pod.started_at
    assert len(fake.sent("podTerminate")) == len(terminated)


def test_runpod_is_polled_at_most_once_per_interval(fake: FakeRunPod) -> None:
    provider = provider_for(fake, poll_every_s=3600.0)
    pod = provider.create_pod(JOB, 1, "on_demand", ENV)
    provider.exited()
    fake.exit_pod(pod.pod_id)

    assert provider.exited() == []
    assert len(fake.sent("pod")) == 1


@pytest.mark.parametrize("value", ['x" }] }) { id } } mutation { podTerminate', "a\\b", "line\nbreak", "ümlaut"])
def test_an_unsafe_env_value_is_refused_before_any_request(fake: FakeRunPod, value: str) -> None:
    with pytest.raises(ValueError, match="PIPELINE_NOTE") as caught:
        provider_for(fake).create_pod(JOB, 1, "on_demand", ENV | {"PIPELINE_NOTE": value})

    assert value not in str(caught.value)
    assert fake.requests == []


def test_orphans_of_a_previous_process_are_terminated_and_others_left_alone(fake: FakeRunPod) -> None:
    previous = provider_for(fake).create_pod(JOB, 1, "on_demand", ENV)
    fake.pods["someoneelse000"] = fake.pods[previous.pod_id] | {"id": "someoneelse000", "name": "notebook"}
    provider = provider_for(fake)
    ours = provider.create_pod(JOB, 2, "on_demand", ENV)

    assert provider.reap_orphans() == 1
    assert set(fake.pods) == {ours.pod_id, "someoneelse000"}


def test_pods_of_a_previous_process_that_runpod_still_has_are_adopted_and_not_reaped(fake: FakeRunPod) -> None:
    previous = provider_for(fake)
    running, exited = (previous.create_pod(JOB, n, "on_demand", ENV) for n in (1, 2))
    fake.exit_pod(exited.pod_id)
    provider = provider_for(fake)  # the handlers worker restarted

    assert provider.adopt([running.pod_id, exited.pod_id, "gone000000000"]) == [running.pod_id, exited.pod_id]
    assert provider.reap_orphans() == 0 and running.pod_id in fake.pods
    assert [gone.pod_id for gone in provider.exited()] == [exited.pod_id]  # ended unwatched: reported now
    assert provider.running() == [running.pod_id]


def test_settings_build_the_provider_and_refuse_runpod_without_key_or_image(
    fake: FakeRunPod, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_POD_PROVIDER", "runpod")
    with pytest.raises(SettingsError, match="RUNPOD_API_KEY"):
        load_settings()
    monkeypatch.setenv("RUNPOD_API_KEY", fake.api_key)
    monkeypatch.setenv("PIPELINE_RUNPOD_IMAGE", "ghcr.io/acme/lora-agent:1.4")
    monkeypatch.setenv("PIPELINE_RUNPOD_API_URL", fake.url + "/")

    provider = runpod_provider_from_settings(load_settings())

    assert provider.create_pod(JOB, 1, "on_demand", ENV).pod_id in fake.pods


def test_the_fake_answers_the_runpod_sdk_itself(fake: FakeRunPod, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_API_BASE_URL", fake.url)  # where runpod 1.12 reads its URL, at each call
    monkeypatch.setattr(runpod, "api_key", fake.api_key)

    created = runpod.create_pod("lora-sdk", "ghcr.io/acme/lora-agent:1.4", "NVIDIA H100 PCIe", "SECURE", env=ENV)
    assert runpod.get_pod(created["id"])["desiredStatus"] == "RUNNING"
    runpod.terminate_pod(created["id"])

    assert runpod.get_pod(created["id"]) is None
    sent = [r.operation for r in fake.requests]
    assert sent == ["gpuTypes", "podFindAndDeployOnDemand", "pod", "podTerminate", "pod"]
    assert fake.sent("podFindAndDeployOnDemand")[0].input["env"] == ENV
    monkeypatch.setattr(runpod, "api_key", "wrong")
    with pytest.raises(AuthenticationError):
        runpod.get_gpu("NVIDIA H100 PCIe")
