"""The RunPod provider (REST API v2) against a local fake of the v2 API (tests/fakes/runpod_v2.py): on its
own, and driving the provisioner and the billing reconciler with the in-memory application. What these
cannot show (RunPod's real wording, timing and bills) is listed in docs/operations.md, "RunPod provider"."""

import logging
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from domain.applications import BudgetPolicy, Pipeline
from domain.gpu import OfflinePrices, PricingTier
from domain.gpu_memory.job_check import QLORA_FIX
from domain.job_status import JobStatus
from domain.presets import BALANCED
from domain.values import ArtifactRef
from handlers.billing import BillingReconciler
from handlers.pods.provider import NoCapacityError
from handlers.pods.runpod import RunPodConfig, RunPodProvider, SpotUnavailableError, pod_name
from handlers.pods.runpod_prices import CatalogPrices
from handlers.pods.runpod_rest import RestConfig, RunPodRestClient
from handlers.provisioning import AgentSettings, Provisioner, QueuePolicy
from infra.settings import SettingsError, load_settings
from tests.factories import job_fields
from tests.fakes.runpod_v2 import H100, NO_CAPACITY, FakeRunPodV2

IMAGE = "ghcr.io/acme/lora-agent:1"
HF_TOKEN = "hf_secretTOKENvalue0123456789"
ADAPTER = ArtifactRef("job-x", "x/adapter.tar", "e" * 64, 10)


@pytest.fixture
def fake() -> Iterator[FakeRunPodV2]:
    server = FakeRunPodV2(now=datetime.now(timezone.utc).replace(microsecond=0)).start()
    yield server
    server.stop()


@pytest.fixture
def app() -> Pipeline:
    return Pipeline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, policy=BudgetPolicy(default_limit=Decimal(5000)))


def client_for(fake: FakeRunPodV2, slept: list[float] | None = None) -> RunPodRestClient:
    return RunPodRestClient(RestConfig(api_key=fake.api_key, base_url=fake.url, timeout_s=5.0),
                            sleep=(slept if slept is not None else []).append, jitter=lambda: 1.0)


def provider_for(fake: FakeRunPodV2, slept: list[float] | None = None, **config: object) -> RunPodProvider:
    return RunPodProvider(client_for(fake, slept), RunPodConfig(**{"image_name": IMAGE, "poll_every_s": 0.0} | config))


def on_demand_job(app: Pipeline, hyperparameters: dict | None = None) -> uuid.UUID:
    job_id = app.create_job(**job_fields(at=datetime.now(timezone.utc)))
    app.configure_job(job_id, preset="balanced", hyperparameters=hyperparameters or BALANCED.as_config(),
                      gpu_tier="on_demand", gpu_type="H100_PCIE_80GB", hourly_rate=Decimal("2.39"),
                      estimated_duration_hours=Decimal(3), estimated_cost_min=Decimal(5), estimated_cost_max=Decimal(9),
                      estimation_algorithm="test-1", estimation_confidence=None, at=datetime.now(timezone.utc))
    app.start_job(job_id, "alice", "member", datetime.now(timezone.utc))
    return job_id


def provisioner_for(app: Pipeline, provider: RunPodProvider, **agent: object) -> Provisioner:
    settings = AgentSettings(**{"nats_url": "tls://nats.example.com:4222"} | agent)  # type: ignore[arg-type]
    return Provisioner(app, provider, settings, QueuePolicy(retry_every_s=5),
                       billing=BillingReconciler(app, provider, delay_s=600, every_s=300, reads=3))


def created(fake: FakeRunPodV2) -> list:
    return fake.sent("POST", "/v2/pods")


# --- the provider on its own ----------------------------------------------------------------------

def test_a_pod_is_created_with_our_name_image_gpu_env_disk_and_the_model_volume_at_runpods_rate(
        fake: FakeRunPodV2) -> None:
    job = str(uuid.uuid4())
    provider = provider_for(fake, volume_gb=200)

    pod = provider.create_pod(job, 2, "on_demand", {"PIPELINE_JOB_ID": job, "NATS_URL": "tls://nats.example.com:4222"})
    provider.create_pod(job, 3, "on_demand", {"PIPELINE_JOB_ID": job})

    (volume,) = fake.volumes.values()  # created once, by name, where our GPU is most available
    assert (volume["name"], volume["size"], volume["dataCenter"]) == ("lora-pipeline-models", 200, "US-KS-2")
    first = created(fake)[0].json
    assert first == {
        "name": f"lora-{job}-a2", "image": IMAGE, "gpu": {"id": H100, "count": 1}, "cloud": "SECURE",
        "env": {"PIPELINE_JOB_ID": job, "NATS_URL": "tls://nats.example.com:4222",
                "HF_HOME": "/runpod-volume/huggingface"},
        "disk": 40, "dataCenterIds": ["US-KS-2"],
        "mounts": {"network": [{"volumeId": volume["id"], "path": "/runpod-volume"}]}}
    assert len(fake.sent("POST", "/v2/network-volumes")) == 1
    assert pod.pod_id in fake.pods and pod.hourly_rate == Decimal("2.39")


def test_a_model_volume_that_exists_is_found_by_name_and_pins_the_pods_to_its_data_center(
        fake: FakeRunPodV2) -> None:
    fake.volumes["vol123"] = {"id": "vol123", "name": "lora-pipeline-models", "size": 300, "dataCenter": "EU-RO-1",
                              "type": "STANDARD"}

    provider_for(fake).create_pod(str(uuid.uuid4()), 1, "on_demand", {})

    assert not fake.sent("POST", "/v2/network-volumes")
    sent = created(fake)[0].json
    assert sent["dataCenterIds"] == ["EU-RO-1"] and sent["mounts"]["network"][0]["volumeId"] == "vol123"


def test_spot_is_refused_at_once_as_no_wait_can_help_without_asking_runpod(fake: FakeRunPodV2) -> None:
    with pytest.raises(SpotUnavailableError) as refused:
        provider_for(fake).create_pod(str(uuid.uuid4()), 1, "spot", {})
    assert "no spot (interruptible) pods" in str(refused.value) and refused.value.final
    assert isinstance(refused.value, NoCapacityError) and not fake.requests


def test_exited_and_errored_pods_are_seen_in_one_list_call_and_deleted(fake: FakeRunPodV2) -> None:
    provider = provider_for(fake, volume_gb=0)
    pods = [provider.create_pod(str(uuid.uuid4()), 1, "on_demand", {}).pod_id for _ in range(3)]
    for pod_id in pods:
        fake.progress(pod_id)
    fake.set_status(pods[0], "EXITED")
    fake.set_status(pods[1], "ERROR")
    before = len(fake.requests)

    gone = provider.exited()

    assert {(g.pod_id, g.cause, g.exit_code) for g in gone} == {(pods[0], "exited", None), (pods[1], "error", None)}
    asked = [(r.method, r.path) for r in fake.requests[before:]]
    assert asked.count(("GET", "/v2/pods")) == 1
    assert not [a for a in asked if a[0] == "GET" and a[1] != "/v2/pods"]  # no call per pod
    assert sorted(a[1] for a in asked if a[0] == "DELETE") == sorted(f"/v2/pods/{p}" for p in pods[:2])
    assert provider.running() == [pods[2]] and provider.exited() == []


def test_a_pod_runpod_no_longer_lists_is_confirmed_gone_before_it_is_reported(fake: FakeRunPodV2) -> None:
    provider = provider_for(fake, volume_gb=0)
    pod_id = provider.create_pod(str(uuid.uuid4()), 1, "on_demand", {}).pod_id
    del fake.pods[pod_id]  # deleted behind our back (the console, a host failure)

    (gone,) = provider.exited()

    assert (gone.pod_id, gone.cause) == (pod_id, "missing")
    assert fake.sent("GET", f"/v2/pods/{pod_id}")


def test_pods_we_terminate_are_reported_at_once_at_their_termination_time(fake: FakeRunPodV2) -> None:
    provider = provider_for(fake, volume_gb=0, poll_every_s=3600)
    pod_id = provider.create_pod(str(uuid.uuid4()), 1, "on_demand", {}).pod_id
    provider.exited()  # the first poll
    polls = len(fake.sent("GET", "/v2/pods"))

    provider.terminate(pod_id)
    provider.terminate(pod_id)  # again: fine

    (gone,) = provider.exited()
    assert (gone.pod_id, gone.cause) == (pod_id, "ended_by_us")
    assert len(fake.sent("GET", "/v2/pods")) == polls  # no poll was due
    assert pod_id not in fake.pods


def test_orphans_are_deleted_and_pods_that_are_not_ours_left_alone(fake: FakeRunPodV2) -> None:
    provider = provider_for(fake, volume_gb=0)
    kept = provider.create_pod(str(uuid.uuid4()), 1, "on_demand", {}).pod_id
    orphan = provider_for(fake, volume_gb=0).create_pod(str(uuid.uuid4()), 1, "on_demand", {}).pod_id
    client_for(fake).create_pod("someone-elses-notebook", IMAGE, H100)

    assert provider.reap_orphans() == 1

    assert kept in fake.pods and orphan not in fake.pods
    assert [p["name"] for p in fake.pods.values() if p["id"] != kept] == ["someone-elses-notebook"]


def test_runpods_catalog_price_is_cached_for_minutes_and_our_rate_stands_in_labelled_when_it_fails(
        fake: FakeRunPodV2) -> None:
    ticks = [0.0]
    prices = CatalogPrices(client_for(fake), H100, ttl_s=300, retry_s=60, clock=lambda: ticks[0])

    assert prices.hourly_rate("H100_PCIE_80GB", PricingTier.ON_DEMAND) == Decimal("2.39")
    assert prices.hourly_rate("H100_PCIE_80GB", PricingTier.ON_DEMAND) == Decimal("2.39")
    assert prices.describe(PricingTier.ON_DEMAND).startswith("RunPod's on-demand price")
    assert "availability high" in prices.describe(PricingTier.ON_DEMAND)
    (asked,) = fake.sent("GET", f"/v2/catalog/gpus/{H100}")
    assert asked.query == {"include": "AVAILABILITY", "product": "POD", "cloud": "SECURE", "count": "1"}

    fake.api_key = "rotated"  # RunPod now refuses us: 401
    ticks[0] = 301.0
    assert prices.hourly_rate("H100_PCIE_80GB", PricingTier.ON_DEMAND) == OfflinePrices().on_demand
    assert prices.describe(PricingTier.ON_DEMAND).startswith("Our configured rate: RunPod's price could not be read")
    assert prices.hourly_rate("H100_PCIE_80GB", PricingTier.SPOT) == OfflinePrices().spot


def test_settings_refuse_runpod_without_a_tls_address_for_the_pods() -> None:
    runpod = {"PIPELINE_POD_PROVIDER": "runpod", "RUNPOD_API_KEY": "k", "PIPELINE_RUNPOD_IMAGE": IMAGE}
    with pytest.raises(SettingsError, match="needs PIPELINE_AGENT_NATS_URL"):
        load_settings(**runpod)
    with pytest.raises(SettingsError, match="plain text to another machine"):
        load_settings(**runpod, PIPELINE_AGENT_NATS_URL="nats://nats.example.com:4222")
    settings = load_settings(**runpod, PIPELINE_AGENT_NATS_URL="tls://nats.example.com:4222")
    assert settings.runpod.api_url == "https://api.runpod.io" and settings.runpod.poll_s == 5.0


# --- the provisioner and the billing reconciler on the fake ----------------------------------------

def test_provision_run_exit_and_runpods_bill_is_recorded_on_the_job(fake: FakeRunPodV2, app: Pipeline) -> None:
    fake.billing_lag_s = 300
    # the job's times are ours (seconds apart here), the pod's are RunPod's clock advanced 1.5 h: start
    # that clock an hour before this hour so the whole run lies in the hours the reconciler asks about
    fake.now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    provider = provider_for(fake, volume_gb=0)
    p = provisioner_for(app, provider)
    job_id = on_demand_job(app)

    p.on_event("TrainingJob.Queued", job_id)
    (pod_id,) = provider.running()
    fake.progress(pod_id)
    app.update_job(job_id, lambda j: j.change_stage(JobStatus.TRAINING, j.attempt, datetime.now(timezone.utc)))
    fake.advance(5400)  # 1.5 h of training on RunPod's clock
    app.update_job(job_id, lambda j: j.complete(ADAPTER, {}, j.attempt, datetime.now(timezone.utc)))
    fake.set_status(pod_id, "EXITED")  # the agent exited 0 after reporting

    (gone,) = p.record_exits()
    assert gone.cause == "exited" and pod_id not in fake.pods  # an EXITED pod still bills its disk: deleted
    job = app.get_job(job_id)
    assert job.status is JobStatus.COMPLETED and job.running_pods() == []
    assert p.billing.pending() == [pod_id]

    stopped = job.pods[pod_id].stopped_at.timestamp()
    p.billing.clock = lambda: stopped + 599
    assert p.reconcile_billing() == 0 and not fake.sent("GET", "/v2/billing/pods")  # RunPod bills every 5 min
    fake.advance(600)
    p.billing.clock = lambda: stopped + 601
    assert p.reconcile_billing() == 1

    (read,) = fake.sent("GET", "/v2/billing/pods")
    assert read.query["podId"] == pod_id and read.query["bucketSize"] == "hour"
    job = app.get_job(job_id)
    assert job.billed == {pod_id: Decimal("3.585000")}  # 1.5 h × $2.39
    (event,) = [e for e in app.repository.event_store.get(job_id) if type(e).__name__ == "BillingReconciled"]
    assert sum(b["amount"] for b in event.buckets) == Decimal("3.585000") and len(event.buckets) in (2, 3)
    assert p.billing.pending() == [] and p.reconcile_billing() == 0


def test_a_bill_runpod_has_not_made_yet_is_read_again_later_a_bounded_number_of_times(
        fake: FakeRunPodV2, app: Pipeline) -> None:
    fake.billing_lag_s = 10**9  # RunPod reports no charge at all
    provider = provider_for(fake, volume_gb=0)
    p = provisioner_for(app, provider)
    job_id = on_demand_job(app)
    p.on_event("TrainingJob.Queued", job_id)
    (pod_id,) = provider.running()
    fake.progress(pod_id)
    fake.advance(60)
    fake.set_status(pod_id, "ERROR")
    p.record_exits()
    stopped = app.get_job(job_id).pods[pod_id].stopped_at.timestamp()

    for minutes in (10, 15, 20):
        p.billing.clock = lambda m=minutes: stopped + m * 60 + 1
        recorded = p.reconcile_billing()
    assert len(fake.sent("GET", "/v2/billing/pods")) == 3  # reads=3: then what RunPod says is recorded
    assert recorded == 1 and app.get_job(job_id).billed == {pod_id: Decimal(0)}


def test_no_capacity_is_recorded_with_runpods_words_and_retried_until_runpod_places_the_pod(
        fake: FakeRunPodV2, app: Pipeline) -> None:
    fake.no_capacity_next = 1
    provider = provider_for(fake, volume_gb=0)
    p = provisioner_for(app, provider)
    job_id = on_demand_job(app)

    p.on_event("TrainingJob.Queued", job_id)
    job = app.get_job(job_id)
    assert job.status is JobStatus.QUEUED_WAITING_FOR_GPU and provider.running() == []
    failed = [e for e in app.repository.event_store.get(job_id) if type(e).__name__ == "ProvisioningFailed"]
    assert NO_CAPACITY in failed[0].reason

    p.retry_waiting(now_monotonic=time.monotonic() + 6)  # the next try (every 5 s here), inside the window
    assert len(provider.running()) == 1 and app.get_job(job_id).status is JobStatus.PROVISIONING
    assert [r.json["name"] for r in created(fake)] == [pod_name(str(job_id), 1), pod_name(str(job_id), 2)]


def test_a_429_is_slept_through_as_runpod_asks_and_the_pod_is_still_created(fake: FakeRunPodV2, app: Pipeline) -> None:
    fake.rate_limit_next, fake.retry_after_s = 1, 7
    slept: list[float] = []
    provider = provider_for(fake, slept, volume_gb=0)
    p = provisioner_for(app, provider)
    job_id = on_demand_job(app)

    p.on_event("TrainingJob.Queued", job_id)

    assert slept == [7.0] and len(created(fake)) == 2  # one 429, then the pod
    assert len(fake.pods) == 1 and app.get_job(job_id).status is JobStatus.PROVISIONING


def test_spot_on_runpod_asks_the_user_at_once_to_switch_to_on_demand_or_cancel(
        fake: FakeRunPodV2, app: Pipeline) -> None:
    provider = provider_for(fake, volume_gb=0)
    p = provisioner_for(app, provider)
    job_id = on_demand_job(app)
    app.update_job(job_id, lambda j: j.change_gpu_tier("spot", Decimal("2.49"), Decimal(5), Decimal(9), "alice",
                                                       datetime.now(timezone.utc)))

    p.on_event("TrainingJob.Queued", job_id)

    job = app.get_job(job_id)
    assert job.status is JobStatus.QUEUED_WAITING_FOR_GPU and job.awaiting_gpu_decision
    assert not created(fake) and job_id not in p.waiting


@pytest.mark.parametrize("status", ["ERROR", "TERMINATED"])
def test_a_pod_lost_on_runpod_is_seen_within_a_poll_and_its_job_recovers_on_a_new_pod(
        fake: FakeRunPodV2, app: Pipeline, status: str) -> None:
    provider = provider_for(fake, volume_gb=0)
    p = provisioner_for(app, provider)
    job_id = on_demand_job(app)
    p.on_event("TrainingJob.Queued", job_id)
    (lost,) = provider.running()
    fake.progress(lost)
    app.update_job(job_id, lambda j: j.change_stage(JobStatus.TRAINING, j.attempt, datetime.now(timezone.utc)))

    fake.set_status(lost, status)
    p.record_exits()

    job = app.get_job(job_id)
    assert job.status is JobStatus.INTERRUPTED and lost not in job.running_pods()
    p.on_event("TrainingJob.Interrupted", job_id)
    (replacement,) = provider.running()
    assert replacement != lost and app.get_job(job_id).attempt == 2
    assert created(fake)[-1].json["name"] == pod_name(str(job_id), 2)


def test_a_pod_that_exited_without_its_agents_report_interrupts_its_job_after_a_short_grace(
        fake: FakeRunPodV2, app: Pipeline) -> None:
    provider = provider_for(fake, volume_gb=0)
    p = provisioner_for(app, provider)
    job_id = on_demand_job(app)
    p.on_event("TrainingJob.Queued", job_id)
    (pod_id,) = provider.running()
    fake.set_status(pod_id, "EXITED")

    p.record_exits()
    assert app.get_job(job_id).status is JobStatus.PROVISIONING  # its report may be on its way
    (attempt, deadline) = p.awaiting_report[job_id]
    p.check_reports(deadline + 0.1)
    assert app.get_job(job_id).status is JobStatus.INTERRUPTED


def test_a_restarted_handlers_worker_adopts_our_live_pods_by_name_and_rents_none_twice(
        fake: FakeRunPodV2, app: Pipeline) -> None:
    first = provider_for(fake, volume_gb=0)
    p = provisioner_for(app, first)
    recorded, unrecorded = on_demand_job(app), on_demand_job(app)
    p.on_event("TrainingJob.Queued", recorded)
    # The worker died after RunPod made the second job's pod and before the pod was recorded on the job.
    attempt = app.update_job(unrecorded, lambda j: j.start_provisioning("on_demand", datetime.now(timezone.utc)))
    first.create_pod(str(unrecorded), attempt, "on_demand", {})
    assert len(fake.pods) == 2

    again = provider_for(fake, volume_gb=0)
    restarted = provisioner_for(app, again)
    restarted.adopt([recorded, unrecorded], [])
    assert again.reap_orphans() == 0

    assert len(created(fake)) == 2 and len(fake.pods) == 2  # nothing rented twice, nothing deleted
    assert sorted(again.running()) == sorted(fake.pods)
    assert app.get_job(unrecorded).running_pods() == [p for p in fake.pods if fake.pods[p]["name"].endswith(
        f"{unrecorded}-a{attempt}")]
    assert app.get_job(recorded).status is JobStatus.PROVISIONING and app.get_job(recorded).interruptions == 0
    restarted.promote()
    assert len(created(fake)) == 2


def test_the_hugging_face_token_reaches_the_pods_environment_and_nothing_else(
        fake: FakeRunPodV2, app: Pipeline, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    provider = provider_for(fake, volume_gb=0)
    p = provisioner_for(app, provider, hf_token=HF_TOKEN, nats_ca="-----BEGIN CERTIFICATE-----\nMIIB\n")
    job_id = on_demand_job(app)

    p.on_event("TrainingJob.Queued", job_id)

    env = created(fake)[0].json["env"]
    assert env["HF_TOKEN"] == HF_TOKEN and env["PIPELINE_NATS_CA"].startswith("-----BEGIN CERTIFICATE-----")
    stored = [app.mapper.to_stored_event(e) for e in app.repository.event_store.get(job_id)]
    assert stored and not [s for s in stored if HF_TOKEN.encode() in s.state]
    assert HF_TOKEN not in caplog.text and HF_TOKEN not in repr(p.agent)


def test_a_configuration_that_cannot_fit_the_gpu_fails_before_any_pod_is_rented(
        fake: FakeRunPodV2, app: Pipeline) -> None:
    provider = provider_for(fake, volume_gb=0)
    p = provisioner_for(app, provider, base_model="meta-llama/Meta-Llama-3-70B-Instruct", qlora=False)
    job_id = on_demand_job(app)

    p.on_event("TrainingJob.Queued", job_id)

    job = app.get_job(job_id)
    assert job.status is JobStatus.FAILED and job.failure["type"] == "oom"
    assert "does not fit the 80 GB GPU: it needs about 143.0 GB" in job.failure["message"]
    assert job.failure["details"]["suggested_fixes"] == [QLORA_FIX]
    assert not created(fake) and not fake.requests


def test_plain_text_nats_to_another_machine_is_refused_before_any_pod_is_rented(
        fake: FakeRunPodV2, app: Pipeline) -> None:
    provider = provider_for(fake, volume_gb=0)
    p = provisioner_for(app, provider, nats_url="nats://203.0.113.9:4222")
    job_id = on_demand_job(app)

    p.on_event("TrainingJob.Queued", job_id)

    failed = [e for e in app.repository.event_store.get(job_id) if type(e).__name__ == "ProvisioningFailed"]
    assert "plain text to another machine" in failed[0].reason and not created(fake)


def test_a_pod_exit_seen_before_its_pod_was_recorded_is_kept_for_the_record(fake: FakeRunPodV2, app: Pipeline) -> None:
    provider = provider_for(fake, volume_gb=0)
    p = provisioner_for(app, provider)
    job_id = on_demand_job(app)
    p.on_event("TrainingJob.Queued", job_id)
    (pod_id,) = provider.running()
    pod_job = p.pods.pop(pod_id)  # as if the exit raced the pod's record (the poll runs outside the lock)
    fake.set_status(pod_id, "ERROR")
    assert p.record_exits() and p.early_exits

    p.pods[pod_id] = pod_job
    p.record_exits()
    assert app.get_job(job_id).running_pods() == [] and not p.early_exits


def test_runpods_api_key_is_never_in_a_refusal(fake: FakeRunPodV2) -> None:
    fake.insufficient_funds = True
    with pytest.raises(Exception) as refused:
        provider_for(fake, volume_gb=0).create_pod(str(uuid.uuid4()), 1, "on_demand", {})
    assert "lack of funds" in str(refused.value) and fake.api_key not in str(refused.value)


def test_the_bill_is_read_for_the_pods_own_hours(fake: FakeRunPodV2) -> None:
    provider = provider_for(fake, volume_gb=0)
    pod_id = provider.create_pod(str(uuid.uuid4()), 1, "on_demand", {}).pod_id
    fake.progress(pod_id)
    fake.advance(1800)
    started = fake.now - timedelta(seconds=1800)

    bill = provider.billing(pod_id, started, fake.now)

    (read,) = fake.sent("GET", "/v2/billing/pods")
    assert read.query["startTime"] < started.isoformat().replace("+00:00", "Z") <= read.query["endTime"]
    assert bill.total == Decimal("1.195000")
