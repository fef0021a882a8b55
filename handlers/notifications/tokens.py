"""Signed approve / deny links for limit-increase requests (FR1.2.2 "unique signed URLs").

A token is `<payload>.<signature>`, both base64url: the payload names the request, its budget
month, the decision, the manager it was sent to and its expiry; the signature is HMAC-SHA256 of
the payload under PIPELINE_APPROVAL_SECRET. One-time use is enforced by the domain (a decided
request cannot be decided again) and by `approval_tokens_used` (web/notifications.py)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from uuid import UUID

from infra import signing

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
    return signing.sign({"r": str(approval.request_id), "m": approval.month, "d": approval.decision,
                         "by": approval.manager, "exp": int(approval.expires_at.timestamp())}, secret)


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
    data = signing.signed_payload(token, secret, InvalidTokenError("This approval link is not valid"))
    approval = Approval(UUID(data["r"]), data["m"], data["d"], data["by"],
                        datetime.fromtimestamp(data["exp"], timezone.utc))
    if approval.decision not in DECISIONS:
        raise InvalidTokenError("This approval link is not valid")
    if now >= approval.expires_at:
        raise ExpiredTokenError(f"This approval link expired on {approval.expires_at:%Y-%m-%d %H:%M} UTC")
    return approval


def digest(token: str) -> str:
    """What `approval_tokens_used` keeps: the token's hash, not the token."""
    return hashlib.sha256(token.encode()).hexdigest()


class InvalidTokenError(ValueError):
    """The link is malformed, tampered with or signed with another secret."""


class ExpiredTokenError(InvalidTokenError):
    """The link was genuine but its time ran out."""


class UsedTokenError(InvalidTokenError):
    """The link was used already: each works once."""
