"""Relay: copies every stored domain event, in order, onto the JetStream stream EVENTS."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import psycopg
from eventsourcing.application import Application
from nats.js import JetStreamContext

from infra import envelope
from infra.bus import event_subject

log = logging.getLogger(__name__)

RELAY_LOCK_KEY = 7_305_101_902


class Relay:
    """Publishes with `Nats-Msg-Id` = application:notification_id and records its position only
    after JetStream acknowledged the batch; a crash in between republishes, and JetStream drops
    the duplicates."""

    def __init__(self, conn: psycopg.Connection, js: JetStreamContext,
                 applications: tuple[Application, ...], batch: int = 1000, fault: str = "") -> None:
        self.conn = conn
        self.js = js
        self.applications = applications
        self.batch = batch
        self.fault = fault
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
        if not notifications:
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
        self._save_position(app.name, notifications[-1].id)
        return len(notifications)

    async def run(self, stop: asyncio.Event, idle_poll_s: float = 0.05) -> None:
        while not stop.is_set():
            moved = 0
            for app in self.applications:
                moved += await self.pump(app)
            if moved == 0:
                try:
                    await asyncio.wait_for(stop.wait(), idle_poll_s)
                except TimeoutError:
                    pass

    def lag(self) -> dict[str, int]:
        return {app.name: (app.recorder.max_notification_id() or 0) - self.positions[app.name]
                for app in self.applications}


async def acquire_leadership(conn: psycopg.Connection, stop: asyncio.Event, key: int) -> bool:
    """One relay (or projection) per deployment: waits for a session advisory lock."""
    while not stop.is_set():
        locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if locked is not None and locked[0]:
            return True
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass
    return False
