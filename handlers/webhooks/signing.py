"""Standard Webhooks signatures (standardwebhooks.com), the scheme the `openai` client's
`webhooks.unwrap` verifies: `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed
with the base64-decoded bytes of a `whsec_` secret. Several signatures, space-separated, while a
rotated-out secret is still honoured."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret[len(PREFIX):]) if secret.startswith(PREFIX) else secret.encode()
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_headers(keys: Sequence[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The request's headers: the message id (the same on every attempt, so a receiver can drop
    repeats), this attempt's time, and a signature per secret (the newest first)."""
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(signature(key, message_id, timestamp, body) for key in keys),
            "content-type": "application/json", "user-agent": "lora-pipeline-webhooks/1"}
