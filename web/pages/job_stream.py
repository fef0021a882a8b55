"""The job page's live feed (FR2.1.1): Server-Sent Events with the loss curve's new points and the
re-rendered cards.

It polls the read models once a second rather than subscribing to NATS: the chart then shows
exactly what the metric history holds (a resumed attempt's replaced steps, evaluations merged into
their step), resumes from the last step sent after a reconnect (the event id), and needs no
consumer per viewer. Each poll borrows a pooled connection for two indexed queries and gives it
back before sleeping, so an idle stream holds no connection; the stream ends when the client goes
away (Litestar cancels it on disconnect), when the job has ended and everything was sent, or after
`LIFETIME_S` (the browser then reconnects, signing in again)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from uuid import UUID

from litestar import Request, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from domain.job_status import TERMINAL
from projections.job_reads import get_job
from projections.loss_curve import poll
from web.job_cards import rendered_cards
from web.loss_curve import columns

POLL_S = 1.0
CARDS_EVERY_S = 30.0       # elapsed time, ETA and spend move even when no event arrives
CARDS_AT_MOST_EVERY_S = 5.0
HEARTBEAT_S = 15.0
LIFETIME_S = 600.0
BATCH = 5000


def cursor_of(request: Request, after: int, eval_after: int) -> tuple[int, int]:
    """Where to start: the browser's Last-Event-ID ("step:eval_step") after a reconnect, else the query."""
    last = request.headers.get("last-event-id", "")
    try:
        step, eval_step = (int(part) for part in last.split(":"))
        return step, eval_step
    except ValueError:
        return after, eval_after


async def updates(request: Request, job_id: UUID, after: int, eval_after: int, version: str,
                  attempt: int, confirm: int = 0) -> AsyncIterator[ServerSentEventMessage]:
    state = request.app.state
    started = last_sent = time.monotonic()
    cards_at = started - CARDS_AT_MOST_EVERY_S if version else 0.0  # the first change goes at once
    yield ServerSentEventMessage(data=None, comment="live", retry=3000)
    while time.monotonic() - started < LIFETIME_S:
        job, rows = await poll(state.pool, job_id, after, eval_after, BATCH)
        if job is None:
            return
        now = time.monotonic()
        if attempt >= 0 and job["attempt"] > attempt:
            # A new attempt re-trains the steps after its checkpoint: the chart reloads its history.
            yield ServerSentEventMessage(event="reset", data=json.dumps({"attempt": job["attempt"]}))
            last_sent = now
        attempt = job["attempt"]
        if rows:
            points = columns(rows)
            after = max(after, points["last_step"])
            eval_after = max(eval_after, points["last_eval_step"])
            yield ServerSentEventMessage(event="points", data=json.dumps(points), id=f"{after}:{eval_after}")
            last_sent = now
        # A page drawn just after a command shows its outcome: cards older than it would contradict it.
        confirmed = job["row_version"] >= confirm
        changed = job["version"] != version and confirmed
        if confirmed and ((changed and now - cards_at >= CARDS_AT_MOST_EVERY_S) or now - cards_at >= CARDS_EVERY_S):
            found = await rendered_cards(request, job_id)
            if found is not None:
                yield ServerSentEventMessage(event="cards", data=json.dumps(found))
                version, cards_at, last_sent = found["version"], now, now
        if job["status"] in TERMINAL and len(rows) < BATCH and not changed:
            yield ServerSentEventMessage(event="end", data="{}")
            return
        if now - last_sent >= HEARTBEAT_S:
            yield ServerSentEventMessage(data=None, comment="still here")
            last_sent = now
        if len(rows) < BATCH:
            await asyncio.sleep(POLL_S)


@get("/jobs/{job_id:uuid}/events-stream")
async def events_stream(request: Request, state: State, job_id: FromPath[UUID], after: FromQuery[int] = -1,
                        eval_after: FromQuery[int] = -1,
                        version: FromQuery[str] = "", attempt: FromQuery[int] = -1,
                        confirm: FromQuery[int] = 0) -> ServerSentEvent:
    """New loss-curve points (`points`: step, loss and validation-loss columns; id "step:eval_step"),
    the re-rendered cards when the job changed (`cards`; with its actions while it has not ended),
    `reset` when a new attempt replaces steps, and `end` once the job has ended and everything was
    sent. `confirm`: the event-store version a command just reached; no cards until the read model
    has it (the page already shows the command's outcome)."""
    if await get_job(state.pool, job_id) is None:
        raise NotFoundException(f"no training job {job_id}")
    after, eval_after = cursor_of(request, after, eval_after)
    return ServerSentEvent(updates(request, job_id, after, eval_after, version, attempt, confirm))


routes = [events_stream]
