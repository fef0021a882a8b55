"""RunPod pod provider: on-demand pods with the runpod SDK's own GraphQL, spot ("interruptible")
pods with `podRentInterruptable` for as long as RunPod still offers it (design brief §4)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import requests
from runpod.api.mutations.pods import generate_pod_deployment_mutation, generate_pod_terminate_mutation
from runpod.api.queries.gpus import generate_gpu_query
from runpod.api.queries.pods import QUERY_POD, generate_pod_query
from runpod.error import QueryError
from runpod.user_agent import USER_AGENT

from domain.gpu import GPU_TYPE, OfflinePrices, PricingTier
from handlers.pods.provider import NoCapacityError, Pod, PodExit

if TYPE_CHECKING:
    from infra.settings import Settings

POD_PREFIX = "lora-"
# The SDK pastes values into GraphQL string literals unescaped: anything else could end the literal.
SAFE_VALUE = re.compile(r"[\w .:/+=@,~%-]*", re.ASCII)
SAFE_KEY = re.compile(r"[A-Za-z_]\w*", re.ASCII)
CAPACITY_REFUSALS = ("no longer any instances available", "no instances available",
                     "not enough free gpus", "does not have the resources")
FUNDS_REFUSALS = ("insufficient balance", "insufficient funds", "not enough funds", "balance is too low")
SPOT_GONE = re.compile(r'Cannot query field "podRentInterruptable"|interruptable.*(deprecated|not supported)', re.I)
GONE = {None, "EXITED", "TERMINATED"}
NO_CAPACITY = {PricingTier.SPOT: "All H100 spot instances are currently in use. High demand.",
               PricingTier.ON_DEMAND: "All H100 on-demand instances are currently in use. High demand."}
SPOT_UNAVAILABLE = "RunPod no longer offers spot (interruptible) pods: switch this job to on-demand."


@dataclass(frozen=True)
class RunPodConfig:
    api_key: str
    image_name: str
    gpu_type_id: str = "NVIDIA H100 PCIe"  # RunPod's id for the H100 80GB PCIe (the spec's H100_PCIE_80GB)
    cloud_type: str = "SECURE"
    volume_in_gb: int = 0
    container_disk_in_gb: int = 20
    api_url: str = "https://api.runpod.io"  # the SDK's default; it posts to {api_url}/graphql
    poll_every_s: float = 30.0
    timeout_s: float = 30.0


class RunPodProvider:
    """Pods this process created are polled for their end; create and poll run on two threads."""

    def __init__(self, config: RunPodConfig) -> None:
        for value in (config.image_name, config.gpu_type_id, config.cloud_type):
            check_safe(value)
        self.config = config
        self.pods: set[str] = set()
        self.terminated_at: dict[str, datetime] = {}
        self.spot_offered = True
        self.next_poll = 0.0
        self.lock = threading.Lock()

    def create_pod(self, job_id: str, attempt: int, gpu_tier: str, env: dict[str, str]) -> Pod:
        """One GPU pod; refusals become NoCapacityError (retried, shown to users), ProviderAccountError
        (the operator's to fix) or UnknownGpuError; network errors propagate (the provisioner retries)."""
        tier = PricingTier(gpu_tier)
        name = f"{POD_PREFIX}{job_id[:8]}-a{attempt}"
        check_safe(name)
        check_env(env)
        if tier is PricingTier.SPOT and not self.spot_offered:
            raise SpotUnavailableError(SPOT_UNAVAILABLE)
        price = self.quote(tier)
        try:
            created = self._rent_spot(name, price, env) if tier is PricingTier.SPOT else self._deploy(name, env)
        except QueryError as exc:
            raise self._refusal(exc, tier) from exc
        if not created or not created.get("id"):
            raise QueryError("RunPod answered the create without a pod")
        with self.lock:
            self.pods.add(created["id"])
        return Pod(created["id"], Decimal(created.get("costPerHr") or price), now())

    def quote(self, tier: PricingTier) -> Decimal:
        """RunPod's current lowest price (the spot bid, or the on-demand rate); the spec's when unsaid."""
        found = self._query(generate_gpu_query(self.config.gpu_type_id))["gpuTypes"]
        if not found:
            raise UnknownGpuError(f"RunPod knows no GPU type {self.config.gpu_type_id!r}")
        lowest = found[0].get("lowestPrice") or {}
        quoted = lowest.get("minimumBidPrice" if tier is PricingTier.SPOT else "uninterruptablePrice")
        return Decimal(quoted) if quoted else OfflinePrices().hourly_rate(GPU_TYPE, tier)

    def terminate(self, pod_id: str) -> None:
        """Idempotent: a pod RunPod no longer has (or has already stopped) is fine."""
        check_safe(pod_id)
        try:
            self._query(generate_pod_terminate_mutation(pod_id))
        except QueryError:
            if self._status(pod_id) not in GONE:
                raise
        with self.lock:
            if pod_id in self.pods:
                self.terminated_at.setdefault(pod_id, now())

    def exited(self) -> list[PodExit]:
        """Tracked pods RunPod reports exited, terminated or unknown, each once; polled at most every
        `poll_every_s`. An exited pod is terminated too: a stopped pod still bills its disk."""
        with self.lock:
            if time.monotonic() < self.next_poll:
                return []
            self.next_poll = time.monotonic() + self.config.poll_every_s
            tracked = list(self.pods)
        statuses = {pod_id: self._status(pod_id) for pod_id in tracked}
        gone = [pod_id for pod_id, status in statuses.items() if status in GONE]
        for pod_id in gone:
            if statuses[pod_id] == "EXITED":
                self.terminate(pod_id)
        at = now()
        with self.lock:
            reported = [pod_id for pod_id in gone if pod_id in self.pods]
            self.pods.difference_update(reported)
            return [PodExit(pod_id, None, self.terminated_at.pop(pod_id, at)) for pod_id in reported]

    def running(self) -> list[str]:
        with self.lock:
            return sorted(self.pods)

    def stop_all(self) -> None:
        """Every pod this process tracks, terminated."""
        for pod_id in self.running():
            self.terminate(pod_id)

    def adopt(self, pod_ids: Iterable[str]) -> list[str]:
        """Pods a previous handlers process created that RunPod still has (running, or exited while
        nobody watched: `exited()` then reports and terminates them) are polled from now on."""
        known = []
        for pod_id in pod_ids:
            check_safe(pod_id)
            if self._status(pod_id) not in (None, "TERMINATED"):
                known.append(pod_id)
        with self.lock:
            self.pods.update(known)
        return known

    def reap_orphans(self) -> int:
        """Our pods (named lora-…) left running by a previous handlers process and not adopted: terminated. Assumes one
        deployment per RunPod account."""
        pods, ours = self._query(QUERY_POD)["myself"]["pods"], set(self.running())
        orphans = [p["id"] for p in pods if (p.get("name") or "").startswith(POD_PREFIX) and p["id"] not in ours]
        for pod_id in orphans:
            self.terminate(pod_id)
        return len(orphans)

    # --- GraphQL --------------------------------------------------------------------------------

    def _deploy(self, name: str, env: dict[str, str]) -> dict[str, Any]:
        c = self.config  # the arguments runpod.create_pod() passes, so RunPod sees the SDK's exact mutation
        return self._query(generate_pod_deployment_mutation(
            name, c.image_name, c.gpu_type_id, c.cloud_type, gpu_count=1, volume_in_gb=c.volume_in_gb,
            container_disk_in_gb=c.container_disk_in_gb, min_vcpu_count=1, min_memory_in_gb=1, docker_args="",
            volume_mount_path="/runpod-volume", env=env))["podFindAndDeployOnDemand"]

    def _rent_spot(self, name: str, bid: Decimal, env: dict[str, str]) -> dict[str, Any]:
        c = self.config
        pairs = ", ".join(f'{{ key: "{k}", value: "{v}" }}' for k, v in env.items())
        fields = (f'name: "{name}", imageName: "{c.image_name}", gpuTypeId: "{c.gpu_type_id}", bidPerGpu: {bid:f}, '
                  f"cloudType: {c.cloud_type}, gpuCount: 1, volumeInGb: {c.volume_in_gb}, "
                  f"containerDiskInGb: {c.container_disk_in_gb}, minVcpuCount: 1, minMemoryInGb: 1, "
                  f'startSsh: true, supportPublicIp: true, volumeMountPath: "/runpod-volume", env: [{pairs}]')
        query = f"mutation {{ podRentInterruptable(input: {{ {fields} }}) {{ id desiredStatus costPerHr machineId }} }}"
        return self._query(query)["podRentInterruptable"]

    def _status(self, pod_id: str) -> str | None:
        pod = self._query(generate_pod_query(pod_id))["pod"]
        return pod["desiredStatus"] if pod else None

    def _query(self, query: str) -> dict[str, Any]:
        """What runpod.api.graphql.run_graphql_query does, with this provider's key and URL (the SDK
        reads both from process globals: runpod.api_key and $RUNPOD_API_BASE_URL)."""
        response = requests.post(
            f"{self.config.api_url}/graphql", json={"query": query}, timeout=self.config.timeout_s,
            headers={"Authorization": f"Bearer {self.config.api_key}", "User-Agent": USER_AGENT})
        if response.status_code in (401, 403):
            raise ProviderAccountError(
                f"RunPod refused the API key (HTTP {response.status_code}): check RUNPOD_API_KEY")
        try:
            body = response.json(parse_float=Decimal)
        except ValueError:
            body = {}
        if body.get("errors"):  # GraphQL errors come with 200, or 400 when the query does not validate
            raise QueryError(body["errors"][0].get("message", "unknown error"), query)
        response.raise_for_status()
        if body.get("data") is None:
            raise QueryError("RunPod answered without data", query)
        return body["data"]

    def _refusal(self, exc: QueryError, tier: PricingTier) -> Exception:
        message = str(exc)
        if tier is PricingTier.SPOT and SPOT_GONE.search(message):
            with self.lock:
                self.spot_offered = False
            return SpotUnavailableError(SPOT_UNAVAILABLE)
        if any(refusal in message.lower() for refusal in CAPACITY_REFUSALS):
            return NoCapacityError(NO_CAPACITY[tier])
        if any(refusal in message.lower() for refusal in FUNDS_REFUSALS):
            return ProviderAccountError(f"RunPod refused the pod for lack of funds ({message}): top up the account")
        return exc


def runpod_provider_from_settings(settings: Settings) -> RunPodProvider:
    return RunPodProvider(RunPodConfig(
        api_key=settings.runpod.api_key, image_name=settings.runpod.image, gpu_type_id=settings.runpod.gpu_type_id,
        cloud_type=settings.runpod.cloud_type, volume_in_gb=settings.runpod.volume_gb,
        container_disk_in_gb=settings.runpod.container_disk_gb, api_url=settings.runpod.api_url.rstrip("/"),
        poll_every_s=settings.runpod.poll_s))


def check_env(env: dict[str, str]) -> None:
    """Before any request; names the variable, not its value (which may hold a credential)."""
    for key, value in env.items():
        if not SAFE_KEY.fullmatch(key) or not SAFE_VALUE.fullmatch(value):
            raise ValueError(f"pod env {key[:40]!r} is not safe to send to RunPod: encode it (base64)")


def check_safe(text: str) -> None:
    if not SAFE_VALUE.fullmatch(text):
        raise ValueError(f"{text[:40]!r} is not safe to send to RunPod")


def now() -> datetime:
    return datetime.now(timezone.utc)



class SpotUnavailableError(NoCapacityError):
    """RunPod's API has no spot mutation any more; remembered for the life of the process."""


class ProviderAccountError(Exception):
    """The RunPod account cannot rent (bad API key, no funds): the operator's to fix, not capacity."""


class UnknownGpuError(ValueError):
    pass
