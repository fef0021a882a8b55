"""The two outside channels, and what their failures mean: a transient one (timeout, connection,
HTTP 429/5xx, SMTP 4xx) is retried with backoff; a permanent one (other HTTP 4xx, SMTP 5xx) is
recorded as failed and shown."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx


class TransientDeliveryError(Exception):
    """The channel could not take the message now; the same message may succeed later."""


class PermanentDeliveryError(Exception):
    """The channel refused the message; sending it again would fail the same way."""


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    user: str = ""
    password: str = ""
    tls: str = "starttls"  # starttls, ssl or none
    timeout_s: float = 10.0


class Mailer:
    """SMTP with the standard library; one connection per message (a handful per event)."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    @property
    def configured(self) -> bool:
        return bool(self.config.host)

    def send(self, message: EmailMessage) -> None:
        try:
            self._send(message)
        except smtplib.SMTPRecipientsRefused as exc:
            address, (code, reply) = max(exc.recipients.items(), key=lambda item: item[1][0])
            raise _by_code(code, f"{address}: {_text(reply)}") from None
        except smtplib.SMTPResponseException as exc:
            raise _by_code(exc.smtp_code, _text(exc.smtp_error)) from None
        except smtplib.SMTPServerDisconnected as exc:
            raise TransientDeliveryError(f"SMTP server disconnected: {exc}") from None
        except smtplib.SMTPException as exc:  # STARTTLS or AUTH not offered: the settings are wrong
            raise PermanentDeliveryError(f"SMTP: {exc}") from None
        except OSError as exc:  # refused, unreachable, timed out, TLS handshake
            raise TransientDeliveryError(f"SMTP {self.config.host}:{self.config.port}: {exc}") from None

    def _send(self, message: EmailMessage) -> None:
        c = self.config
        if c.tls == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_s,
                                                  context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout_s)
        with smtp:
            if c.tls == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if c.user:
                smtp.login(c.user, c.password)
            smtp.send_message(message)


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def _by_code(code: int, text: str) -> Exception:
    error = f"SMTP {code}: {text}"
    return TransientDeliveryError(error) if 400 <= code < 500 else PermanentDeliveryError(error)


class SlackWebhooks:
    """Slack incoming webhooks: a JSON POST answered 200 "ok", or an error status with a reason."""

    def __init__(self, timeout_s: float, client: httpx.Client | None = None) -> None:
        self.client = client or httpx.Client(timeout=timeout_s)

    def post(self, url: str, payload: dict[str, Any]) -> None:
        try:
            response = self.client.post(url, json=payload)
        except httpx.TransportError as exc:  # timeouts, refused connections, broken responses
            raise TransientDeliveryError(f"Slack webhook: {type(exc).__name__}: {exc}") from None
        if response.is_success:
            return
        error = f"Slack webhook answered HTTP {response.status_code}: {response.text[:200]}"
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientDeliveryError(error)
        raise PermanentDeliveryError(error)

    def close(self) -> None:
        self.client.close()
