"""A synchronous client for RunPod's REST API v2 (api-reference-v2/openapi.json in runpod/docs),
which replaces the GraphQL API the `runpod` SDK speaks.

Retries: 429 sleeps what `Retry-After` says (else until the exhausted `RateLimit` window resets), at
most `rate_limit_retries` times and never longer than `max_rate_limit_wait_s` at once; network
errors and 5xx back off exponentially, `max_attempts` in all. A create is not idempotent: after an
answer that leaves it unknown whether the pod was made (5xx, a dropped connection), the client
looks for a pod of that name before it posts again."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from handlers.pods.runpod_errors import (
    Problem,
    RateLimit,
    RateLimitedError,
    RunPodUnavailableError,
    error_for,
    redact,
    retry_after_s,
)
from handlers.pods.runpod_models import GpuOffer, NetworkVolume, PodBilling, RestPod

log = logging.getLogger(__name__)
DEFAULT_BASE_URL = "https://api.runpod.io"  # the OpenAPI's servers[0]; every path starts with /v2
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)  # the request never reached RunPod


@dataclass(frozen=True)
class RestConfig:
    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    timeout_s: float = 30.0
    max_attempts: int = 4  # network errors and 5xx: attempts in all
    backoff_s: float = 1.0  # first wait; doubles per attempt, with jitter, up to backoff_max_s
    backoff_max_s: float = 30.0
    rate_limit_retries: int = 2  # 429s slept through before giving up
    max_rate_limit_wait_s: float = 60.0  # a longer Retry-After (an hour or day window) gives up at once


class _AmbiguousError(Exception):
    """A non-idempotent request may or may not have taken effect."""


class RunPodRestClient:
    def __init__(self, config: RestConfig, *, sleep: Callable[[float], None] = time.sleep,
                 jitter: Callable[[], float] = random.random, transport: httpx.BaseTransport | None = None) -> None:
        if not config.api_key:
            raise ValueError("RunPod API key is empty: set RUNPOD_API_KEY")
        self.config, self.sleep, self.jitter = config, sleep, jitter
        self.rate_limit: RateLimit | None = None  # quota state from the latest response
        self.http = httpx.Client(
            base_url=config.base_url.rstrip("/"), timeout=config.timeout_s, transport=transport,
            headers={"Authorization": f"Bearer {config.api_key}", "Accept": "application/json",
                     "User-Agent": "lora-pipeline"})

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RunPodRestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- pods -----------------------------------------------------------------------------------

    def create_pod(self, name: str, image: str, gpu_type_id: str, *, gpu_count: int = 1, cloud_type: str = "SECURE",
                   data_center_ids: Iterable[str] = (), env: dict[str, str] | None = None,
                   container_disk_gb: int | None = None, network_volume_id: str | None = None,
                   volume_mount_path: str = "/runpod-volume", persistent_volume_gb: int | None = None,
                   ports: Iterable[str] = (), allowed_cuda_versions: Iterable[str] = ()) -> RestPod:
        """POST /v2/pods (createPod). Answers 201 with the pod in PROVISIONING; poll get_pod for RUNNING."""
        if network_volume_id and persistent_volume_gb:
            raise ValueError("a pod mounts a network volume or a persistent volume, not both")
        gpu: dict[str, Any] = {"id": gpu_type_id, "count": gpu_count}
        if allowed_cuda_versions:
            gpu["allowedCudaVersions"] = list(allowed_cuda_versions)
        body: dict[str, Any] = {"name": name, "image": image, "gpu": gpu, "cloud": cloud_type, "env": dict(env or {})}
        if container_disk_gb:
            body["disk"] = container_disk_gb
        if data_center_ids:
            body["dataCenterIds"] = list(data_center_ids)
        if ports:
            body["ports"] = list(ports)
        if network_volume_id:
            body["mounts"] = {"network": [{"volumeId": network_volume_id, "path": volume_mount_path}]}
        elif persistent_volume_gb:
            body["mounts"] = {"persistent": {"size": persistent_volume_gb, "path": volume_mount_path}}
        for attempt in range(self.config.max_attempts):
            try:
                return RestPod.from_json(self._call("createPod", "POST", "/v2/pods", json=body, idempotent=False))
            except _AmbiguousError as unknown:
                made = [pod for pod in self.list_pods(name) if pod.name == name]
                if made:
                    log.warning("RunPod createPod answered %s but made pod %s; using it", unknown, made[0].id)
                    return made[0]
                if attempt + 1 == self.config.max_attempts:
                    raise RunPodUnavailableError(f"RunPod createPod failed {attempt + 1} times: {unknown}",
                                                 operation="createPod") from None
                self.sleep(self._backoff(attempt))
        raise AssertionError("unreachable")

    def get_pod(self, pod_id: str) -> RestPod | None:
        """GET /v2/pods/{id}; None when RunPod has no such pod (404: deleted, or never ours)."""
        body = self._call("getPod", "GET", f"/v2/pods/{segment(pod_id)}", missing_ok=True)
        return None if body is None else RestPod.from_json(body)

    def list_pods(self, name_prefix: str = "") -> list[RestPod]:
        """GET /v2/pods (listPods, no server-side filter): ours are those whose name starts with the prefix."""
        body = self._call("listPods", "GET", "/v2/pods")
        return [RestPod.from_json(p) for p in body.get("pods") or () if str(p.get("name", "")).startswith(name_prefix)]

    def terminate_pod(self, pod_id: str) -> bool:
        """DELETE /v2/pods/{id} (deletePod, 204). Idempotent: False when RunPod had no such pod (404)."""
        return self._call("deletePod", "DELETE", f"/v2/pods/{segment(pod_id)}", missing_ok=True) is not None

    def pod_action(self, pod_id: str, action: str) -> RestPod | None:
        """POST /v2/pods/{id}/action with start|stop|restart|terminate; terminate answers 204 (None)."""
        body = self._call("podAction", "POST", f"/v2/pods/{segment(pod_id)}/action", json={"action": action})
        return RestPod.from_json(body) if body else None

    # --- catalog, billing, network volumes --------------------------------------------------------

    def gpu_catalog(self, gpu_id: str, *, availability: bool = True, cloud: str = "SECURE",
                    gpu_count: int = 1) -> GpuOffer:
        """GET /v2/catalog/gpus/{id}: list prices per cloud and, with include=AVAILABILITY&product=POD,
        the stock for pods (overall and per data center). Unknown id: UnknownGpuError."""
        params = {"include": "AVAILABILITY", "product": "POD", "cloud": cloud, "count": gpu_count}
        found = self._call("getGpuType", "GET", f"/v2/catalog/gpus/{segment(gpu_id)}",
                           params=params if availability else None)
        return GpuOffer.from_json(found)

    def pod_billing(self, pod_id: str, *, start: datetime | None = None, end: datetime | None = None,
                    bucket_size: str = "hour") -> PodBilling:
        """GET /v2/billing/pods?podId=… in `bucket_size` buckets over [start, end) (RunPod widens both to
        bucket boundaries; defaults: the last 30 days to now). `.total` sums the buckets."""
        params: dict[str, Any] = {"podId": pod_id, "bucketSize": bucket_size}
        if start:
            params["startTime"] = rfc3339(start)
        if end:
            params["endTime"] = rfc3339(end)
        return PodBilling.from_json(pod_id, self._call("listPodBilling", "GET", "/v2/billing/pods", params=params))

    def create_network_volume(self, name: str, size_gb: int, data_center: str,
                              volume_type: str | None = None) -> NetworkVolume:
        """POST /v2/network-volumes; `volume_type` is STANDARD or HIGH_PERFORMANCE (else the data center's default)."""
        body: dict[str, Any] = {"name": name, "size": size_gb, "dataCenter": data_center}
        if volume_type:
            body["type"] = volume_type
        return NetworkVolume.from_json(self._call("createNetworkVolume", "POST", "/v2/network-volumes", json=body))

    def get_network_volume(self, volume_id: str) -> NetworkVolume | None:
        body = self._call("getNetworkVolume", "GET", f"/v2/network-volumes/{segment(volume_id)}", missing_ok=True)
        return None if body is None else NetworkVolume.from_json(body)

    def list_network_volumes(self) -> list[NetworkVolume]:
        body = self._call("listNetworkVolumes", "GET", "/v2/network-volumes")
        return [NetworkVolume.from_json(v) for v in body.get("networkVolumes") or ()]

    # --- the request loop ------------------------------------------------------------------------

    def _call(self, operation: str, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
              idempotent: bool = True, missing_ok: bool = False) -> Any:
        """The JSON body of a 2xx ({} for 204); None for a 404 when `missing_ok`; else a typed error."""
        failures = limited = 0
        while True:
            try:
                response = self.http.request(method, path, json=json, params=params)
            except httpx.TransportError as exc:
                said = f"{type(exc).__name__}: {redact(str(exc), self.config.api_key)}"
                if not idempotent and not isinstance(exc, NOT_SENT):
                    raise _AmbiguousError(said) from None
                failures += 1
                if failures >= self.config.max_attempts:
                    raise RunPodUnavailableError(
                        f"RunPod unreachable for {operation} after {failures} attempts ({said})", operation=operation,
                    ) from None
                self._pause(operation, said, self._backoff(failures - 1))
                continue
            self.rate_limit = RateLimit.from_headers(response.headers) or self.rate_limit
            if response.is_success:
                return response.json(parse_float=Decimal) if response.content else {}
            problem = Problem.from_body(response.status_code, safe_json(response))
            if response.status_code == 429:
                limited += 1
                wait = self._rate_limit_wait(operation, problem, response, limited)
                self._pause(operation, "429 Too Many Requests", wait)
                continue
            if response.status_code >= 500:
                said = redact(problem.describe(), self.config.api_key)
                if not idempotent:
                    raise _AmbiguousError(said)
                failures += 1
                if failures >= self.config.max_attempts:
                    raise RunPodUnavailableError(f"RunPod failed {operation} {failures} times ({said})", problem,
                                                 operation)
                self._pause(operation, said, self._backoff(failures - 1))
                continue
            if response.status_code == 404 and missing_ok:
                return None
            raise error_for(operation, problem, self.config.api_key)

    def _rate_limit_wait(self, operation: str, problem: Problem, response: httpx.Response, limited: int) -> float:
        quota = RateLimit.from_headers(response.headers)
        wait = retry_after_s(response.headers.get("Retry-After"))
        if wait is None and quota is not None:
            wait = quota.exhausted_wait_s()
        if wait is None:
            wait = self._backoff(limited - 1)
        windows = ", ".join(quota.exhausted()) if quota else ""
        if limited > self.config.rate_limit_retries or wait > self.config.max_rate_limit_wait_s:
            tried = f"after {limited - 1} retries" if limited > self.config.rate_limit_retries else "at once"
            raise RateLimitedError(
                f"RunPod rate limit hit for {operation} (exhausted: {windows or 'unsaid'}; retry after {wait:g} s): "
                f"gave up {tried}", problem, operation, wait)
        return wait

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.config.backoff_max_s, self.config.backoff_s * 2 ** attempt)
        return ceiling * (0.5 + 0.5 * self.jitter())

    def _pause(self, operation: str, reason: str, wait: float) -> None:
        log.warning("RunPod %s: %s; retrying in %.1f s", operation, reason, wait)
        self.sleep(wait)


def segment(value: str) -> str:
    """A path parameter (GPU ids have spaces: "NVIDIA H100 PCIe")."""
    return quote(value, safe="")


def rfc3339(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def safe_json(response: httpx.Response) -> Any:
    try:
        return response.json(parse_float=Decimal)
    except ValueError:
        return None
