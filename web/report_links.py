"""FR4.2.2 "Shareable via secure link (30-day expiration)": a link that opens one completed job's
training report without signing in, until it expires.

A link is `/shared/reports/<payload>.<signature>` (base64url): the payload names the job, who
shared it and the expiry; the signature is HMAC-SHA256 under PIPELINE_APPROVAL_SECRET with the
purpose `report` in the payload, so an approve / deny token never opens a report nor the reverse.
Without that secret there are no share links. Who shared which report when is recorded on the
job (an export of kind `training-report-link`)."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from uuid import UUID

from handlers.notifications.tokens import b64url, signed_payload

SHARE_DAYS = 30
PURPOSE = "report"


@dataclass(frozen=True)
class SharedReport:
    job_id: UUID
    shared_by: str
    expires_at: datetime


class InvalidLinkError(ValueError):
    """The link is malformed, tampered with, signed with another secret, or not a report link."""


class ExpiredLinkError(InvalidLinkError):
    """The link was valid but its 30 days are over."""


def share(job_id: UUID, shared_by: str, secret: str, now: datetime) -> tuple[str, SharedReport]:
    """The token and what it grants: the job's report, for SHARE_DAYS from `now`."""
    report = SharedReport(job_id, shared_by, now + timedelta(days=SHARE_DAYS))
    payload = json.dumps({"p": PURPOSE, "j": str(job_id), "by": shared_by, "exp": int(report.expires_at.timestamp())},
                         separators=(",", ":"), sort_keys=True).encode()
    return f"{b64url(payload)}.{b64url(_mac(payload, secret))}", report


def verify(token: str, secret: str, now: datetime) -> SharedReport:
    if not secret:
        raise InvalidLinkError("Shared report links are not enabled on this deployment")
    invalid = InvalidLinkError("This report link is not valid")
    data = signed_payload(token, lambda payload: _mac(payload, secret), invalid)
    if data.get("p") != PURPOSE:
        raise invalid
    report = SharedReport(UUID(data["j"]), data["by"], datetime.fromtimestamp(data["exp"], timezone.utc))
    if now >= report.expires_at:
        raise ExpiredLinkError(f"This report link expired on {report.expires_at:%Y-%m-%d %H:%M} UTC")
    return report


def _mac(payload: bytes, secret: str) -> bytes:
    return hmac.new(secret.encode(), b"report-link:" + payload, hashlib.sha256).digest()
