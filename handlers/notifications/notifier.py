"""The notifier: an EVENTS consumer that turns each event into its deliveries and makes each once.

Per delivery: claim its ledger row ('pending'), send, then settle it (sent / skipped / failed). A
redelivered event finds its rows settled and sends nothing; a crash between a send and its
settling resends that one message on redelivery (at least once, duplicates only after a crash).
A transient failure leaves the row pending and raises DeliveryRetryError, which the consumer
retries with backoff without ever dead-lettering."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from domain.aggregates.budget import Budget
from domain.aggregates.job_sharing import JobSharing
from domain.applications import Pipeline
from handlers.notifications import ledger, render, routing, tokens
from handlers.notifications.budget_notices import (
    limit_decided_notice,
    limit_request_notice,
    overrun_notice,
    threshold_notice,
)
from handlers.notifications.channels import Mailer, PermanentDeliveryError, SlackWebhooks, TransientDeliveryError
from handlers.notifications.notices import job_kind, job_notice
from handlers.notifications.preferences import TeamSettings, get_team, recipient_preferences
from handlers.notifications.routing import Delivery
from handlers.notifications.share_notices import share_deliveries, share_notice
from handlers.webhooks.outbox import TOPICS as WEBHOOK_TOPICS
from handlers.webhooks.outbox import WebhookOutbox
from infra import envelope
from infra.consumers import PoisonMessageError, RetryLaterError

log = logging.getLogger(__name__)

TOPICS = frozenset({
    "TrainingJob.Completed", "TrainingJob.Failed", "TrainingJob.Cancelled", "TrainingJob.Interrupted",
    "TrainingJob.Resumed", "TrainingJob.ProvisioningTimedOut", "TrainingJob.Judged", "Budget.ThresholdCrossed",
    "Budget.OverrunForecast", "Budget.LimitIncreaseRequested", "Budget.LimitIncreaseDecided",
    "JobSharing.Shared",
})


class DeliveryRetryError(RetryLaterError):
    """A channel failed transiently: the event is retried later (never dead-lettered)."""


@dataclass(frozen=True)
class NotifierConfig:
    team: str
    base_url: str
    sender: str
    slack_webhook_url: str = ""
    approval_secret: str = ""
    approval_ttl: timedelta = timedelta(hours=72)


class Notifier:
    def __init__(self, app: Pipeline, pool: ConnectionPool, config: NotifierConfig, mailer: Mailer,
                 slack: SlackWebhooks, webhooks: WebhookOutbox | None = None) -> None:
        self.app, self.pool, self.config, self.mailer, self.slack = app, pool, config, mailer, slack
        self.webhooks = webhooks  # the team's webhook endpoints' outbox (handlers/webhooks/)

    def handle_batch(self, bodies: Sequence[bytes]) -> list[Exception | None]:
        """A channel that fails transiently is not tried again in the same batch: a Slack outage
        costs one timeout per batch, not one per message."""
        down: set[str] = set()
        outcomes: list[Exception | None] = []
        for body in bodies:
            try:
                self.handle(body, down)
                outcomes.append(None)
            except Exception as exc:  # noqa: BLE001 - settled per message by the consumer
                outcomes.append(exc)
        return outcomes

    def handle(self, body: bytes, down: set[str] | None = None) -> None:
        try:
            stored = envelope.decode(body).stored_event
        except ValueError as exc:
            raise PoisonMessageError(str(exc)) from None
        webhook = self.webhooks is not None and stored.topic in WEBHOOK_TOPICS
        if stored.topic not in TOPICS and not webhook:
            return
        event = self.app.mapper.to_domain_event(stored)
        key = f"{event.originator_id}:{event.originator_version}"
        if webhook and self.webhooks is not None:  # taken in before the other channels: it only writes rows
            self.webhooks.take(key, event)
        if stored.topic not in TOPICS:
            return
        down = set() if down is None else down
        retry = [why for d in self.plan(event) if (why := self.deliver(key, d, down))]
        if retry:
            raise DeliveryRetryError("; ".join(retry))

    def plan(self, event: Any) -> list[Delivery]:
        """The event's deliveries, from the aggregate as it was right after the event."""
        with self.pool.connection() as conn:
            team = get_team(conn, self.config.team)
            webhook = team.slack_webhook_url or self.config.slack_webhook_url
            if job_kind(event) is not None:
                job = self._at_version(event)
                notice = job_notice(event, job, self.config.base_url)
                return routing.job_deliveries(notice, recipient_preferences(conn, job.created_by), webhook)
            if isinstance(event, Budget.ThresholdCrossed):
                notice = threshold_notice(event, self._at_version(event), self.config.base_url)
                return routing.budget_alert_deliveries(notice, event.percent, team, webhook)
            if isinstance(event, Budget.OverrunForecast):
                notice = overrun_notice(event, self._at_version(event).month, self.config.base_url)
                return routing.overrun_deliveries(notice, team, webhook)
            if isinstance(event, Budget.LimitIncreaseRequested):
                return self._to_managers(conn, event, team)
            if isinstance(event, JobSharing.Shared):  # FR8.1.2: a job's link sent to named people
                notice = share_notice(event, self.app.get_job(event.job_id), self.config.base_url)
                people = {r: recipient_preferences(conn, r) for r in event.recipients if "@" not in r}
                return share_deliveries(notice, event, people, webhook)
            if isinstance(event, Budget.LimitIncreaseDecided):
                budget = self._at_version(event)
                requester = budget.requests[str(event.request_id)]["requested_by"]
                notice = limit_decided_notice(event, budget, self.config.base_url)
                return routing.decision_deliveries(notice, recipient_preferences(conn, requester))
        return []

    def _to_managers(self, conn: psycopg.Connection, event: Budget.LimitIncreaseRequested,
                     team: TeamSettings) -> list[Delivery]:
        """Each manager's email carries links signed for that manager (who then decides); links
        expire `approval_ttl` after the request, so a resend carries the same links. A manager
        who is the requester gets none: they may not decide their own request."""
        budget = self._at_version(event)
        requester = recipient_preferences(conn, event.requested_by).email
        managers = tuple(m for m in team.manager_emails if m != requester)
        expires = event.at + self.config.approval_ttl
        secret = self.config.approval_secret
        if not secret:
            notice = limit_request_notice(event, budget, None, expires)
            return [Delivery("email", "managers", "", notice,
                             "PIPELINE_APPROVAL_SECRET is not set: approval links cannot be signed")]
        if not managers:
            return routing.emails(limit_request_notice(event, budget, None, expires), (), "managers")
        return [Delivery("email", manager, manager, limit_request_notice(
                    event, budget, tokens.links(event.request_id, budget.month, manager, secret,
                                                self.config.approval_ttl, event.at, self.config.base_url), expires))
                for manager in managers]

    def _at_version(self, event: Any) -> Any:
        return self.app.repository.get(event.originator_id, version=event.originator_version)

    def deliver(self, key: str, delivery: Delivery, down: set[str]) -> str | None:
        """Makes one delivery unless the ledger says it was made; returns why it must be retried."""
        with self.pool.connection() as conn:
            if not ledger.claim(conn, key, delivery):
                return None
            skip = delivery.unsendable or ("" if self._configured(delivery) else "channel not configured")
            if skip:
                ledger.settle(conn, key, delivery, "skipped", skip)
                return None
            if delivery.channel == "banner":
                ledger.add_banner(conn, key, delivery, self.config.team, self._local_link(delivery))
                return None
            if delivery.channel == "digest":
                ledger.add_digest_line(conn, key, delivery)
                return None
        # The claim is committed before the send: a crash after it leaves the row pending.
        endpoint = "smtp" if delivery.channel == "email" else delivery.target
        status, error = self._send(key, delivery, endpoint in down)
        if status == "pending":
            down.add(endpoint)
        with self.pool.connection() as conn:
            ledger.settle(conn, key, delivery, status, error)
        return f"{delivery.channel} to {delivery.recipient}: {error}" if status == "pending" else None

    def _local_link(self, delivery: Delivery) -> str:
        """A banner links within the app: its notice's main link as a path of this site."""
        link = delivery.notice.link[1] if delivery.notice.link else ""
        return (link.removeprefix(self.config.base_url) or "/") if link.startswith(self.config.base_url) else ""

    def _configured(self, delivery: Delivery) -> bool:
        return bool(delivery.target) and (delivery.channel != "email" or self.mailer.configured)

    def _send(self, key: str, delivery: Delivery, channel_down: bool) -> tuple[str, str | None]:
        """One try: ("sent", None), ("pending", why: retry later) or ("failed", why)."""
        if channel_down:
            return "pending", "not tried: the channel failed earlier in this batch"
        try:
            if delivery.channel == "email":
                self.mailer.send(render.email(delivery.notice, self.config.sender, delivery.target,
                                              f"{key}:{delivery.recipient}"))
            else:
                self.slack.post(delivery.target, render.slack(delivery.notice))
        except TransientDeliveryError as exc:
            log.warning("notifier: %s to %s will be retried: %s", delivery.channel, delivery.recipient, exc)
            return "pending", str(exc)
        except PermanentDeliveryError as exc:
            log.error("notifier: %s to %s failed: %s", delivery.channel, delivery.recipient, exc)
            return "failed", str(exc)
        log.info("notifier: %s sent by %s to %s", delivery.notice.kind, delivery.channel, delivery.recipient)
        return "sent", None
