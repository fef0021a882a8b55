"""The wire form of a domain event on the EVENTS stream, and back to a stored event."""

from __future__ import annotations

import json
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent


@dataclass(frozen=True)
class Envelope:
    application: str
    notification_id: int
    stored_event: StoredEvent

    @property
    def msg_id(self) -> str:
        return msg_id(self.application, self.notification_id)


def msg_id(application: str, notification_id: int) -> str:
    """JetStream dedup key: the event's place in the event store, stable across republishing."""
    return f"{application}:{notification_id}"


def encode(application: str, notification: Notification) -> bytes:
    """JSON object; `state` is the stored JSON itself, spliced in without re-encoding."""
    head = json.dumps({
        "application": application,
        "notification_id": notification.id,
        "originator_id": str(notification.originator_id),
        "originator_version": notification.originator_version,
        "topic": notification.topic,
    })
    return head[:-1].encode() + b', "state": ' + bytes(notification.state) + b"}"


def decode(body: bytes) -> Envelope:
    """Raises ValueError for anything that is not an envelope (a poison message)."""
    try:
        data = json.loads(body)
        stored = StoredEvent(
            originator_id=UUID(data["originator_id"]),
            originator_version=int(data["originator_version"]),
            topic=str(data["topic"]),
            state=json.dumps(data["state"], separators=(",", ":")).encode(),
        )
        return Envelope(str(data["application"]), int(data["notification_id"]), stored)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not an event envelope: {exc}") from None
