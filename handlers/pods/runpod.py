"""RunPod pod provider over RunPod's REST API v2 (handlers/pods/runpod_rest.py; api-reference-v2
in runpod/docs). Our pods are named `lora-<job id>-a<attempt>`, so a restarted handlers worker finds
them by name; one list call a poll tells every tracked pod's state; pods that exit or error are
reported within `poll_every_s` and deleted (a stopped pod still bills its disk).

v2 has no spot ("interruptible") pods: a spot request is refused with SpotUnavailableError, which
the provisioner turns into the spec's choice (switch to on-demand or cancel) at once. Base models are
cached on a network volume (found or created by name) mounted in every pod as HF_HOME."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING

from domain.gpu import PricingTier
from handlers.pods.provider import NoCapacityError, Pod, PodExit
from handlers.pods.runpod_models import NetworkVolume, PodBilling
from handlers.pods.runpod_rest import RestConfig, RunPodRestClient

if TYPE_CHECKING:
    from infra.settings import Settings

log = logging.getLogger(__name__)
POD_PREFIX = "lora-"
POD_NAME = re.compile(r"^lora-(?P<job>[0-9a-f-]{36})-a(?P<attempt>\d+)$")
ENV_NAME = re.compile(r"[A-Za-z_]\w*", re.ASCII)
ENDED = ("EXITED", "ERROR")  # the container stopped; the pod still exists (and bills its disk)
AVAILABILITY_ORDER = ("HIGH", "MEDIUM", "LOW")
SPOT_REFUSED = ("RunPod offers no spot (interruptible) pods through its API v2: switch this job to on-demand "
                "or cancel it.")


def pod_name(job_id: str, attempt: int) -> str:
    return f"{POD_PREFIX}{job_id}-a{attempt}"


@dataclass(frozen=True)
class RunPodConfig:
    image_name: str
    gpu_type_id: str = "NVIDIA H100 PCIe"  # RunPod's id for the H100 80GB PCIe (the spec's H100_PCIE_80GB)
    cloud_type: str = "SECURE"
    data_center_ids: tuple[str, ...] = ()
    container_disk_gb: int = 40
    volume_gb: int = 200  # the network volume caching base models; 0: none
    volume_name: str = "lora-pipeline-models"
    volume_path: str = "/runpod-volume"
    poll_every_s: float = 5.0


class RunPodProvider:
    """Tracks the pods it created or adopted. HTTP calls run outside its lock; the provisioner calls in
    from two threads (its consumer and its clock)."""

    def __init__(self, client: RunPodRestClient, config: RunPodConfig) -> None:
        self.client, self.config = client, config
        self.pods: set[str] = set()
        self.ended: list[PodExit] = []  # terminated by us: reported by the next `exited()`
        self.volume: NetworkVolume | None = None
        self.next_poll = 0.0
        self.lock = threading.Lock()

    # --- pods -----------------------------------------------------------------------------------

    def create_pod(self, job_id: str, attempt: int, gpu_tier: str, env: dict[str, str]) -> Pod:
        """POST /v2/pods. Refusals are typed (handlers/pods/runpod_errors.py): no capacity (retried),
        account (the operator's to fix), unknown GPU; 429 and 5xx are retried by the client."""
        if PricingTier(gpu_tier) is PricingTier.SPOT:
            raise SpotUnavailableError(SPOT_REFUSED)
        for key in env:
            if not ENV_NAME.fullmatch(key):
                raise ValueError(f"pod env {key[:40]!r} is not a variable name")
        c, volume = self.config, self.network_volume()
        pod_env = dict(env) | ({"HF_HOME": f"{c.volume_path}/huggingface"} if volume else {})
        data_centers = [volume.data_center] if volume else list(c.data_center_ids)
        made = self.client.create_pod(
            pod_name(job_id, attempt), c.image_name, c.gpu_type_id, cloud_type=c.cloud_type,
            data_center_ids=data_centers, env=pod_env, container_disk_gb=c.container_disk_gb,
            network_volume_id=volume.id if volume else None, volume_mount_path=c.volume_path)
        with self.lock:
            self.pods.add(made.id)
        return Pod(made.id, made.cost_per_hour or self._list_price(), now())

    def terminate(self, pod_id: str) -> None:
        """DELETE /v2/pods/{id}; idempotent (a pod RunPod no longer has is fine). Reported as ended by
        the next `exited()`, at this time."""
        self.client.terminate_pod(pod_id)
        with self.lock:
            if pod_id in self.pods:
                self.pods.discard(pod_id)
                self.ended.append(PodExit(pod_id, None, now(), "ended_by_us"))

    def exited(self) -> list[PodExit]:
        """Pods that stopped since the last call, each once: those we terminated at once, and, at most
        every `poll_every_s`, those one GET /v2/pods shows EXITED, ERROR or TERMINATED (deleted now) or
        no longer lists (confirmed by GET /v2/pods/{id})."""
        with self.lock:
            reported, self.ended = self.ended, []
            due = bool(self.pods) and time.monotonic() >= self.next_poll
            if due:
                self.next_poll = time.monotonic() + self.config.poll_every_s
            tracked = set(self.pods)
        if not due:
            return reported
        try:
            gone = self._poll(tracked)
        except Exception as exc:  # noqa: BLE001 - RunPod unreachable: the next poll asks again
            log.warning("RunPod: could not read our pods' states (%s); asking again in %.0f s", exc,
                        self.config.poll_every_s)
            return reported
        with self.lock:
            fresh = [g for g in gone if g.pod_id in self.pods]  # not terminated meanwhile (then reported above)
            self.pods.difference_update(g.pod_id for g in fresh)
        return reported + fresh

    def _poll(self, tracked: set[str]) -> list[PodExit]:
        listed = {pod.id: pod for pod in self.client.list_pods(POD_PREFIX)}
        gone: list[PodExit] = []
        for pod_id in sorted(tracked):
            pod = listed[pod_id] if pod_id in listed else self.client.get_pod(pod_id)  # not listed: confirm
            if pod is not None and not pod.gone:
                continue
            cause = "missing" if pod is None else pod.status.lower()
            gone.append(PodExit(pod_id, None, now(), cause))
            log.info("RunPod pod %s ended (%s)", pod_id, cause)
            if pod is not None and pod.status in ENDED:
                try:
                    self.client.terminate_pod(pod_id)
                except Exception as exc:  # noqa: BLE001 - reported all the same; the stack's stop deletes it
                    log.warning("RunPod: could not delete ended pod %s (%s): it bills its disk until deleted",
                                pod_id, exc)
        return gone

    def running(self) -> list[str]:
        with self.lock:
            return sorted(self.pods)

    def stop_all(self) -> None:
        for pod_id in self.running():
            self.terminate(pod_id)

    def adopt(self, pod_ids: Iterable[str]) -> list[str]:
        """Pods a previous handlers process created that RunPod still has (running, or ended unwatched:
        `exited()` then reports and deletes them), tracked from now on. One list call for all."""
        wanted = list(pod_ids)
        listed = {pod.id: pod for pod in self.client.list_pods(POD_PREFIX)}
        known = [pod_id for pod_id in wanted if pod_id in listed and listed[pod_id].status != "TERMINATED"]
        with self.lock:
            self.pods.update(known)
        return known

    def find_pod(self, job_id: str, attempt: int) -> Pod | None:
        """Our pod for this attempt, found by its name (a worker that died between renting it and
        recording it): adopted, so the attempt is not rented twice."""
        name = pod_name(job_id, attempt)
        found = [p for p in self.client.list_pods(POD_PREFIX) if p.name == name and p.status != "TERMINATED"]
        if not found:
            return None
        pod = found[0]
        with self.lock:
            self.pods.add(pod.id)
        return Pod(pod.id, pod.cost_per_hour or self._list_price(), pod.created_at or now())

    def reap_orphans(self) -> int:
        """Our pods (named lora-…) that nobody tracks (a previous process's, not adopted; or all of them
        when the stack stops) are deleted. Returns how many were still running. Assumes one deployment
        per RunPod account (docs/operations.md)."""
        ours = set(self.running())
        orphans = [pod for pod in self.client.list_pods(POD_PREFIX) if pod.id not in ours]
        for pod in orphans:
            self.client.terminate_pod(pod.id)
        return sum(1 for pod in orphans if not pod.gone)

    # --- billing, volume, prices -------------------------------------------------------------------

    def billing(self, pod_id: str, started_at: datetime, stopped_at: datetime) -> PodBilling:
        """GET /v2/billing/pods?podId=… in hourly buckets over the pod's life (RunPod widens the range to
        whole hours; a pod's start hour may hold no charge of another pod: the query names the pod)."""
        return self.client.pod_billing(pod_id, start=started_at - timedelta(hours=1),
                                       end=stopped_at + timedelta(hours=1), bucket_size="hour")

    def network_volume(self) -> NetworkVolume | None:
        """The volume base models are cached on, found by name or created (GET/POST /v2/network-volumes),
        in the first preferred data center or else where our GPU is most available now."""
        c = self.config
        if not c.volume_gb:
            return None
        with self.lock:
            if self.volume is not None:
                return self.volume
        found = next((v for v in self.client.list_network_volumes() if v.name == c.volume_name), None)
        if found is None:
            data_center = c.data_center_ids[0] if c.data_center_ids else self._best_data_center()
            found = self.client.create_network_volume(c.volume_name, c.volume_gb, data_center)
            log.info("RunPod: network volume %s (%s GB) created in %s", found.id, c.volume_gb, data_center)
        with self.lock:
            self.volume = found
        return found

    def _best_data_center(self) -> str:
        offer = self.client.gpu_catalog(self.config.gpu_type_id, cloud=self.config.cloud_type)
        for level in AVAILABILITY_ORDER:
            for data_center, available in offer.data_centers.items():
                if available == level:
                    return data_center
        raise NoCapacityError(f"RunPod has no {self.config.gpu_type_id} in any data center now")

    def _list_price(self) -> Decimal:
        offer = self.client.gpu_catalog(self.config.gpu_type_id, availability=False)
        return offer.hourly_rate(self.config.cloud_type) or Decimal(0)


def runpod_provider_from_settings(settings: Settings) -> RunPodProvider:
    r = settings.runpod
    return RunPodProvider(runpod_client(settings), RunPodConfig(
        image_name=r.image, gpu_type_id=r.gpu_type_id, cloud_type=r.cloud_type,
        data_center_ids=tuple(r.preferred_data_centers()), container_disk_gb=r.container_disk_gb,
        volume_gb=r.volume_gb, volume_name=r.volume_name, volume_path=r.volume_path, poll_every_s=r.poll_s))


def runpod_client(settings: Settings) -> RunPodRestClient:
    return RunPodRestClient(RestConfig(api_key=settings.runpod.api_key, base_url=settings.runpod.api_url))


def now() -> datetime:
    return datetime.now(timezone.utc)


class SpotUnavailableError(NoCapacityError):
    """RunPod's API v2 has no spot pods: not a capacity shortage that waiting would end."""

    final = True
