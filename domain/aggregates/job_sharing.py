"""JobSharing: who may see one training job (FR8.1.2: private by default, team, or public), the share
links issued for it (report, package) and which of them were withdrawn, and to whom it was sent."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.aggregates.budget import MANAGER_ROLES, PermissionDeniedError
from domain.job_metadata import InvalidJobError

VISIBILITIES = ("private", "team", "public")
DEFAULT_VISIBILITY = "private"
CHANNELS = ("email", "slack")
RECIPIENTS_MAX, MESSAGE_MAX = 20, 500
EMAIL = re.compile(r"^[^@\s,;<>]{1,64}@[^@\s,;<>]{1,255}\.[^@\s,;<>]{2,63}$")
USER_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class JobSharing(Aggregate):
    """One per job (its id derives from the job's), opened at the first sharing decision. A job
    without one is private. The job's creator, managers and admins see a private job; a team job
    every signed-in person; a public one anyone with its link. Links are recorded by id, never by
    their token; one is valid until it expires unless it was revoked (or all were)."""

    TOPIC = "JobSharing"

    class Created(Aggregate.Created):
        TOPIC = "JobSharing.Created"
        job_id: UUID
        owner: str
        actor: str
        at: datetime

    class VisibilityChanged(Aggregate.Event):
        TOPIC = "JobSharing.VisibilityChanged"
        job_id: UUID
        visibility: str
        previous: str
        actor: str
        at: datetime

    class LinkIssued(Aggregate.Event):
        TOPIC = "JobSharing.LinkIssued"
        job_id: UUID
        link_id: UUID
        purpose: str
        expires_at: datetime
        actor: str
        at: datetime

    class LinkRevoked(Aggregate.Event):
        TOPIC = "JobSharing.LinkRevoked"
        job_id: UUID
        link_id: UUID
        purpose: str
        actor: str
        at: datetime

    class AllLinksRevoked(Aggregate.Event):
        """Every link issued until `at` stops working, those issued before links had ids included."""
        TOPIC = "JobSharing.AllLinksRevoked"
        job_id: UUID
        actor: str
        at: datetime

    class Shared(Aggregate.Event):
        """Sent to named recipients by email, or to the team's Slack channel (a notice)."""
        TOPIC = "JobSharing.Shared"
        job_id: UUID
        channel: str
        recipients: list[str]
        message: str
        visibility: str
        actor: str
        at: datetime

    @staticmethod
    def id_for(job_id: UUID) -> UUID:
        return uuid5(NAMESPACE_URL, f"lora-pipeline:job-sharing:{job_id}")

    @classmethod
    def open(cls, job_id: UUID, owner: str, actor: str, at: datetime) -> JobSharing:
        return cls._create(cls.Created, id=cls.id_for(job_id), job_id=job_id, owner=owner, actor=actor, at=at)

    @event(Created)
    def __init__(self, job_id: UUID, owner: str, actor: str, at: datetime) -> None:
        self.job_id, self.owner, self.visibility = job_id, owner, DEFAULT_VISIBILITY
        self.links: dict[str, dict[str, Any]] = {}
        self.all_revoked_at: datetime | None = None

    # --- visibility -----------------------------------------------------------------------------

    def change_visibility(self, visibility: str, actor: str, role: str, at: datetime) -> None:
        if visibility not in VISIBILITIES:
            raise InvalidSharingError(f"Visibility must be private, team or public (got {visibility!r})")
        self.check_owner_or_manager(actor, role, "change who can see this job")
        if visibility != self.visibility:
            self._visibility_changed(job_id=self.job_id, visibility=visibility, previous=self.visibility,
                                     actor=actor, at=at)

    @event(VisibilityChanged)
    def _visibility_changed(self, job_id: UUID, visibility: str, previous: str, actor: str, at: datetime) -> None:
        self.visibility = visibility

    def check_owner_or_manager(self, actor: str, role: str, what: str) -> None:
        if actor != self.owner and role not in MANAGER_ROLES:
            raise PermissionDeniedError(f"Only the job's creator, a manager or an admin may {what}")

    # --- links -------------------------------------------------------------------------------------

    def issue_link(self, link_id: UUID, purpose: str, expires_at: datetime, actor: str, at: datetime) -> None:
        if str(link_id) not in self.links:
            self._link_issued(job_id=self.job_id, link_id=link_id, purpose=purpose, expires_at=expires_at,
                              actor=actor, at=at)

    @event(LinkIssued)
    def _link_issued(self, job_id: UUID, link_id: UUID, purpose: str, expires_at: datetime, actor: str,
                     at: datetime) -> None:
        self.links[str(link_id)] = {"purpose": purpose, "expires_at": expires_at, "shared_by": actor,
                                    "issued_at": at, "revoked_at": None, "revoked_by": None}

    def revoke_link(self, link_id: UUID, actor: str, role: str, at: datetime) -> None:
        """Its sharer, the job's creator, a manager or an admin; revoking it again changes nothing."""
        link = self.links.get(str(link_id))
        if link is None:
            raise SharingNotFoundError("There is no such share link for this job")
        if actor != link["shared_by"]:
            self.check_owner_or_manager(actor, role, "revoke a link someone else shared")
        if link["revoked_at"] is None:
            self._link_revoked(job_id=self.job_id, link_id=link_id, purpose=link["purpose"], actor=actor, at=at)

    @event(LinkRevoked)
    def _link_revoked(self, job_id: UUID, link_id: UUID, purpose: str, actor: str, at: datetime) -> None:
        self.links[str(link_id)] |= {"revoked_at": at, "revoked_by": actor}

    def revoke_all_links(self, actor: str, role: str, at: datetime) -> None:
        self.check_owner_or_manager(actor, role, "revoke every link of this job")
        self._all_links_revoked(job_id=self.job_id, actor=actor, at=at)

    @event(AllLinksRevoked)
    def _all_links_revoked(self, job_id: UUID, actor: str, at: datetime) -> None:
        self.all_revoked_at = at
        for link in self.links.values():
            if link["revoked_at"] is None:
                link |= {"revoked_at": at, "revoked_by": actor}

    def link_revoked(self, link_id: UUID | None, issued_at: datetime) -> bool:
        """Whether a link (None: one issued before links had ids) no longer opens anything."""
        if self.all_revoked_at is not None and issued_at <= self.all_revoked_at:
            return True
        link = self.links.get(str(link_id)) if link_id is not None else None
        return link is not None and link["revoked_at"] is not None

    def active_links(self, now: datetime) -> list[dict[str, Any]]:
        return sorted(({"link_id": key, **link} for key, link in self.links.items()
                       if link["revoked_at"] is None and link["expires_at"] > now), key=lambda link: link["issued_at"])

    # --- sending --------------------------------------------------------------------------------

    def share(self, channel: str, recipients: list[str], message: str, actor: str, role: str, at: datetime) -> None:
        """A notice with the job's link; only a team or public job has a link worth sending."""
        if not can_view(self, actor, role):
            raise PermissionDeniedError("Only people who can see this job may share it")
        if self.visibility == "private":
            raise InvalidSharingError("This job is private: make it Team or Public before sharing its link")
        if channel not in CHANNELS:
            raise InvalidSharingError(f"Share by email or slack (got {channel!r})")
        cleaned = clean_recipients(recipients) if channel == "email" else []
        text = (message or "").strip()
        if len(text) > MESSAGE_MAX:
            raise InvalidSharingError(f"The message must be at most {MESSAGE_MAX} characters (got {len(text)})")
        self._shared(job_id=self.job_id, channel=channel, recipients=cleaned, message=text,
                     visibility=self.visibility, actor=actor, at=at)

    @event(Shared)
    def _shared(self, job_id: UUID, channel: str, recipients: list[str], message: str, visibility: str, actor: str,
                at: datetime) -> None:
        pass


def can_view(sharing: JobSharing | None, user: str | None, role: str, owner: str | None = None) -> bool:
    """`user` None: someone not signed in. Without a JobSharing the job is private to `owner`."""
    visibility = sharing.visibility if sharing is not None else DEFAULT_VISIBILITY
    owner = sharing.owner if sharing is not None else owner
    if visibility == "public":
        return True
    if user is None:
        return False
    return visibility == "team" or user == owner or role in MANAGER_ROLES


def clean_recipients(recipients: list[str]) -> list[str]:
    cleaned = list(dict.fromkeys(r.strip() for r in recipients if r and r.strip()))
    if not cleaned:
        raise InvalidSharingError("Give at least one recipient: an email address or a user name")
    if len(cleaned) > RECIPIENTS_MAX:
        raise InvalidSharingError(f"At most {RECIPIENTS_MAX} recipients at once (got {len(cleaned)})")
    for recipient in cleaned:
        if not (EMAIL.match(recipient) or USER_NAME.match(recipient)):
            raise InvalidSharingError(f"{recipient[:80]!r} is neither an email address nor a user name")
    return cleaned


class InvalidSharingError(InvalidJobError):
    """A sharing command carried an invalid value; nothing was changed."""


class SharingNotFoundError(LookupError):
    """No such share link on this job."""
