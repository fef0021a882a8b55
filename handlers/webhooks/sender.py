"""The webhook sender, a step of the notifications worker's clock: deliveries that are due are signed
with their endpoint's secret(s) and posted; a 2xx delivers, anything else is tried again after a
backoff (the first retry after PIPELINE_WEBHOOK_RETRY_S, each next one 4 × later, at most 6 h) until
PIPELINE_WEBHOOK_ATTEMPTS attempts, then the delivery has failed. Every attempt is logged.

At least once: a crash between a post and its record posts again, with the same webhook-id and body
(a receiver drops repeats by that id). The sender runs in one notifications worker (the leader of
`notifications-clock`); an attempt is recorded only if the delivery still has the attempt count it
had when it was read, so a delivery is recorded delivered once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import httpx
from psycopg_pool import ConnectionPool

from handlers.webhooks import store
from handlers.webhooks.signing import signed_headers
from handlers.webhooks.store import Due
from infra.secretbox import SecretBox, SecretBoxError

log = logging.getLogger(__name__)
# httpx logs every request's full URL at INFO: a receiver's path and query may carry its own secret
logging.getLogger("httpx").setLevel(logging.WARNING)
BATCH = 50
ERROR_MAX = 500


@dataclass(frozen=True)
class RetryPolicy:
    first_s: float = 5.0
    factor: float = 4.0
    cap_s: float = 6 * 3600.0
    attempts: int = 10

    def delay_s(self, attempt: int) -> float:
        """The wait after failed attempt number `attempt` (1: the first)."""
        return min(self.cap_s, self.first_s * self.factor ** (attempt - 1))


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class WebhookSender:
    def __init__(self, pool: ConnectionPool, box: SecretBox | Callable[[], SecretBox],
                 policy: RetryPolicy = RetryPolicy(), timeout_s: float = 10.0, clock: Callable[[], datetime] = utcnow,
                 parallel: int = 4) -> None:
        """`box`: the sealing key's box, or how to get it when first needed (the key file is then
        made only once a secret must be opened)."""
        self.pool, self.policy, self.clock = pool, policy, clock
        self._box = box
        self.http = httpx.Client(timeout=timeout_s, follow_redirects=False)
        self.parallel = parallel

    @property
    def box(self) -> SecretBox:
        if not isinstance(self._box, SecretBox):
            self._box = self._box()
        return self._box

    def send_due(self) -> int:
        """One round: the due deliveries, a few endpoints at a time. Returns how many were tried."""
        with self.pool.connection() as conn:
            items = store.due(conn, self.clock(), BATCH)
        if not items:
            return 0
        with ThreadPoolExecutor(max_workers=min(self.parallel, len(items)), thread_name_prefix="webhook") as workers:
            list(workers.map(self.attempt, items))
        return len(items)

    def attempt(self, item: Due) -> None:
        at, started = self.clock(), time.monotonic()
        status_code, error = self._post(item)
        number = item.attempts + 1
        if status_code is not None and 200 <= status_code < 300:
            outcome, next_at = "delivered", None
        elif number >= self.policy.attempts or (error or "").startswith("secret:"):  # no key: no retry helps
            outcome, next_at = "failed", None
        else:
            outcome, next_at = "pending", at + timedelta(seconds=self.policy.delay_s(number))
        duration_ms = int((time.monotonic() - started) * 1000)
        with self.pool.connection() as conn:
            store.record_attempt(conn, item, at=at, duration_ms=duration_ms, status_code=status_code, error=error,
                                 outcome=outcome, next_attempt_at=next_at)
        host = urlsplit(item.url).hostname  # never the whole URL: it may carry a token
        if outcome == "delivered":
            log.info("webhook %s (%s) delivered to %s on attempt %d", item.event_id, item.event_type, host, number)
        else:
            log.warning("webhook %s (%s) to %s, attempt %d: %s%s", item.event_id, item.event_type, host, number,
                        error, "; given up" if outcome == "failed" else f"; next at {next_at:%H:%M:%S} UTC")

    def _post(self, item: Due) -> tuple[int | None, str | None]:
        """(the receiver's status, why it is not a delivery): None for the status when none came back."""
        try:
            keys = [self.box.open(item.secret_sealed, str(item.endpoint_id))]
            if item.previous_sealed:
                keys.append(self.box.open(item.previous_sealed, str(item.endpoint_id)))
        except SecretBoxError as exc:
            return None, f"secret: {exc}"
        body = item.body.encode()
        headers = signed_headers(keys, item.event_id, int(time.time()), body)
        try:
            response = self.http.post(item.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:ERROR_MAX]
        if 200 <= response.status_code < 300:
            return response.status_code, None
        text = " ".join(response.text.split())[:200]
        return response.status_code, f"HTTP {response.status_code}" + (f": {text}" if text else "")

    def close(self) -> None:
        self.http.close()
