"""`pipeline notifications run`: the notifier as a durable consumer of EVENTS, and the clock that
sends the daily digests when they are due and posts the month's "Budget Reset" banner on its first
day, and the webhook sender's rounds (handlers/webhooks/sender.py). Every instance consumes (they share
the durable's messages: the delivery ledger makes each delivery once, in whatever order and wherever
its event is handled; the webhook outbox takes each event once); the clock runs in one, the leader of
`notifications-clock` (infra/leadership.py)."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from datetime import datetime, timedelta, timezone

import psycopg
from psycopg_pool import ConnectionPool

from handlers.notifications.budget_reset import ResetBanners
from handlers.notifications.channels import Mailer, SlackWebhooks, SmtpConfig
from handlers.notifications.digest import DigestSchedule
from handlers.notifications.digests import DigestSender
from handlers.notifications.notifier import Notifier, NotifierConfig
from handlers.notifications.read_models import ReadModels
from handlers.webhooks.outbox import WebhookOutbox
from handlers.webhooks.sender import BATCH as WEBHOOK_BATCH
from handlers.webhooks.sender import RetryPolicy, WebhookSender
from infra import bus
from infra.consumers import add_consumer
from infra.eventstore import EventStore
from infra.secretbox import box_for
from infra.settings import Settings
from pipeline.workers.common import (
    close_all,
    connected,
    exit_code,
    halted,
    quiet_broker,
    stop_on_signals,
    worker_leases,
)
from projections.budget_reads import month_figures, spend_between
from projections.job_reads import jobs_in

log = logging.getLogger(__name__)

DURABLE = "notifier"
# Small batches: each message may wait on SMTP or Slack, and a batch must finish within the
# consumer's ack_wait (60 s).
BATCH = 10
DIGEST_EVERY_S = 60.0
WEBHOOK_EVERY_S = 1.0


def notifier_from_settings(settings: Settings, store: EventStore, pool: ConnectionPool) -> Notifier:
    n = settings.notifications
    mailer = Mailer(SmtpConfig(n.smtp_host, n.smtp_port, n.smtp_user, n.smtp_password.get_secret_value(), n.smtp_tls,
                               n.notify_timeout_s))
    config = NotifierConfig(settings.budget.team, settings.web.public_base_url, n.notify_from, n.slack_webhook_url,
                            n.approval_secret.get_secret_value(), timedelta(hours=n.approval_ttl_h))
    outbox = WebhookOutbox(store.app, pool, settings.budget.team)
    return Notifier(store.app, pool, config, mailer, SlackWebhooks(n.notify_timeout_s), outbox)


def webhook_sender(settings: Settings, pool: ConnectionPool) -> WebhookSender:
    """Signs with the secrets sealed under the deployment's key (infra/secretbox.py)."""
    n = settings.notifications
    state_dir = settings.runtime.state_dir.resolve()
    return WebhookSender(pool, lambda: box_for(n.webhook_key.get_secret_value(), state_dir),
                         RetryPolicy(first_s=n.webhook_retry_s, attempts=n.webhook_attempts), n.webhook_timeout_s)


async def send_webhooks(sender: WebhookSender, stop: asyncio.Event, every_s: float = WEBHOOK_EVERY_S) -> None:
    """Every `every_s` (at once again after a full round), the deliveries that are due; a failed
    round is logged and tried again."""
    while not stop.is_set():
        tried = 0
        try:
            tried = await asyncio.to_thread(sender.send_due)
        except psycopg.OperationalError as exc:  # PostgreSQL away or restarted: one line, the next round retries
            log.warning("webhooks: this round failed, PostgreSQL unavailable (%s); trying again", exc)
        except Exception:  # noqa: BLE001 - anything else: the next round tries again
            log.exception("webhooks: this round failed")
        if tried < WEBHOOK_BATCH:
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)


# The read models' queries the digests and the reset banner read (handlers/notifications/read_models.py).
READ_MODELS = ReadModels(jobs_in=jobs_in, month_figures=month_figures, spend_between=spend_between)


def digests_from_settings(settings: Settings, notifier: Notifier, hour: int) -> DigestSender:
    schedule = DigestSchedule(settings.budget.time_zone, hour)
    config = notifier.config
    return DigestSender(notifier.pool, schedule, notifier.mailer, team=config.team, base_url=config.base_url,
                        sender=config.sender, reads=READ_MODELS)


def digest_hour(settings: Settings) -> int:
    """The local hour (PIPELINE_TIME_ZONE) digests go out: PIPELINE_DIGEST_HOUR, 0-23, default 8."""
    return settings.notifications.digest_hour


async def send_digests(digests: DigestSender, stop: asyncio.Event, every_s: float = DIGEST_EVERY_S,
                       resets: ResetBanners | None = None) -> None:
    """Every `every_s`, sends the digests that are due and posts the month's reset banner when it
    is due; a failed round is logged and tried again."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(digests.send_due, datetime.now(timezone.utc))
        except psycopg.OperationalError as exc:  # PostgreSQL away or restarted: one line, the next round retries
            log.warning("digests: this round failed, PostgreSQL unavailable (%s); trying again", exc)
        except Exception:  # noqa: BLE001 - a bad row: the next round tries again
            log.exception("digests: this round failed")
        if resets is not None:
            try:
                await asyncio.to_thread(post_reset, digests.pool, resets, datetime.now(timezone.utc))
            except Exception:  # noqa: BLE001 - as above
                log.exception("budget reset banner: this round failed")
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


def post_reset(pool: ConnectionPool, resets: ResetBanners, now: datetime) -> None:
    with pool.connection() as conn:
        posted = resets.post_due(conn, now)
    if posted:
        log.info("budget reset banner posted: %s", posted)


CLOCK = "notifications-clock"


async def run_notifications(settings: Settings, database_url: str, nats_url: str) -> int:
    hour = digest_hour(settings)
    stop = stop_on_signals()
    store = EventStore.open(database_url, pool_size=2, policy=settings.budget_policy())
    pool = ConnectionPool(database_url, min_size=1, max_size=7, open=True)  # the consumer's, digests', webhooks'
    notifier = notifier_from_settings(settings, store, pool)
    digests = digests_from_settings(settings, notifier, hour)
    webhooks = webhook_sender(settings, pool)
    broker = quiet_broker(settings, nats_url)
    add_consumer(broker, pool, durable=DURABLE, subject="events.>", handle=notifier.handle_batch,
                 max_deliver=settings.runtime.consumer_max_deliver, batch_size=BATCH)
    leases = worker_leases(settings, database_url, "notifications", (CLOCK,), nats_ok=lambda: connected(broker))
    beating = asyncio.create_task(leases.run(stop))
    halt = halted(stop, leases)
    try:
        bus.probe(nats_url, settings.runtime.connect_timeout_s)
        await broker.start()
        log.info("notifications: email %s, team Slack %s, digests at %02d:00 %s",
                 "on" if notifier.mailer.configured else "not configured",
                 "on" if settings.notifications.slack_webhook_url else "from team settings (if set)",
                 digests.schedule.hour, settings.budget.time_zone)
        if await leases.wait_for_any(halt, [CLOCK]):
            resets = ResetBanners(settings.budget.team, settings.budget.time_zone, settings.budget.default_limit,
                                  READ_MODELS)
            await asyncio.gather(send_digests(digests, halt, resets=resets), send_webhooks(webhooks, halt))
        await halt.wait()
    finally:
        beating.cancel()
        with suppress(asyncio.CancelledError):
            await beating
        await close_all("notifications", ("the broker", broker.stop), ("Slack", notifier.slack.close),
                        ("webhooks", webhooks.close),
                        ("the pool", pool.close), ("the lease", leases.close), ("the event store", store.close))
    return exit_code(leases)
