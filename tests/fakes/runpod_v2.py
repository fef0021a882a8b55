"""A local stand-in for RunPod's REST API v2 (runpod/docs api-reference-v2/openapi.json): pods, the
GPU catalog, pod billing and network volumes, in the documented shapes; RFC 9457 problems
(`application/problem+json`: title, status, detail, errors) for refusals; `RateLimit` and
`RateLimit-Policy` on every authenticated answer; every request recorded.

Time is the fake's own (`now`, moved by `advance`): pods bill their RUNNING seconds times `cost` into
the buckets of GET /v2/billing/pods. A pod moves PROVISIONING → STARTING → RUNNING one step per
GET /v2/pods/{id} (or at once with `progress`); `set_status` makes it EXITED, ERROR or TERMINATED.
Wording of `detail` for capacity, funds and unknown GPU refusals is ours: the OpenAPI gives none."""

from __future__ import annotations

import json
import re
import secrets
import string
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes import LoopbackHttpServer

H100 = "NVIDIA H100 PCIe"
NO_CAPACITY = "There are no longer any instances available with the requested specifications."
NO_FUNDS = "Insufficient balance: add funds to your account to deploy this pod."
LEVELS = ("NONE", "LOW", "MEDIUM", "HIGH")
POLICY = (("minute", 60, 60), ("hour", 3000, 3600), ("day", 50000, 86400))
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def default_gpus() -> dict[str, dict[str, Any]]:
    return {H100: {"id": H100, "name": "H100 PCIe", "pool": None, "manufacturer": "NVIDIA", "memory": 80,
                   "secure": True, "community": True,
                   "price": {"secure": Decimal("2.39"), "community": Decimal("1.99")},
                   "maxCount": {"secure": 8, "community": 2}},
            "NVIDIA GeForce RTX 4090": {
                "id": "NVIDIA GeForce RTX 4090", "name": "RTX 4090", "pool": "ADA_24", "manufacturer": "NVIDIA",
                "memory": 24, "secure": True, "community": True,
                "price": {"secure": Decimal("0.44"), "community": Decimal("0.31"), "serverless": Decimal("1.1")},
                "maxCount": {"secure": 8, "community": 4}}}


@dataclass
class Recorded:
    method: str
    path: str  # without the query, percent-decoded
    query: dict[str, str]
    headers: dict[str, str]
    json: Any


@dataclass
class FakeRunPodV2(LoopbackHttpServer):
    """`url` is the client's base URL (the OpenAPI's server is https://api.runpod.io; paths carry /v2)."""

    api_key: str = "test-key"
    gpus: dict[str, dict[str, Any]] = field(default_factory=default_gpus)
    # stock per GPU type and data center (AvailabilityLevel); a create needs one that is not NONE
    stock: dict[str, dict[str, str]] = field(default_factory=lambda: {
        H100: {"US-KS-2": "HIGH", "EU-RO-1": "LOW"}, "NVIDIA GeForce RTX 4090": {"US-KS-2": "MEDIUM"}})
    now: datetime = T0
    no_capacity_next: int = 0  # the next n creates are refused for capacity (400)
    insufficient_funds: bool = False  # creates are refused with 402
    rate_limit_next: int = 0  # the next n requests get 429
    retry_after_s: int | None = 12  # None: a 429 without Retry-After (the RateLimit header says when)
    server_error_next: int = 0  # the next n requests get 503
    disconnect_next: int = 0  # the next n requests are dropped without an answer
    fail_after_create_next: int = 0  # the next n creates make the pod, then answer 503
    billing_lag_s: float = 0.0  # running seconds younger than this are not billed yet (RunPod bills every 5 min)
    requests: list[Recorded] = field(default_factory=list)
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)
    running: dict[str, list[list[datetime | None]]] = field(default_factory=dict)  # pod id -> [start, end]
    rates: dict[str, Decimal] = field(default_factory=dict)  # pod id -> USD/hour billed while RUNNING
    lock: threading.RLock = field(default_factory=threading.RLock)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    # --- what tests do ----------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += timedelta(seconds=seconds)

    def progress(self, pod_id: str, to: str = "RUNNING") -> None:
        with self.lock:
            while self.pods[pod_id]["status"] != to and self.pods[pod_id]["status"] in ("PROVISIONING", "STARTING"):
                self._step(pod_id)

    def set_status(self, pod_id: str, status: str) -> None:
        """EXITED (container stopped: crash, $0 balance), ERROR, TERMINATED (still readable, cost 0)."""
        with self.lock:
            self._move(pod_id, status)

    def sent(self, method: str, path: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    # --- the API ----------------------------------------------------------------------------------

    def answer(self, method: str, target: str, headers: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        """(status, JSON body or None, extra headers); ("drop", …) is signalled by status 0."""
        split = urlsplit(target)
        path, query = unquote(split.path), {k: v[0] for k, v in parse_qs(split.query).items()}
        with self.lock:
            self.requests.append(Recorded(method, path, query, headers, body))
            token = headers.get("Authorization", "")
            if not token.startswith("Bearer "):
                return problem(401, "missing bearer token")
            if token.removeprefix("Bearer ") != self.api_key:
                return problem(401, "invalid bearer token")
            if self.disconnect_next > 0:
                self.disconnect_next -= 1
                return 0, None, {}
            if self.rate_limit_next > 0:
                self.rate_limit_next -= 1
                status, payload, extra = problem(429, "rate limit exceeded for the minute window")
                wait = self.retry_after_s if self.retry_after_s is not None else 12
                extra = extra | self._quota(exhausted_for=wait)
                if self.retry_after_s is not None:
                    extra["Retry-After"] = str(self.retry_after_s)
                return status, payload, extra
            if self.server_error_next > 0:
                self.server_error_next -= 1
                status, payload, extra = problem(503, "upstream unavailable")
            else:
                status, payload, extra = self._route(method, path, query, body)
            return status, payload, extra | self._quota()

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        routes = (("GET", r"/v2/pods", self._list_pods), ("POST", r"/v2/pods", self._create_pod),
                  ("GET", r"/v2/pods/([^/]+)", self._get_pod), ("DELETE", r"/v2/pods/([^/]+)", self._delete_pod),
                  ("POST", r"/v2/pods/([^/]+)/action", self._pod_action),
                  ("GET", r"/v2/catalog/gpus", self._list_gpus), ("GET", r"/v2/catalog/gpus/([^/]+)", self._get_gpu),
                  ("GET", r"/v2/billing/pods", self._pod_billing),
                  ("GET", r"/v2/network-volumes", self._list_volumes),
                  ("POST", r"/v2/network-volumes", self._create_volume),
                  ("GET", r"/v2/network-volumes/([^/]+)", self._get_volume),
                  ("DELETE", r"/v2/network-volumes/([^/]+)", self._delete_volume))
        allowed = [m for m, pattern, _ in routes if re.fullmatch(pattern, path)]
        for route_method, pattern, resolve in routes:
            found = re.fullmatch(pattern, path)
            if found and route_method == method:
                return resolve(*found.groups(), query=query, body=body)
        if allowed:
            status, payload, extra = problem(405, "The requested method is not allowed for this path.")
            return status, payload, extra | {"Allow": ", ".join(allowed)}
        return problem(404, "resource not found")

    def _create_pod(self, query: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        errors = validate(body, CREATE_POD)
        if errors:
            return problem(422, "Request validation failed.", errors)
        if ("gpu" in body) == ("cpu" in body):
            return problem(400, "exactly one of gpu or cpu must be set")
        mounts = body.get("mounts") or {}
        if "persistent" in mounts and "network" in mounts:
            return problem(400, "at most one of mounts.persistent or mounts.network may be set")
        for mount in mounts.get("network", ()):
            if mount["volumeId"] not in self.volumes:
                return problem(400, f"network volume {mount['volumeId']} does not exist")
        if "cpu" in body:
            return problem(400, "CPU pods are not offered by this fake")
        gpu_id, count, cloud = body["gpu"]["id"], body["gpu"].get("count", 1), body.get("cloud", "SECURE")
        if gpu_id not in self.gpus:
            return problem(400, f"GPU type {gpu_id!r} does not exist")
        if self.insufficient_funds:
            return problem(402, NO_FUNDS)
        wanted = body.get("dataCenterIds") or list(self.stock.get(gpu_id, {}))
        placed = [dc for dc in wanted if self.stock.get(gpu_id, {}).get(dc, "NONE") != "NONE"]
        if self.no_capacity_next > 0 or not placed or count > self.gpus[gpu_id]["maxCount"][cloud.lower()]:
            self.no_capacity_next = max(0, self.no_capacity_next - 1)
            return problem(400, NO_CAPACITY)
        pod_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(10))
        rate = self.gpus[gpu_id]["price"][cloud.lower()] * count
        self.rates[pod_id], self.running[pod_id] = rate, []
        self.pods[pod_id] = {
            "id": pod_id, "name": body["name"], "image": body.get("image", ""), "args": body.get("args", ""),
            "disk": body.get("disk", 20), "ports": body.get("ports", []), "env": body.get("env", {}),
            "registry": body.get("registry"), "status": "PROVISIONING", "actions": [], "mounts": mounts,
            "gpu": {"id": gpu_id, "count": count}, "cloud": cloud, "dataCenterId": placed[0], "cudaVersion": "12.8",
            "ssh": {"proxy": {"host": "ssh.runpod.io", "port": 22, "username": f"{pod_id}-64411eb2",
                              "command": f"ssh {pod_id}-64411eb2@ssh.runpod.io"}, "direct": None},
            "template": None, "cost": rate, "locked": False, "globalNetworking": {"enabled": False},
            "runtime": None, "createdAt": stamp(self.now), "startedAt": None}
        self._move(pod_id, "PROVISIONING")
        if self.fail_after_create_next > 0:
            self.fail_after_create_next -= 1
            return problem(503, "upstream timed out")
        return 201, self._pod_view(pod_id), {}

    def _get_pod(self, pod_id: str, query: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        if pod_id not in self.pods:
            return problem(404, "pod not found")
        if self.pods[pod_id]["status"] in ("PROVISIONING", "STARTING"):
            self._step(pod_id)
        return 200, self._pod_view(pod_id), {}

    def _list_pods(self, query: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        return 200, {"pods": [self._pod_view(pod_id) for pod_id in self.pods]}, {}

    def _delete_pod(self, pod_id: str, query: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        if pod_id not in self.pods:
            return problem(404, "pod not found")
        self._move(pod_id, "TERMINATED")
        del self.pods[pod_id]  # billing keeps its intervals; the pod no longer appears in listPods
        return 204, None, {}

    def _pod_action(self, pod_id: str, query: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        if pod_id not in self.pods:
            return problem(404, "pod not found")
        errors = validate(body, POD_ACTION)
        if errors:
            return problem(422, "Request validation failed.", errors)
        action, status = body["action"], self.pods[pod_id]["status"]
        if action not in ACTIONS_BY_STATUS[status]:
            return problem(409, f"action {action} is not valid for a pod in status {status}")
        if action == "terminate":
            return self._delete_pod(pod_id, query, body)
        self._move(pod_id, {"stop": "EXITED", "start": "STARTING", "restart": "RUNNING"}[action])
        return 200, self._pod_view(pod_id), {}

    def _list_gpus(self, query: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        refused = self._catalog_query(query)
        return refused or (200, {"gpus": [self._gpu_view(gpu_id, query) for gpu_id in self.gpus]}, {})

    def _get_gpu(self, gpu_id: str, query: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        if gpu_id not in self.gpus:
            return problem(404, f"GPU type {gpu_id!r} not found")
        return self._catalog_query(query) or (200, self._gpu_view(gpu_id, query), {})

    def _pod_billing(self, query: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        size = query.get("bucketSize", "day")
        if size not in BUCKETS:
            return problem(422, "Request validation failed.", [f"bucketSize: value must be one of {list(BUCKETS)}"])
        if "lastN" in query and ("startTime" in query or "endTime" in query):
            return problem(400, "lastN is mutually exclusive with startTime/endTime")
        try:
            if "lastN" in query:
                end = bucket_next(bucket_floor(self.now, size), size)
                start = end
                for _ in range(int(query["lastN"])):
                    start = bucket_floor(start - timedelta(seconds=1), size)
            else:
                start = parse(query["startTime"]) if "startTime" in query else self.now - timedelta(days=30)
                end = parse(query["endTime"]) if "endTime" in query else self.now
                start = bucket_floor(start, size)
                end = end if bucket_floor(end, size) == end else bucket_next(bucket_floor(end, size), size)
        except ValueError as exc:
            return problem(422, "Request validation failed.", [str(exc)])
        records = []
        billed_until = self.now - timedelta(seconds=self.billing_lag_s)  # "Billing runs every 5 minutes"
        for pod_id in sorted(self.running):
            if query.get("podId") not in (None, pod_id):
                continue
            at = start
            while at < end:
                upto = bucket_next(at, size)
                seconds = sum(overlap(s, min(e or self.now, billed_until), at, upto) for s, e in self.running[pod_id])
                if seconds:
                    amount = (self.rates[pod_id] * Decimal(seconds) / 3600).quantize(Decimal("0.000001"))
                    records.append({"startTime": stamp(at), "endTime": stamp(upto), "podId": pod_id,
                                    "totalAmount": amount, "gpuAmount": amount, "cpuAmount": 0, "diskAmount": 0})
                at = upto
        total = sum((r["totalAmount"] for r in records), Decimal(0))
        return 200, {"records": records, "metadata": {
            "query": {"startTime": stamp(start), "endTime": stamp(end), "bucketSize": size,
                      "podId": query.get("podId")},
            "recordCount": len(records), "uniquePodCount": len({r["podId"] for r in records}),
            "totals": {"totalAmount": total, "gpuAmount": total, "cpuAmount": 0, "diskAmount": 0}}}, {}

    def _create_volume(self, query: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        errors = validate(body, CREATE_VOLUME)
        if errors:
            return problem(422, "Request validation failed.", errors)
        volume_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
        self.volumes[volume_id] = {"id": volume_id, "name": body["name"], "size": body["size"],
                                   "dataCenter": body["dataCenter"], "type": body.get("type", "STANDARD")}
        return 201, self.volumes[volume_id], {}

    def _get_volume(self, volume_id: str, query: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        found = self.volumes.get(volume_id)
        return (200, found, {}) if found else problem(404, "network volume not found")

    def _list_volumes(self, query: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        return 200, {"networkVolumes": list(self.volumes.values())}, {}

    def _delete_volume(self, volume_id: str, query: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        return (204, None, {}) if self.volumes.pop(volume_id, None) else problem(404, "network volume not found")

    # --- state ------------------------------------------------------------------------------------

    def _step(self, pod_id: str) -> None:
        self._move(pod_id, {"PROVISIONING": "STARTING", "STARTING": "RUNNING"}[self.pods[pod_id]["status"]])

    def _move(self, pod_id: str, status: str) -> None:
        pod, intervals = self.pods[pod_id], self.running[pod_id]
        if intervals and intervals[-1][1] is None and status != "RUNNING":
            intervals[-1][1] = self.now
        if status == "RUNNING" and pod["status"] != "RUNNING":
            intervals.append([self.now, None])
            pod["startedAt"] = stamp(self.now)
        pod["status"], pod["actions"] = status, list(ACTIONS_BY_STATUS[status])
        pod["cost"] = Decimal(0) if status in ("EXITED", "TERMINATED") else self.rates[pod_id]

    def _pod_view(self, pod_id: str) -> dict[str, Any]:
        pod = dict(self.pods[pod_id])
        if pod["status"] == "RUNNING":
            uptime = int((self.now - self.running[pod_id][-1][0]).total_seconds())  # type: ignore[operator]
            pod["runtime"] = {"uptime": uptime, "gpus": [{"util": 94, "memoryUtil": 78}], "ports": []}
        return pod

    def _catalog_query(self, query: dict[str, str]) -> tuple[int, Any, dict[str, str]] | None:
        include = query.get("include")
        if include not in (None, "AVAILABILITY"):
            return problem(422, "Request validation failed.", ["include: value must be one of ['AVAILABILITY']"])
        if include and not query.get("product"):
            return problem(400, "product is required with include=AVAILABILITY")
        scoped = [name for name in ("product", "count", "cloud", "countryCodes", "cudaVersions") if name in query]
        if scoped and not include:
            return problem(400, f"{scoped[0]} is valid only with include=AVAILABILITY")
        if query.get("cloud", "SECURE") not in ("SECURE", "COMMUNITY"):
            return problem(422, "Request validation failed.", ["cloud: value must be one of ['SECURE', 'COMMUNITY']"])
        return None

    def _gpu_view(self, gpu_id: str, query: dict[str, str]) -> dict[str, Any]:
        view = dict(self.gpus[gpu_id])
        if query.get("include") == "AVAILABILITY":
            cloud, count = query.get("cloud", "SECURE").lower(), int(query.get("count", 1))
            stock = {} if count > view["maxCount"][cloud] else self.stock.get(gpu_id, {})
            offered = {dc: level for dc, level in stock.items() if level != "NONE"}
            view["availability"] = max(offered.values(), key=LEVELS.index, default="NONE")
            if offered:
                view["dataCenters"] = [{"id": dc, "name": dc, "availability": level} for dc, level in offered.items()]
            view["cudaVersions"] = [{"version": "12.8", "available": bool(offered)}]
        return view

    def _quota(self, exhausted_for: int | None = None) -> dict[str, str]:
        used = len(self.requests)
        live = ", ".join(f'"{name}";r={0 if exhausted_for and name == "minute" else max(0, quota - used)};'
                         f't={exhausted_for if exhausted_for and name == "minute" else window}'
                         for name, quota, window in POLICY)
        return {"RateLimit": live, "RateLimit-Policy": ", ".join(f'"{n}";q={q};w={w}' for n, q, w in POLICY)}


TITLES = {400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
          405: "Method Not Allowed", 409: "Conflict", 422: "Unprocessable Entity", 429: "Too Many Requests",
          503: "Service Unavailable"}


def problem(status: int, detail: str, errors: list[str] | None = None) -> tuple[int, Any, dict[str, str]]:
    body: dict[str, Any] = {"title": TITLES[status], "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return status, body, {"Content-Type": "application/problem+json"}


def overlap(start: datetime, end: datetime, lo: datetime, hi: datetime) -> int:
    return max(0, int((min(end, hi) - max(start, lo)).total_seconds()))


def stamp(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def to_json(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else str(value)


# --- the OpenAPI's request schemas, as far as the fake checks them (422 with `errors` when broken) ---

CUDA = {"type": "string", "pattern": r"^\d+\.\d+$"}
STRINGS = {"type": "array", "items": {"type": "string"}}
CREATE_POD: dict[str, Any] = {  # CreatePodRequest: ContainerConfig + name, cloud, cpu, gpu, mounts, …
    "type": "object", "required": ["name"], "additionalProperties": False, "properties": {
        "args": {"type": "string"}, "disk": {"type": "integer", "minimum": 1},
        "env": {"type": "object", "additionalProperties": {"type": "string"}}, "image": {"type": "string"},
        "ports": STRINGS, "registry": {"type": ["string", "null"]}, "name": {"type": "string", "minLength": 1},
        "cloud": {"enum": ["SECURE", "COMMUNITY"]}, "cpu": {"type": "object"}, "dataCenterIds": STRINGS,
        "globalNetworking": {"type": "boolean"}, "startJupyter": {"type": "boolean"}, "startSsh": {"type": "boolean"},
        "templateId": {"type": "string", "minLength": 1},
        "gpu": {"type": "object", "required": ["id"], "additionalProperties": False, "properties": {
            "id": {"type": "string"}, "count": {"type": "integer", "minimum": 1},
            "allowedCudaVersions": {"type": "array", "items": CUDA}, "minCudaVersion": CUDA}},
        "mounts": {"type": "object", "additionalProperties": False, "properties": {
            "persistent": {"type": "object", "required": ["size", "path"], "additionalProperties": False,
                           "properties": {"size": {"type": "integer", "minimum": 10}, "path": {"type": "string"}}},
            "network": {"type": "array", "maxItems": 1, "items": {
                "type": "object", "required": ["volumeId", "path"], "additionalProperties": False,
                "properties": {"volumeId": {"type": "string"}, "path": {"type": "string"}}}}}}}}
POD_ACTION: dict[str, Any] = {"type": "object", "required": ["action"], "additionalProperties": False,
                              "properties": {"action": {"enum": ["start", "stop", "restart", "terminate"]}}}
CREATE_VOLUME: dict[str, Any] = {
    "type": "object", "required": ["name", "size", "dataCenter"], "additionalProperties": False, "properties": {
        "dataCenter": {"type": "string", "minLength": 1}, "name": {"type": "string", "minLength": 1},
        "size": {"type": "integer", "minimum": 10, "maximum": 4096},
        "type": {"enum": ["STANDARD", "HIGH_PERFORMANCE"]}}}
ACTIONS_BY_STATUS = {"RUNNING": ("stop", "restart", "terminate"), "EXITED": ("start", "terminate"),
                     "ERROR": ("start", "terminate"), "PROVISIONING": ("stop", "terminate"),
                     "STARTING": ("stop", "terminate"), "TERMINATED": ()}
JSON_TYPES = {"string": str, "object": dict, "array": list, "boolean": bool, "null": type(None)}


def validate(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """The JSON Schema keywords the request schemas above use; messages in the OpenAPI example's style."""
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: value must be one of {', '.join(repr(v) for v in schema['enum'])}"]
    kinds = schema.get("type")
    if kinds and not any(of_type(value, kind) for kind in ([kinds] if isinstance(kinds, str) else kinds)):
        return [f"{where}: expected {kinds}, got {type(value).__name__}"]
    errors = []
    if isinstance(value, str) and len(value) < schema.get("minLength", 0):
        errors.append(f"{where}: length must be >= {schema['minLength']}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{where}: does not match pattern {schema['pattern']!r}")
    if of_type(value, "integer") and value < schema.get("minimum", value):
        errors.append(f"{where}: must be >= {schema['minimum']}")
    if of_type(value, "integer") and value > schema.get("maximum", value):
        errors.append(f"{where}: must be <= {schema['maximum']}")
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            errors.append(f"{where}: at most {schema['maxItems']} items")
        for i, item in enumerate(value):
            errors += validate(item, schema.get("items", {}), f"{where}[{i}]")
    if isinstance(value, dict):
        known, extra = schema.get("properties", {}), schema.get("additionalProperties", True)
        errors += [f"{where}: missing property '{name}'" for name in schema.get("required", ()) if name not in value]
        for name, item in value.items():
            if name in known:
                errors += validate(item, known[name], f"{where}.{name}")
            elif extra is False:
                errors.append(f"{where}: additional properties '{name}' not allowed")
            elif isinstance(extra, dict):
                errors += validate(item, extra, f"{where}.{name}")
    if where == "$" and schema is CREATE_POD and isinstance(value, dict) and "templateId" not in value \
            and "image" not in value:
        errors.append("$: missing property 'image'")  # if not templateId then image is required
    return errors


def of_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, JSON_TYPES[kind])


BUCKETS = ("hour", "day", "week", "month", "year")


def bucket_floor(at: datetime, size: str) -> datetime:
    at = at.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    if size == "hour":
        return at
    at = at.replace(hour=0)
    return {"day": at, "week": at - timedelta(days=at.weekday()), "month": at.replace(day=1),
            "year": at.replace(month=1, day=1)}[size]


def bucket_next(at: datetime, size: str) -> datetime:
    if size in ("hour", "day", "week"):
        return at + {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}[size]
    if size == "year":
        return at.replace(year=at.year + 1)
    return at.replace(year=at.year + at.month // 12, month=at.month % 12 + 1)


def _handler(fake: FakeRunPodV2) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                return self._send(*problem(400, "request body is not JSON"))
            status, payload, extra = fake.answer(self.command, self.path, dict(self.headers.items()), body)
            if status == 0:
                self.close_connection = True
                return
            self._send(status, payload, extra)

        do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve  # noqa: N815 - http.server's names

        def _send(self, status: int, body: Any, extra: dict[str, str]) -> None:
            payload = b"" if body is None else json.dumps(body, default=to_json).encode()
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", extra.pop("Content-Type", "application/json"))
            for name, value in extra.items():
                if name != "Content-Type":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            pass

    return Handler
