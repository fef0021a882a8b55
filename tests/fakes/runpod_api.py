"""A local stand-in for RunPod's GraphQL API (POST /graphql): the operations our provider and the
runpod SDK send, answered in RunPod's shapes, every request recorded, refusals on demand."""

from __future__ import annotations

import json
import re
import secrets
import string
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes import LoopbackHttpServer

GPU_TYPES = {"NVIDIA H100 PCIe": {"id": "NVIDIA H100 PCIe", "displayName": "H100 PCIe", "memoryInGb": 80}}
NO_CAPACITY = ("There are no longer any instances available with the requested specifications. "
               "Please refresh and try again.")
NO_FUNDS = "Insufficient balance: add funds to your account to deploy this pod."
SPOT_REMOVED = 'Cannot query field "podRentInterruptable" on type "Mutation".'
OPERATIONS = ("podFindAndDeployOnDemand", "podRentInterruptable", "podTerminate", "gpuTypes", "pod", "myself")
ENV_PAIR = re.compile(r'\{\s*key:\s*"([^"]*)",\s*value:\s*"([^"]*)"\s*\}')
FIELD = re.compile(r'(\w+):\s*("[^"]*"|[^\s,{}\[\]]+)')


@dataclass
class Request:
    operation: str
    input: dict[str, Any]
    query: str
    authorization: str


@dataclass
class FakeRunPod(LoopbackHttpServer):
    """`url` is what RunPodConfig.api_url (or the SDK's $RUNPOD_API_BASE_URL) should be."""

    api_key: str = "test-key"
    minimum_bid: float | None = 1.25
    on_demand_price: float | None = 2.39
    spot_charge: float | None = None  # what a spot pod costs when not its bid (costPerHr)
    requests: list[Request] = field(default_factory=list)
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    no_capacity_left: int = 0
    no_funds: bool = False
    spot_removed: bool = False
    terminate_refusal: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def exit_pod(self, pod_id: str) -> None:
        """The container stopped (a crash, a preemption): RunPod keeps the pod, EXITED."""
        with self.lock:
            self.pods[pod_id]["desiredStatus"] = "EXITED"

    def sent(self, operation: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.operation == operation]

    # --- GraphQL --------------------------------------------------------------------------------

    def answer(self, query: str, authorization: str) -> tuple[int, dict[str, Any]]:
        operation, at = locate(query)
        given = parse_input(query[at:])
        with self.lock:
            self.requests.append(Request(operation, given, query, authorization))
            resolve = getattr(self, f"_{operation}", None)
            if resolve is None or (operation == "podRentInterruptable" and self.spot_removed):
                message = SPOT_REMOVED if resolve else f"unknown operation in {query[:60]!r}"
                return 400, {"errors": [{"message": message, "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]}
            try:
                data = resolve(given)
            except RefusedError as refusal:
                return 200, {"errors": [{"message": str(refusal), "path": [operation]}], "data": {operation: None}}
        return 200, {"data": {operation: select(data, query[at + len(operation):])}}

    def _gpuTypes(self, given: dict[str, Any]) -> list[dict[str, Any]]:
        found = [gpu for gpu_id, gpu in GPU_TYPES.items() if given.get("id", gpu_id) == gpu_id]
        prices = {"minimumBidPrice": self.minimum_bid, "uninterruptablePrice": self.on_demand_price}
        return [gpu | {"lowestPrice": prices, "securePrice": self.on_demand_price} for gpu in found]

    def _podFindAndDeployOnDemand(self, given: dict[str, Any]) -> dict[str, Any]:
        return self._create(given, "ON_DEMAND", self.on_demand_price or 7.99)

    def _podRentInterruptable(self, given: dict[str, Any]) -> dict[str, Any]:
        return self._create(given, "INTERRUPTABLE", self.spot_charge or float(given["bidPerGpu"]))

    def _create(self, given: dict[str, Any], pod_type: str, cost: float) -> dict[str, Any]:
        if self.no_funds:
            raise RefusedError(NO_FUNDS)
        if self.no_capacity_left > 0:
            self.no_capacity_left -= 1
            raise RefusedError(NO_CAPACITY)
        pod_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(14))
        self.pods[pod_id] = {"id": pod_id, "name": given["name"], "imageName": given["imageName"], "podType": pod_type,
                             "desiredStatus": "RUNNING", "costPerHr": cost, "gpuCount": given.get("gpuCount", 1),
                             "env": [f"{k}={v}" for k, v in given.get("env", {}).items()], "machineId": "m-fake",
                             "machine": {"podHostId": f"{pod_id}-host", "gpuDisplayName": "H100 PCIe"}}
        return self.pods[pod_id]

    def _pod(self, given: dict[str, Any]) -> dict[str, Any] | None:
        return self.pods.get(given["podId"])

    def _podTerminate(self, given: dict[str, Any]) -> None:
        if self.terminate_refusal:
            raise RefusedError(self.terminate_refusal)
        if self.pods.pop(given["podId"], None) is None:
            raise RefusedError("Pod not found.")  # wording unverified; the provider must not depend on it

    def _myself(self, given: dict[str, Any]) -> dict[str, Any]:
        return {"pods": list(self.pods.values())}


def locate(query: str) -> tuple[str, int]:
    """The operation (the query's top-level field) and where it starts."""
    for operation in OPERATIONS:
        found = re.search(rf"\b{operation}\s*\(", query) or re.search(rf"\b{operation}\s*\{{", query)
        if found:
            return operation, found.start()
    return "unknown", 0


def parse_input(call: str) -> dict[str, Any]:
    """The operation's `input: {...}`: strings unquoted, env as a dict, the rest as text."""
    head = call.split("{", 1)[0]
    if "(" not in head:
        return {}
    body = call[call.find("(") + 1:call.find(")")]
    env = dict(ENV_PAIR.findall(body))
    given: dict[str, Any] = {k: v.strip('"') for k, v in FIELD.findall(ENV_PAIR.sub("", body)) if k != "input"}
    return given | ({"env": env} if env else {})


def select(data: Any, rest: str) -> Any:
    """Only the fields the query asked for, as a GraphQL server answers (one level deep); `rest`
    is the query after the operation's name."""
    if not isinstance(data, (dict, list)):
        return data
    if rest.lstrip().startswith("("):
        rest = rest[rest.find(")") + 1:]
    wanted, depth = set(), 0
    for token in re.findall(r"[{}]|\w+", rest):
        depth += {"{": 1, "}": -1}.get(token, 0)
        if depth == 1 and token not in "{}":
            wanted.add(token)
        if depth <= 0 and token == "}":
            break
    pick = (lambda item: {k: v for k, v in item.items() if k in wanted}) if wanted else (lambda item: item)
    return [pick(item) for item in data] if isinstance(data, list) else pick(data)


class RefusedError(Exception):
    """RunPod answers a refused mutation with HTTP 200 and {"errors": [{"message": ...}]}."""


def _handler(fake: FakeRunPod) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            given = self.headers.get("Authorization", "")
            key = given.removeprefix("Bearer ") or parse_qs(urlsplit(self.path).query).get("api_key", [""])[0]
            if urlsplit(self.path).path != "/graphql":
                return self._send(404, {"error": "not found"})
            if key != fake.api_key:
                return self._send(401, {"error": "Unauthorized"})
            query = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))["query"]
            self._send(*fake.answer(query, given))

        def _send(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            pass

    return Handler
