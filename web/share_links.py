"""Links that open one job's artefact without signing in, until they expire: the training report
(FR4.2.2 "Shareable via secure link (30-day expiration)") and the deployment package (FR4.3.1
"Generate signed URL, valid 48 hours").

A link is `/shared/<kind>s/<payload>.<signature>` (base64url, canonical): the payload names the
purpose, the job, who shared it and the expiry; the signature is HMAC-SHA256 under
PIPELINE_APPROVAL_SECRET over a prefix of its own and the payload, so an approve / deny token opens
nothing here, and a report link opens no package nor the reverse. Without that secret there are no
share links. Who shared what when is recorded on the job (an export of kind `<purpose>-link`).

Each link carries its own id: it is recorded on the job's sharing record (JobSharing.LinkIssued,
the token itself never), and the page that opens it checks that record first, so a link revoked
on the job's page stops working at once (FR8.1.2). Links made before links had ids are revoked by
"Revoke all links"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from uuid import UUID, uuid4

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
    link_id: UUID | None = None  # None: a link made before links had ids
    issued_at: datetime | None = None


class InvalidLinkError(ValueError):
    """The link is malformed, tampered with, signed with another secret, or for something else."""


class ExpiredLinkError(InvalidLinkError):
    """The link was valid but its time is over."""


def share(purpose: Purpose, job_id: UUID, shared_by: str, secret: str, now: datetime) -> tuple[str, Shared]:
    """The token and what it grants: the job's artefact, for `purpose.lasts` from `now`."""
    shared = Shared(job_id, shared_by, now + purpose.lasts, uuid4(), now)
    fields = {"p": purpose.key, "j": str(job_id), "by": shared_by, "exp": int(shared.expires_at.timestamp()),
              "id": str(shared.link_id)}
    return signing.sign(fields, secret, PREFIX), shared


def verify(purpose: Purpose, token: str, secret: str, now: datetime) -> Shared:
    if not secret:
        raise InvalidLinkError(f"Shared {purpose.noun} links are not enabled on this deployment")
    invalid = InvalidLinkError(f"This {purpose.noun} link is not valid")
    data = signing.signed_payload(token, secret, invalid, PREFIX)
    if data.get("p") != purpose.key:
        raise invalid
    expires = datetime.fromtimestamp(data["exp"], timezone.utc)
    shared = Shared(UUID(data["j"]), data["by"], expires, UUID(data["id"]) if data.get("id") else None,
                    expires - purpose.lasts)
    if now >= shared.expires_at:
        raise ExpiredLinkError(f"This {purpose.noun} link expired on {shared.expires_at:%Y-%m-%d %H:%M} UTC")
    return shared
