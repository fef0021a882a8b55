"""Budget: a team's spending limit for one calendar month."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event


class Budget(Aggregate):
    """One per team per month; the id is derived from both, so it is found without a lookup."""

    TOPIC = "Budget"

    class Created(Aggregate.Created):
        TOPIC = "Budget.Created"
        team: str
        month: str
        limit: Decimal
        at: datetime

    @staticmethod
    def id_for(team: str, month: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"lora-pipeline:budget:{team}:{month}")

    @classmethod
    def open(cls, team: str, month: str, limit: Decimal, at: datetime) -> Budget:
        if limit < 0:
            raise ValueError("budget limit must not be negative")
        return cls._create(cls.Created, id=cls.id_for(team, month), team=team, month=month, limit=limit, at=at)

    @event(Created)
    def __init__(self, team: str, month: str, limit: Decimal, at: datetime) -> None:
        self.team = team
        self.month = month
        self.limit = limit
        self.opened_at = at
