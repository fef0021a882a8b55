"""Signed tokens `<payload>.<signature>` (both canonical base64url): the payload a JSON object,
the signature HMAC-SHA256 under a secret, over a purpose prefix and the payload, so a token made
for one purpose (an approval link, a share link) opens nothing else."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any


def sign(fields: dict[str, Any], secret: str, prefix: bytes = b"") -> str:
    payload = json.dumps(fields, separators=(",", ":"), sort_keys=True).encode()
    return f"{b64url(payload)}.{b64url(mac(payload, secret, prefix))}"


def mac(payload: bytes, secret: str, prefix: bytes = b"") -> bytes:
    return hmac.new(secret.encode(), prefix + payload, hashlib.sha256).digest()


def signed_payload(token: str, secret: str, invalid: Exception, prefix: bytes = b"") -> dict[str, Any]:
    """The JSON payload of a token signed by `sign(…, secret, prefix)`; raises `invalid` for
    anything else (the signature compared in constant time)."""
    try:
        head, _, tail = token.partition(".")
        payload, signature = unb64url(head), unb64url(tail)
    except (binascii.Error, ValueError):
        raise invalid from None
    if not hmac.compare_digest(signature, mac(payload, secret, prefix)):
        raise invalid
    return json.loads(payload)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    """Strict: only the one canonical spelling of some bytes decodes (no stray characters, no
    padding bits set), so a token cannot be re-spelt to look unused."""
    if not text:
        raise ValueError("empty")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url(raw) != text:
        raise ValueError("not canonical base64url")
    return raw
