"""The web API as the client calls it: JSON requests with the Bearer token, refusals as ApiError with
the server's own sentence, and the job page's live stream (Server-Sent Events) read line by line."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from pipeline.client.config import Credentials

USER_AGENT = "lora-pipeline-cli/1"
# The stream sends a comment at least every 15 s: a longer silence is a lost connection.
STREAM_READ_TIMEOUT_S = 45.0


class ApiError(Exception):
    """The API refused (4xx) or failed (5xx); `detail` is its message."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class UnreachableError(Exception):
    """No answer from the API (address wrong, server down, network)."""


@dataclass(frozen=True)
class StreamEvent:
    event: str
    data: str
    id: str | None


class Api:
    def __init__(self, credentials: Credentials, timeout_s: float = 30.0) -> None:
        self.base = credentials.url
        self.http = httpx.Client(base_url=credentials.url, timeout=timeout_s, follow_redirects=False, headers={
            "Authorization": f"Bearer {credentials.token}", "User-Agent": USER_AGENT, "Accept": "application/json"})

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise UnreachableError(f"{self.base} does not answer ({type(exc).__name__}: {exc})") from None
        if response.status_code >= 400:
            raise ApiError(response.status_code, refusal(response))
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v not in (None, [], "")})

    def post(self, path: str, body: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=body, **kwargs) if body is not None else \
            self.request("POST", path, **kwargs)

    def download(self, path: str, target: Path | None, folder: Path) -> tuple[Path, int]:
        """Streams a file to `target` (default: its own name, in `folder`); returns the path and size."""
        try:
            with self.http.stream("GET", path, headers={"Accept": "*/*"}) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ApiError(response.status_code, refusal(response))
                path_out = target or folder / filename(response, path)
                size = 0
                with path_out.open("wb") as out:
                    for chunk in response.iter_bytes(1 << 16):
                        out.write(chunk)
                        size += len(chunk)
        except httpx.HTTPError as exc:
            raise UnreachableError(f"{self.base} does not answer ({type(exc).__name__}: {exc})") from None
        return path_out, size

    def stream(self, path: str, last_event_id: str | None = None, **params: Any) -> Iterator[StreamEvent]:
        """The events of one connection to a Server-Sent Events route, until the server ends it."""
        headers = {"Accept": "text/event-stream"} | ({"Last-Event-ID": last_event_id} if last_event_id else {})
        timeout = httpx.Timeout(30.0, read=STREAM_READ_TIMEOUT_S)
        try:
            with self.http.stream("GET", path, params=params, headers=headers, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ApiError(response.status_code, refusal(response))
                yield from parse_sse(response.iter_lines())
        except httpx.HTTPError as exc:
            raise UnreachableError(f"the live stream stopped ({type(exc).__name__}: {exc})") from None


def parse_sse(lines: Iterator[str]) -> Iterator[StreamEvent]:
    """The text/event-stream format: `event:`, `data:` (joined by newlines), `id:`; a blank line ends
    an event; lines starting with `:` are comments (the server's keep-alives)."""
    event, event_id = "message", None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield StreamEvent(event, "\n".join(data), event_id)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            event_id = value
    if data:
        yield StreamEvent(event, "\n".join(data), event_id)


def refusal(response: httpx.Response) -> str:
    """The server's sentence: the JSON API's `detail`, an OpenAI-style `error.message`, or an HTML
    error page's message."""
    try:
        body = response.json()
    except ValueError:
        found = re.search(r'<p class="error"[^>]*>(.*?)</p>', response.text, re.S)
        text = html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip() if found else ""
        return text or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if body.get("detail"):
            return str(body["detail"])
    return f"HTTP {response.status_code}"


def filename(response: httpx.Response, path: str) -> str:
    found = re.search(r'filename="?([^";]+)"?', response.headers.get("content-disposition", ""))
    name = found.group(1) if found else path.rstrip("/").rsplit("/", 1)[-1]
    return Path(name).name or "download"
