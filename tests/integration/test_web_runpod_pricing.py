"""The new-job page and the API when RunPod rents the pods (issue #16): the on-demand rate is RunPod's own
(its GPU catalog, through a local fake of the v2 API), labelled, our configured rate standing in (labelled as
such) when RunPod cannot be read; the spot card is disabled with the reason; a spot request is refused; a
configuration that cannot fit the GPU is refused with the figure and the fix."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from infra.settings import load_settings
from tests.fakes.runpod_v2 import FakeRunPodV2
from tests.integration.test_web_new_job import HTML, add_file, plain
from tests.web_rig import WebRig, web  # noqa: F401 - the fixture


@pytest.fixture
def runpod(web: WebRig) -> Iterator[tuple[WebRig, FakeRunPodV2]]:  # noqa: F811 - the fixture
    fake = FakeRunPodV2().start()
    settings = load_settings(database_url=web.database_url, nats_url=web.nats_url, approval_secret="s" * 32,
                             seed_sample=False, pod_provider="runpod", RUNPOD_API_KEY=fake.api_key,
                             PIPELINE_RUNPOD_IMAGE="ghcr.io/acme/lora-agent:1", PIPELINE_RUNPOD_API_URL=fake.url,
                             PIPELINE_AGENT_NATS_URL="tls://nats.example.com:4222")
    try:
        yield WebRig(web.database_url, web.nats_url, settings, web.store, web._stack), fake
    finally:
        fake.stop()


def test_the_new_job_page_prices_on_demand_at_runpods_rate_and_disables_spot_with_the_reason(
        runpod: tuple[WebRig, FakeRunPodV2]) -> None:
    rig, fake = runpod
    file_id = add_file(rig)
    rig.project()
    page = rig.client("alice").get(f"/jobs/new?file={file_id}&gpu_tier=spot", headers=HTML)
    assert page.status_code == 200
    text = plain(page.text)
    assert re.search(r'<input type="radio" name="gpu_tier" value="spot"\s+disabled', page.text)
    assert re.search(r'value="on_demand" checked', page.text)
    assert "Not available: RunPod offers no spot (interruptible) pods through its API v2" in text
    assert "$2.39/hr" in text.replace(" /hr", "/hr") and "RunPod's on-demand price" in text
    assert "availability high" in text
    assert len(fake.sent("GET", "/v2/catalog/gpus/NVIDIA H100 PCIe")) == 1  # cached for minutes

    fake.api_key = "rotated"  # RunPod refuses us now: our configured rate, labelled as such
    rig._clients.clear()
    again = plain(rig.client("alice").get(f"/jobs/new?file={file_id}", headers=HTML).text)
    assert "$7.99" in again and "Our configured rate: RunPod's price could not be read" in again


def test_the_api_refuses_spot_on_runpod_and_creates_an_on_demand_job_at_runpods_rate(
        runpod: tuple[WebRig, FakeRunPodV2]) -> None:
    rig, _ = runpod
    file_id = add_file(rig)
    token = rig.token("alice")
    refused = rig.client().post("/api/jobs", headers=token, json={"training_file_id": str(file_id),
                                                                   "gpu_tier": "spot", "start": False})
    assert refused.status_code == 400
    assert "RunPod offers no spot (interruptible) pods" in refused.json()["detail"]

    made = rig.client().post("/api/jobs", headers=token, json={"training_file_id": str(file_id),
                                                                "gpu_tier": "on_demand", "start": False})
    assert made.status_code == 201, made.text
    config = rig.store.app.get_job(made.json()["id"]).configuration
    assert (config["gpu_tier"], str(config["hourly_rate"])) == ("on_demand", "2.39")


def test_a_configuration_that_cannot_fit_the_gpu_is_refused_at_creation_with_the_figure_and_the_fix(
        runpod: tuple[WebRig, FakeRunPodV2]) -> None:
    rig, _ = runpod
    agent = rig.settings.agent.model_copy(update={"base_model": "meta-llama/Meta-Llama-3-70B-Instruct", "qlora": False})
    bf16 = WebRig(rig.database_url, rig.nats_url, rig.settings.model_copy(update={"agent": agent}), rig.store,
                  rig._stack)
    file_id = add_file(bf16)
    answer = bf16.client().post("/api/jobs", headers=bf16.token("alice"),
                                json={"training_file_id": str(file_id), "gpu_tier": "on_demand", "start": False})
    assert answer.status_code == 400
    detail = answer.json()["detail"]
    assert "does not fit the 80 GB GPU: it needs about" in detail and "PIPELINE_AGENT_QLORA=true" in detail
