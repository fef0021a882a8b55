"""A client of any OpenAI-compatible chat-completions endpoint (a hosted model or the team's own vLLM)
for the model judge (docs/quality-validation.md, "The model judge"). httpx directly rather than the
`openai` package: the control plane already depends on httpx, and the retry policy is ours to state
and test — 429 waits what `Retry-After` (or `retry-after-ms`) says, 5xx and dropped connections back
off exponentially, both bounded in attempts and in how long one wait may be; a 200 whose body is not
a chat completion counts as a malformed answer (the caller asks again, then marks the item unscored).

The key goes in the Authorization header and nowhere else: no message, log line or exception of this
module carries it (a refusal of the key says only its HTTP status)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import httpx

RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
BACKOFF_CAP_S = 30.0


@dataclass(frozen=True)
class JudgeConfig:
    url: str                 # the API's base URL; requests go to {url}/chat/completions
    model: str
    api_key: str = ""
    input_price: Decimal = Decimal(0)   # USD per million prompt tokens
    output_price: Decimal = Decimal(0)  # USD per million completion tokens
    timeout_s: float = 60.0
    max_attempts: int = 6               # per request, over 429s, 5xx and dropped connections
    max_wait_s: float = 120.0           # a longer Retry-After gives up for now: the item is tried again later
    malformed_retries: int = 2          # answers asked again when not the schema's JSON, before "unscored"
    seed: int = 42
    max_tokens: int = 400

    @property
    def endpoint(self) -> str:
        return self.url.rstrip("/") + "/chat/completions"


@dataclass(frozen=True)
class Completion:
    """One answer: its message content (None: the body was not a chat completion), the model that
    served it, and the tokens billed."""

    content: str | None
    model: str
    prompt_tokens: int
    completion_tokens: int
    problem: str = ""  # why `content` is None


class JudgeUnavailableError(Exception):
    """The judge did not answer within the bounds (rate limited too long, server errors, unreachable):
    nothing is recorded for the item; it is tried again on a later round."""


class JudgeRefusedError(Exception):
    """The endpoint refused the request itself (a bad key, an unknown model, a schema it does not take):
    a setting to fix; nothing is recorded for the item."""


class JudgeClient:
    def __init__(self, config: JudgeConfig, sleep: Callable[[float], None] = time.sleep,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.config, self.sleep = config, sleep
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self.http = httpx.Client(timeout=config.timeout_s, headers=headers, transport=transport)
        self.waited: list[float] = []  # each wait, in order (what a test or a log line reads)

    def close(self) -> None:
        self.http.close()

    def complete(self, messages: list[dict[str, str]], response_format: dict[str, Any]) -> Completion:
        body = {"model": self.config.model, "messages": messages, "response_format": response_format,
                "temperature": 0, "seed": self.config.seed, "max_tokens": self.config.max_tokens}
        for attempt in range(1, self.config.max_attempts + 1):
            try:
                response = self.http.post(self.config.endpoint, json=body)
            except httpx.HTTPError as exc:
                self._back_off(attempt, None, f"the judge at {self._where()} is unreachable ({type(exc).__name__})")
                continue
            if response.status_code == 200:
                return completion(response, self.config.model)
            if response.status_code == 429:
                self._back_off(attempt, retry_after_s(response.headers), "the judge kept answering 429 (rate limited)")
                continue
            if response.status_code in RETRYABLE_STATUSES:
                self._back_off(attempt, None, f"the judge kept answering HTTP {response.status_code}")
                continue
            raise JudgeRefusedError(self._refusal(response))
        raise JudgeUnavailableError("unreachable")  # the loop raises first; kept for the type checker

    def _back_off(self, attempt: int, wait: float | None, why: str) -> None:
        if attempt >= self.config.max_attempts:
            raise JudgeUnavailableError(f"{why}, {attempt} attempts")
        delay = wait if wait is not None else min(BACKOFF_CAP_S, 0.5 * 2 ** (attempt - 1))
        if delay > self.config.max_wait_s:
            raise JudgeUnavailableError(f"{why}: asked to wait {delay:.0f} s, more than {self.config.max_wait_s:.0f} s")
        self.waited.append(delay)
        self.sleep(delay)

    def _where(self) -> str:
        return httpx.URL(self.config.endpoint).host or "its URL"

    def _refusal(self, response: httpx.Response) -> str:
        status = response.status_code
        if status in (401, 403):
            return f"the judge refused the API key (HTTP {status}): check PIPELINE_JUDGE_API_KEY"
        detail = ""
        try:
            error = response.json().get("error")
            detail = str(error.get("message") if isinstance(error, dict) else error or "")
        except (ValueError, AttributeError):
            detail = response.text
        if self.config.api_key:
            detail = detail.replace(self.config.api_key, "[key]")
        return f"the judge refused the request (HTTP {status}): {' '.join(detail.split())[:300]}"


def completion(response: httpx.Response, asked: str) -> Completion:
    """A 200's chat completion; a body that is not one is an answer with no content (malformed)."""
    try:
        body = response.json()
        usage = body.get("usage") or {}
        tokens = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        message = body["choices"][0]["message"]
        content = message.get("content")
        if not isinstance(content, str):
            refusal = message.get("refusal")
            return Completion(None, str(body.get("model") or asked), *tokens,
                              f"the judge refused to answer: {refusal}" if refusal else "the answer has no content")
        return Completion(content, str(body.get("model") or asked), *tokens)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return Completion(None, asked, 0, 0, "the response is not a chat completion")


def retry_after_s(headers: httpx.Headers) -> float | None:
    """`retry-after-ms` (OpenAI's), else `Retry-After` in seconds or as an HTTP date (RFC 9110)."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
