"""What RunPod REST v2 answers, as typed values: pods (`Pod`), GPU types (`GpuType`), pod billing
(`ListPodBillingResponse`) and network volumes (`NetworkVolume`). Money is Decimal, read from the
JSON text itself (the client parses with `parse_float=Decimal`), never through a binary float."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

POD_STATUSES = ("PROVISIONING", "STARTING", "RUNNING", "EXITED", "ERROR", "TERMINATED")
AVAILABILITY_LEVELS = ("NONE", "LOW", "MEDIUM", "HIGH")


@dataclass(frozen=True)
class RestPod:
    id: str
    name: str
    status: str  # PodStatus: PROVISIONING, STARTING, RUNNING, EXITED, ERROR, TERMINATED
    cost_per_hour: Decimal  # `cost`: USD per hour now, 0.0 when EXITED or TERMINATED
    gpu_id: str | None
    gpu_count: int
    cloud: str | None
    data_center_id: str | None
    created_at: datetime | None
    started_at: datetime | None
    uptime_s: int | None  # runtime.uptime; runtime is null unless RUNNING
    actions: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> RestPod:
        gpu = body.get("gpu") or {}
        runtime = body.get("runtime") or {}
        return cls(
            id=str(body["id"]), name=str(body.get("name") or ""), status=str(body.get("status") or ""),
            cost_per_hour=money(body.get("cost")), gpu_id=gpu.get("id"), gpu_count=int(gpu.get("count") or 0),
            cloud=body.get("cloud"), data_center_id=body.get("dataCenterId"),
            created_at=timestamp(body.get("createdAt")), started_at=timestamp(body.get("startedAt")),
            uptime_s=runtime.get("uptime"), actions=tuple(body.get("actions") or ()), raw=body)

    @property
    def gone(self) -> bool:
        """Stopped or deleted: it trains no more (EXITED still bills its disk until terminated)."""
        return self.status in ("EXITED", "ERROR", "TERMINATED")


@dataclass(frozen=True)
class GpuOffer:
    id: str
    name: str
    memory_gb: int
    secure_price: Decimal | None  # price.secure: USD/hour for ONE GPU on SECURE cloud
    community_price: Decimal | None  # price.community
    max_count: dict[str, int]  # maxCount per cloud: a ceiling, not stock
    availability: str | None  # AvailabilityLevel (NONE/LOW/MEDIUM/HIGH), only with include=AVAILABILITY
    data_centers: dict[str, str]  # dataCenters: id -> availability level
    cuda_versions: dict[str, bool] = field(default_factory=dict)  # version -> has free capacity now

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> GpuOffer:
        price = body.get("price") or {}
        return cls(
            id=str(body["id"]), name=str(body.get("name") or ""), memory_gb=int(body.get("memory") or 0),
            secure_price=optional_money(price.get("secure")), community_price=optional_money(price.get("community")),
            max_count={k: int(v) for k, v in (body.get("maxCount") or {}).items()},
            availability=body.get("availability"),
            data_centers={dc["id"]: dc.get("availability", "NONE") for dc in body.get("dataCenters") or ()},
            cuda_versions={c["version"]: bool(c.get("available")) for c in body.get("cudaVersions") or ()})

    def hourly_rate(self, cloud: str = "SECURE", gpu_count: int = 1) -> Decimal | None:
        """List price for a pod of `gpu_count` of these (the rate billed is the pod's own `cost`)."""
        each = self.secure_price if cloud == "SECURE" else self.community_price
        return None if each is None else each * gpu_count

    @property
    def available(self) -> bool | None:
        return None if self.availability is None else self.availability != "NONE"


@dataclass(frozen=True)
class BillingBucket:
    start: datetime
    end: datetime  # exclusive
    total: Decimal
    gpu: Decimal
    cpu: Decimal
    disk: Decimal


@dataclass(frozen=True)
class PodBilling:
    pod_id: str
    buckets: tuple[BillingBucket, ...]
    reported_total: Decimal | None  # metadata.totals.totalAmount, as RunPod summed it

    @property
    def total(self) -> Decimal:
        return sum((b.total for b in self.buckets), Decimal(0))

    @classmethod
    def from_json(cls, pod_id: str, body: dict[str, Any]) -> PodBilling:
        buckets = tuple(
            BillingBucket(timestamp(r["startTime"]), timestamp(r["endTime"]), money(r.get("totalAmount")),  # type: ignore[arg-type]
                          money(r.get("gpuAmount")), money(r.get("cpuAmount")), money(r.get("diskAmount")))
            for r in body.get("records") or () if r.get("podId") in (None, pod_id))
        totals = (body.get("metadata") or {}).get("totals") or {}
        return cls(pod_id, tuple(sorted(buckets, key=lambda b: b.start)), optional_money(totals.get("totalAmount")))


@dataclass(frozen=True)
class NetworkVolume:
    id: str
    name: str
    size_gb: int
    data_center: str
    type: str | None  # VolumeType: STANDARD or HIGH_PERFORMANCE

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> NetworkVolume:
        return cls(str(body["id"]), str(body.get("name") or ""), int(body.get("size") or 0),
                   str(body.get("dataCenter") or ""), body.get("type"))


def money(value: Any) -> Decimal:
    return optional_money(value) or Decimal(0)


def optional_money(value: Any) -> Decimal | None:
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def timestamp(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def rfc3339_text(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
