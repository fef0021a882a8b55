"""A webhook receiver on a loopback port, as a team's service would run one: it verifies each request
with the official `openai` client's `webhooks.unwrap` (Standard Webhooks: webhook-id,
webhook-timestamp, webhook-signature), answers with the next status in `answers` (then 200), and
keeps what it accepted and every request it saw."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from openai import OpenAI

from tests.fakes import LoopbackHttpServer


@dataclass
class WebhookReceiver(LoopbackHttpServer):
    secret: str = ""  # the endpoint's whsec_ secret, once it was registered
    answers: list[int] = field(default_factory=list)
    accepted: list[Any] = field(default_factory=list)        # the unwrapped events answered 200
    requests: list[dict[str, Any]] = field(default_factory=list)  # every request: headers, body, answer, error
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/lora-pipeline?team=ml"

    def verify(self, body: bytes, headers: dict[str, str]) -> Any:
        """The event, as the openai client unwraps it; raises on a bad signature, time or header."""
        return OpenAI(api_key="unused", webhook_secret=self.secret).webhooks.unwrap(body, headers)


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {name.lower(): value for name, value in self.headers.items()}
            error = None
            try:
                event = receiver.verify(body, headers)
            except Exception as exc:  # noqa: BLE001 - a refused signature is an answer, not a crash
                event, error = None, f"{type(exc).__name__}: {exc}"
            with receiver.lock:
                status = 400 if error else receiver.answers.pop(0) if receiver.answers else 200
                receiver.requests.append({"headers": headers, "body": body, "status": status, "error": error})
                if status == 200:
                    receiver.accepted.append(event)
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"no")

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
