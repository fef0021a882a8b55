"""Loopback stand-ins for the notification channels, speaking the real protocols: an SMTP server
(aiosmtpd) that keeps what it accepts and refuses recipients on demand, and an HTTP server
answering like a Slack incoming webhook, with outages on demand."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler
from typing import Any

from aiosmtpd.controller import Controller

from tests.fakes import LoopbackHttpServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SmtpSink:
    """`refusals[address]`: SMTP replies given to RCPT TO for that address, one per attempt, e.g.
    ["451 4.3.0 Try again later"] or ["550 5.1.1 No such user"]."""

    messages: list[EmailMessage] = field(default_factory=list)
    refusals: dict[str, list[str]] = field(default_factory=dict)

    def start(self) -> SmtpSink:
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list) -> str:
        answers = self.refusals.get(address.lower())
        if answers:
            return answers.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
        return "250 Message accepted for delivery"


@dataclass
class FakeSlack(LoopbackHttpServer):
    """Answers each POST with the next status in `answers` (then 200 "ok"); keeps the payloads it
    accepted in `received` and counts every request."""

    answers: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/XXXX"


def _handler(slack: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with slack.lock:
                slack.requests += 1
                status = slack.answers.pop(0) if slack.answers else 200
                if status == 200:
                    slack.received.append(payload)
            body = {200: b"ok", 404: b"no_service", 429: b"rate_limited"}.get(status, b"service_unavailable")
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
