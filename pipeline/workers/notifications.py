"""`pipeline notifications run`: the notifier as a durable consumer of EVENTS (a singleton), and
the clock that sends the daily digests when they are due and posts the month's "Budget Reset"
banner on its first day."""

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
from infra import bus
from infra.consumers import add_consumer
from infra.eventstore import EventStore
from infra.relay import acquire_leadership
from infra.settings import Settings
from pipeline.workers.common import close_all, quiet_broker, stop_on_signals

log = logging.getLogger(__name__)

DURABLE = "notifier"
# Small batches: each message may wait on SMTP or Slack, and a batch must finish within the
# consumer's ack_wait (60 s).
BATCH = 10
DIGEST_EVERY_S = 60.0


def notifier_from_settings(settings: Settings, store: EventStore, pool: ConnectionPool) -> Notifier:
    n = settings.notifications
    mailer = Mailer(SmtpConfig(n.smtp_host, n.smtp_port, n.smtp_user, n.smtp_password.get_secret_value(), n.smtp_tls,
                               n.notify_timeout_s))
    config = NotifierConfig(settings.budget.team, settings.web.public_base_url, n.notify_from, n.slack_webhook_url,
                            n.approval_secret.get_secret_value(), timedelta(hours=n.approval_ttl_h))
    return Notifier(store.app, pool, config, mailer, SlackWebhooks(n.notify_timeout_s))


def digests_from_settings(settings: Settings, notifier: Notifier, hour: int) -> DigestSender:
    schedule = DigestSchedule(settings.budget.time_zone, hour)
    config = notifier.config
    return DigestSender(notifier.pool, schedule, notifier.mailer, team=config.team, base_url=config.base_url,
                        sender=config.sender)


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
        except Exception:  # noqa: BLE001 - PostgreSQL away, a bad row: the next round tries again
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


NOTIFICATIONS_LOCK_KEY = 7_305_101_908


async def run_notifications(settings: Settings, database_url: str, nats_url: str) -> None:
    hour = digest_hour(settings)
    stop = stop_on_signals()
    store = EventStore.open(database_url, pool_size=2, policy=settings.budget_policy())
    pool = ConnectionPool(database_url, min_size=1, max_size=3, open=True)  # the consumer's, the digests'
    lock_conn = psycopg.connect(database_url, autocommit=True)
    notifier = notifier_from_settings(settings, store, pool)
    digests = digests_from_settings(settings, notifier, hour)
    broker = quiet_broker(settings, nats_url)
    add_consumer(broker, pool, durable=DURABLE, subject="events.>", handle=notifier.handle_batch,
                 max_deliver=settings.runtime.consumer_max_deliver, batch_size=BATCH)
    try:
        if await acquire_leadership(lock_conn, stop, NOTIFICATIONS_LOCK_KEY):
            bus.probe(nats_url, settings.runtime.connect_timeout_s)
            await broker.start()
            log.info("notifications: email %s, team Slack %s, digests at %02d:00 %s",
                     "on" if notifier.mailer.configured else "not configured",
                     "on" if settings.notifications.slack_webhook_url else "from team settings (if set)",
                     digests.schedule.hour, settings.budget.time_zone)
            resets = ResetBanners(settings.budget.team, settings.budget.time_zone, settings.budget.default_limit)
            await send_digests(digests, stop, resets=resets)
    finally:
        await close_all("notifications", ("the broker", broker.stop), ("Slack", notifier.slack.close),
                        ("the pool", pool.close), ("the lock connection", lock_conn.close),
                        ("the event store", store.close))
