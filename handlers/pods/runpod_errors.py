"""RunPod REST v2 refusals as typed errors, and its rate-limit headers.

Errors are RFC 9457 problems (`application/problem+json`) whose schema (`ErrorResponse`) has only
`title`, `status`, `detail` and an optional `errors` list: no `type` member, no machine-readable
code. So a refusal is classified by its HTTP status, and where one status means two things (400
on createPod: "breaks a cross-field rule, or this GPU and data center combination could not be
placed") by the wording of `detail`. Messages never carry the API key (see `redact`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from handlers.pods.provider import NoCapacityError

UNKNOWN_GPU = re.compile(r"gpu[^.]*\b(unknown|not found|does not exist|invalid|unsupported)|unknown gpu", re.I)


@dataclass(frozen=True)
class Problem:
    status: int
    title: str = ""
    detail: str = ""
    errors: tuple[str, ...] = ()
    type: str = "about:blank"  # RFC 9457's default; RunPod's schema does not send one

    @classmethod
    def from_body(cls, status: int, body: Any) -> Problem:
        if not isinstance(body, dict):
            return cls(status)
        errors = body.get("errors") if isinstance(body.get("errors"), list) else []
        return cls(int(body.get("status") or status), str(body.get("title") or ""), str(body.get("detail") or ""),
                   tuple(str(e) for e in errors), str(body.get("type") or "about:blank"))

    def describe(self) -> str:
        said = "; ".join(part for part in (self.title, self.detail, ", ".join(self.errors)) if part)
        return f"HTTP {self.status}" + (f": {said}" if said else "")


class RunPodApiError(Exception):
    """Any refusal or failure not given a narrower class below."""

    def __init__(self, message: str, problem: Problem | None = None, operation: str = "") -> None:
        super().__init__(message)
        self.problem = problem
        self.operation = operation


class AccountError(RunPodApiError):
    """The account cannot do this (401 bad/missing key, 403 key lacks access, 402 insufficient
    balance): the operator's to fix; retrying changes nothing."""


class UnknownGpuError(RunPodApiError, ValueError):
    """RunPod knows no GPU type by that id (404 from the catalog, or a create refused for it)."""


class RequestInvalidError(RunPodApiError):
    """422: the body does not match the contract (`errors` lists each violation). Never retried."""


class ConflictError(RunPodApiError):
    """409: the action is not valid for the pod's status, or the pod belongs to a cluster."""


class NotFoundError(RunPodApiError):
    """404: no such resource, or not accessible to the caller."""


class RateLimitedError(RunPodApiError):
    """429 after the bounded retries, or with a wait longer than we are willing to sleep."""

    def __init__(self, message: str, problem: Problem | None, operation: str, retry_after_s: float | None) -> None:
        super().__init__(message, problem, operation)
        self.retry_after_s = retry_after_s


class RunPodUnavailableError(RunPodApiError):
    """Network errors or 5xx that outlasted the bounded retries."""


class RunPodNoCapacityError(NoCapacityError):
    """400 on createPod: RunPod could not place this GPU (and data centers) now. Ordinary and retryable;
    `problem.detail` holds RunPod's words."""

    def __init__(self, message: str, problem: Problem, operation: str = "createPod") -> None:
        super().__init__(message)
        self.problem = problem
        self.operation = operation


def error_for(operation: str, problem: Problem, secret: str) -> Exception:
    """The typed error for a refusal (not 429/5xx, which the client retries first)."""
    status, said = problem.status, redact(problem.describe(), secret)
    message = f"RunPod refused {operation} ({said})"
    if status == 401:
        return AccountError(f"RunPod refused the API key ({said}): check RUNPOD_API_KEY", problem, operation)
    if status == 402:
        return AccountError(f"RunPod refused {operation} for lack of funds ({said}): top up the account",
                            problem, operation)
    if status == 403:
        return AccountError(f"The API key may not {operation} ({said}): grant it access", problem, operation)
    if (status == 404 and operation == "getGpuType") or (
            status in (400, 404) and operation == "createPod" and UNKNOWN_GPU.search(problem.detail)):
        return UnknownGpuError(f"RunPod knows no such GPU type ({said})", problem, operation)
    if status == 400 and operation == "createPod":
        return RunPodNoCapacityError(f"RunPod could not place the pod now ({said})", problem, operation)
    if status == 404:
        return NotFoundError(message, problem, operation)
    if status == 409:
        return ConflictError(message, problem, operation)
    if status == 422:
        return RequestInvalidError(message, problem, operation)
    return RunPodApiError(message, problem, operation)


def redact(text: str, secret: str) -> str:
    return text.replace(secret, "[redacted]") if secret else text


# --- RateLimit / RateLimit-Policy / Retry-After ---------------------------------------------------

MEMBER = re.compile(r'\s*"?([\w-]+)"?((?:\s*;\s*\w+\s*=\s*"?[\w.-]*"?)*)')
PARAM = re.compile(r';\s*(\w+)\s*=\s*"?([\w.-]*)"?')


@dataclass(frozen=True)
class Window:
    name: str
    remaining: int | None = None  # r
    reset_s: int | None = None  # t
    quota: int | None = None  # q (from RateLimit-Policy)
    length_s: int | None = None  # w


@dataclass(frozen=True)
class RateLimit:
    """The quota state RunPod sends on every authenticated response (IETF ratelimit-headers draft):
    `RateLimit: "minute";r=0;t=12, "hour";r=2800;t=1812` and
    `RateLimit-Policy: "minute";q=60;w=60, "hour";q=3000;w=3600`."""

    windows: dict[str, Window] = field(default_factory=dict)

    @classmethod
    def from_headers(cls, headers: Any) -> RateLimit | None:
        live, policy = headers.get("RateLimit"), headers.get("RateLimit-Policy")
        if not live and not policy:
            return None
        merged: dict[str, dict[str, int]] = {}
        for text in (live or "", policy or ""):
            for name, params in parse_list(text).items():
                merged.setdefault(name, {}).update(params)
        return cls({name: Window(name, p.get("r"), p.get("t"), p.get("q"), p.get("w")) for name, p in merged.items()})

    def exhausted_wait_s(self) -> int | None:
        """Seconds until every exhausted window (r=0) resets; None when none is exhausted."""
        waits = [w.reset_s for w in self.windows.values() if w.remaining == 0 and w.reset_s is not None]
        return max(waits) if waits else None

    def exhausted(self) -> list[str]:
        return [w.name for w in self.windows.values() if w.remaining == 0]


def parse_list(text: str) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for member in text.split(","):
        matched = MEMBER.match(member)
        if not matched or not matched.group(1):
            continue
        params = {key: int(value) for key, value in PARAM.findall(matched.group(2)) if value.isdigit()}
        found[matched.group(1)] = params
    return found


def retry_after_s(value: str | None) -> float | None:
    """Retry-After: integer seconds on this API; an HTTP date is accepted too (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError):
        return None
