"""Links that open one job's artefact without signing in, until they expire: the training report
(FR4.2.2 "Shareable via secure link (30-day expiration)") and the deployment package (FR4.3.1
"Generate signed URL, valid 48 hours").

A link is `/shared/<kind>s/<payload>.<signature>` (base64url, canonical): the payload names the
purpose, the job, who shared it and the expiry; the signature is HMAC-SHA256 under
PIPELINE_APPROVAL_SECRET over a prefix of its own and the payload, so an approve / deny token opens
nothing here, and a report link opens no package nor the reverse. Without that secret there are no
share links. Who shared what when is recorded on the job (an export of kind `<purpose>-link`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from uuid import UUID

from infra import signing

PREFIX = b"share-link:"


@dataclass(frozen=True)
class Purpose:
    key: str          # in the payload, and the export kind `<key>-link`
    noun: str         # in messages: "This report link is not valid"
    lasts: timedelta


REPORT = Purpose("training-report", "report", timedelta(days=30))
PACKAGE = Purpose("deployment-package", "deployment package", timedelta(hours=48))


@dataclass(frozen=True)
class Shared:
    job_id: UUID
    shared_by: str
    expires_at: datetime


class InvalidLinkError(ValueError):
    """The link is malformed, tampered with, signed with another secret, or for something else."""


class ExpiredLinkError(InvalidLinkError):
    """The link was valid but its time is over."""


def share(purpose: Purpose, job_id: UUID, shared_by: str, secret: str, now: datetime) -> tuple[str, Shared]:
    """The token and what it grants: the job's artefact, for `purpose.lasts` from `now`."""
    shared = Shared(job_id, shared_by, now + purpose.lasts)
    fields = {"p": purpose.key, "j": str(job_id), "by": shared_by, "exp": int(shared.expires_at.timestamp())}
    return signing.sign(fields, secret, PREFIX), shared


def verify(purpose: Purpose, token: str, secret: str, now: datetime) -> Shared:
    if not secret:
        raise InvalidLinkError(f"Shared {purpose.noun} links are not enabled on this deployment")
    invalid = InvalidLinkError(f"This {purpose.noun} link is not valid")
    data = signing.signed_payload(token, secret, invalid, PREFIX)
    if data.get("p") != purpose.key:
        raise invalid
    shared = Shared(UUID(data["j"]), data["by"], datetime.fromtimestamp(data["exp"], timezone.utc))
    if now >= shared.expires_at:
        raise ExpiredLinkError(f"This {purpose.noun} link expired on {shared.expires_at:%Y-%m-%d %H:%M} UTC")
    return shared
