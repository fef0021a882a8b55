"""Signed approve / deny links for limit-increase requests (FR1.2.2 "unique signed URLs").

A token is `<payload>.<signature>`, both base64url: the payload names the request, its budget
month, the decision, the manager it was sent to and its expiry; the signature is HMAC-SHA256 of
the payload under PIPELINE_APPROVAL_SECRET. One-time use is enforced by the domain (a decided
request cannot be decided again) and by `approval_tokens_used` (web/notifications.py)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

DECISIONS = ("approve", "deny")


@dataclass(frozen=True)
class Approval:
    request_id: UUID
    month: str
    decision: str
    manager: str
    expires_at: datetime

    @property
    def approve(self) -> bool:
        return self.decision == "approve"


def sign(approval: Approval, secret: str) -> str:
    payload = json.dumps({"r": str(approval.request_id), "m": approval.month, "d": approval.decision,
                          "by": approval.manager, "exp": int(approval.expires_at.timestamp())},
                         separators=(",", ":"), sort_keys=True).encode()
    return f"{b64url(payload)}.{b64url(_mac(payload, secret))}"


def links(request_id: UUID, month: str, manager: str, secret: str, ttl: timedelta, now: datetime,
          base_url: str) -> dict[str, str]:
    """The approve and deny URLs for one manager."""
    expires = now + ttl
    return {decision: f"{base_url}/approvals/{sign(Approval(request_id, month, decision, manager, expires), secret)}"
            for decision in DECISIONS}


def verify(token: str, secret: str, now: datetime) -> Approval:
    """The approval a token carries; raises InvalidTokenError when it is malformed, tampered with,
    signed with another secret, or expired."""
    if not secret:
        raise InvalidTokenError("Approval links are not enabled on this deployment (PIPELINE_APPROVAL_SECRET)")
    data = signed_payload(token, lambda payload: _mac(payload, secret),
                          InvalidTokenError("This approval link is not valid"))
    approval = Approval(UUID(data["r"]), data["m"], data["d"], data["by"],
                        datetime.fromtimestamp(data["exp"], timezone.utc))
    if approval.decision not in DECISIONS:
        raise InvalidTokenError("This approval link is not valid")
    if now >= approval.expires_at:
        raise ExpiredTokenError(f"This approval link expired on {approval.expires_at:%Y-%m-%d %H:%M} UTC")
    return approval


def signed_payload(token: str, mac: Callable[[bytes], bytes], invalid: Exception) -> dict[str, Any]:
    """The JSON payload of a `<payload>.<signature>` token whose signature is `mac(payload)`;
    raises `invalid` for anything else (compared in constant time)."""
    try:
        head, _, tail = token.partition(".")
        payload, signature = unb64url(head), unb64url(tail)
    except (binascii.Error, ValueError):
        raise invalid from None
    if not hmac.compare_digest(signature, mac(payload)):
        raise invalid
    return json.loads(payload)


def digest(token: str) -> str:
    """What `approval_tokens_used` keeps: the token's hash, not the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def _mac(payload: bytes, secret: str) -> bytes:
    return hmac.new(secret.encode(), payload, hashlib.sha256).digest()


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


class InvalidTokenError(ValueError):
    """The link is malformed, tampered with or signed with another secret."""


class ExpiredTokenError(InvalidTokenError):
    """The link was genuine but its time ran out."""


class UsedTokenError(InvalidTokenError):
    """The link was used already: each works once."""
