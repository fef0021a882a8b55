"""Where the notifier hands over events: each one a team's endpoints subscribe to becomes one pending
delivery per endpoint (handlers/webhooks/store.py), sent by the worker's sender. Idempotent: an event
the bus delivers again adds nothing."""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool

from domain.aggregates.budget import Budget
from domain.applications import Pipeline
from handlers.webhooks import store
from handlers.webhooks.events import TOPICS, webhook_event

__all__ = ["TOPICS", "WebhookOutbox"]


class WebhookOutbox:
    def __init__(self, app: Pipeline, pool: ConnectionPool, team: str) -> None:
        self.app, self.pool, self.team = app, pool, team

    def take(self, event_key: str, event: Any) -> int:
        """Returns how many deliveries the event added."""
        extra: dict[str, Any] = {}
        if isinstance(event, Budget.ThresholdCrossed):  # which month's budget: its aggregate's
            extra["month"] = self.app.repository.get(event.originator_id, version=event.originator_version).month
        webhook = webhook_event(event, event_key, **extra)
        if webhook is None:
            return 0
        with self.pool.connection() as conn:
            return store.enqueue(conn, self.team, event_key, webhook)
