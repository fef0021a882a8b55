"""Relay: copies every stored domain event, in order, onto the JetStream stream EVENTS."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable

import nats.errors
import psycopg
from eventsourcing.application import Application
from nats.js import JetStreamContext
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError

from infra import envelope
from infra.bus import event_subject
from infra.logs import Outage

log = logging.getLogger(__name__)

# A publish not acknowledged: no stream leader answered (a node lost: an election under way), a
# timeout, the connection between servers.
PUBLISH_FAILURES = (NoStreamResponseError, nats.errors.TimeoutError, TimeoutError, nats.errors.ConnectionClosedError,
                    nats.errors.NoServersError, ServiceUnavailableError)
RELAY = "relay"  # its decision domain (infra/leadership.py): one relay publishes at a time


class Relay:
    """Publishes with `Nats-Msg-Id` = application:notification_id and records its position only
    after JetStream acknowledged the batch; a crash in between republishes, and JetStream drops
    the duplicates."""

    def __init__(self, conn: psycopg.Connection, js: JetStreamContext,
                 applications: tuple[Application, ...], batch: int = 1000, fault: str = "",
                 may_act: Callable[[], bool] = lambda: True) -> None:
        """`may_act`: whether this relay still leads (infra/leadership.py); while it is not sure, it
        publishes nothing and records no position."""
        self.conn = conn
        self.js = js
        self.applications = applications
        self.batch = batch
        self.fault = fault
        self.may_act = may_act
        self.positions = {app.name: self._load_position(app.name) for app in applications}
        self.published = 0
        self.duplicates = 0

    def _load_position(self, name: str) -> int:
        row = self.conn.execute(
            "SELECT notification_id FROM relay_positions WHERE application = %s", (name,)
        ).fetchone()
        return row[0] if row else 0

    def _save_position(self, name: str, position: int) -> None:
        self.conn.execute(
            "INSERT INTO relay_positions (application, notification_id) VALUES (%s, %s)"
            " ON CONFLICT (application) DO UPDATE SET notification_id = EXCLUDED.notification_id",
            (name, position),
        )
        self.positions[name] = position

    async def pump(self, app: Application) -> int:
        """Publishes the next batch of `app`'s events; returns how many."""
        # "Greater than last seen": notification ids may have gaps.
        notifications = await asyncio.to_thread(
            app.recorder.select_notifications, self.positions[app.name] + 1, self.batch
        )
        if not notifications or not self.may_act():
            return 0
        futures = [
            await self.js.publish_async(
                event_subject(n.topic), envelope.encode(app.name, n),
                headers={"Nats-Msg-Id": envelope.msg_id(app.name, n.id)},
            )
            for n in notifications
        ]
        acks = await asyncio.gather(*futures)
        self.duplicates += sum(1 for ack in acks if ack.duplicate)
        self.published += len(acks)
        if self.fault == "relay_kill_after_publish":
            os.kill(os.getpid(), signal.SIGKILL)  # test hook: die between publish and tracking
        if not self.may_act():  # frozen past its lease meanwhile: the new leader republishes; JetStream dedups
            return 0
        self._save_position(app.name, notifications[-1].id)
        return len(notifications)

    async def run(self, stop: asyncio.Event, idle_poll_s: float = 0.05) -> None:
        """Until `stop`. A batch JetStream did not acknowledge (a cluster node lost, its streams
        electing a new leader) is published again from the recorded position; duplicates are dropped."""
        outage = Outage(log, lost="relay: JetStream did not acknowledge a batch; retrying",
                        back="relay: JetStream acknowledges again")
        while not stop.is_set():
            moved = 0
            try:
                for app in self.applications:
                    moved += await self.pump(app)
                outage.recovered()
            except PUBLISH_FAILURES as exc:
                outage.failed(str(exc) or type(exc).__name__)
                await asyncio.sleep(0.5)
                continue
            if moved == 0:
                try:
                    await asyncio.wait_for(stop.wait(), idle_poll_s)
                except TimeoutError:
                    pass

    def lag(self) -> dict[str, int]:
        return {app.name: (app.recorder.max_notification_id() or 0) - self.positions[app.name]
                for app in self.applications}
