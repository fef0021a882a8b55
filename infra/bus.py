"""NATS connections and the one place where JetStream streams and buckets are declared."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from urllib.parse import unquote, urlsplit

import nats
from nats.aio.client import Client
from nats.errors import ConnectionClosedError, NoServersError, StaleConnectionError, UnexpectedEOF
from nats.js import JetStreamContext
from nats.js.api import (
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamSource,
    SubjectTransform,
)
from nats.js.errors import BadRequestError, NotFoundError

from infra.logs import Outage
from infra.telemetry import ALL_TELEMETRY, PARTITIONED, PARTITIONED_AS

log = logging.getLogger(__name__)

EVENTS_STREAM = "EVENTS"
TELEMETRY_STREAM = "TELEMETRY"
TELEMETRY_PARTS_STREAM = "TELEMETRY_PARTS"  # TELEMETRY shared out by partition (infra/telemetry.py)
DEADLETTER_STREAM = "DEADLETTER"
BUCKETS = ("files", "checkpoints", "adapters")

STREAMS = (
    # Domain events, copied from the event store by the relay; dedup window covers a relay restart.
    StreamConfig(name=EVENTS_STREAM, subjects=["events.>"], storage=StorageType.FILE,
                 duplicate_window=3600.0),
    StreamConfig(name=TELEMETRY_STREAM, subjects=[ALL_TELEMETRY], storage=StorageType.FILE,
                 duplicate_window=3600.0),
    StreamConfig(name=DEADLETTER_STREAM, subjects=["deadletter.>"], storage=StorageType.FILE),
)


# What nats-py hands its error callback while the server is away (and it reconnects).
CONNECTION_ERRORS = (OSError, TimeoutError, UnexpectedEOF, StaleConnectionError, NoServersError,
                     ConnectionClosedError)


class BusUnavailableError(Exception):
    """NATS could not be reached; the message is one line."""


def servers(url: str) -> list[str]:
    """NATS_URL's servers: one, or a cluster's, separated by commas (clients fail over between them)."""
    return [server.strip() for server in url.split(",") if server.strip()]


async def connect(url: str, name: str, timeout: float = 5.0, **options: object) -> Client:
    """Connects with an error callback installed: a denied publish is otherwise only a timeout.
    With several servers, to the first that answers; on a lost connection, to any other of them."""
    probe(url, timeout)
    try:
        params: dict[str, object] = {
            "name": name, "connect_timeout": timeout, "allow_reconnect": True,
            "max_reconnect_attempts": -1, "reconnect_time_wait": 1, **vars(connection_callbacks(name)),
        }
        return await nats.connect(servers(url), **(params | credentials(url) | options))
    except Exception as exc:  # noqa: BLE001 - nats raises several unrelated types for "cannot connect"
        raise BusUnavailableError(f"cannot connect to NATS at {shown(url)}: {exc or type(exc).__name__}") from None


@dataclass(frozen=True)
class ConnectionCallbacks:
    """nats-py's `error_cb` and `reconnected_cb` for one connection: a lost connection is one line,
    the reconnect attempts are counted, the reconnect is one summary; any other error (a denied
    publish, …) is logged as it comes."""

    error_cb: Callable[[Exception], Awaitable[None]]
    reconnected_cb: Callable[[], Awaitable[None]]


def connection_callbacks(name: str) -> ConnectionCallbacks:
    outage = Outage(log, lost=f"{name}: NATS connection lost", back=f"{name}: NATS reconnected")

    async def error_cb(exc: Exception) -> None:
        if isinstance(exc, CONNECTION_ERRORS):
            outage.failed(str(exc) or type(exc).__name__)
        else:
            log.error("nats error on %s: %s", name, exc)

    async def reconnected_cb() -> None:
        outage.recovered()

    return ConnectionCallbacks(error_cb, reconnected_cb)


def credentials(url: str) -> dict[str, str]:
    """The user and password a URL carries, as connection options: nats-py otherwise sends them only
    to the servers listed with them, not to those a cluster tells it about (refused on a fail-over)."""
    for server in servers(url):
        parts = urlsplit(server)
        if parts.username is not None and parts.password is not None:
            return {"user": unquote(parts.username), "password": unquote(parts.password)}
    return {}


def probe(url: str, timeout: float) -> None:
    """nats-py retries a first connect forever with unlimited reconnects: fail fast instead (one of
    a cluster's servers answering is enough)."""
    failures = []
    for server in servers(url):
        parts = urlsplit(server)
        try:
            socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), timeout).close()
            return
        except OSError as exc:
            failures.append(str(exc.strerror or exc))
    raise BusUnavailableError(f"cannot connect to NATS at {shown(url)}: {'; '.join(dict.fromkeys(failures))}")


def shown(url: str) -> str:
    """A URL fit for logs and messages: without users and passwords."""
    return ",".join(_shown_one(server) for server in servers(url)) or url


def _shown_one(url: str) -> str:
    parts = urlsplit(url)
    return url if "@" not in parts.netloc else url.replace(parts.netloc, parts.netloc.rsplit("@", 1)[1], 1)


async def declare(js: JetStreamContext, replicas: int = 1) -> None:
    """Creates or updates our streams and object-store buckets with `replicas` copies each (1 on
    one server, 3 on a cluster of three: PIPELINE_NATS_REPLICAS); consumers never declare them.
    Durable consumers keep as many copies as their stream (JetStream's default)."""
    for declared in STREAMS:
        config = replace(declared, num_replicas=replicas)
        assert config.name is not None  # nats-py types every StreamConfig field optional; ours are named
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)
    await _ensure_telemetry_parts(js, replicas)
    for bucket in BUCKETS:
        await _ensure_bucket(js, bucket, replicas)


# The telemetry reactor's one durable before its work was partitioned: where the partitions start.
UNPARTITIONED_DURABLE = "handler-telemetry"


async def _ensure_telemetry_parts(js: JetStreamContext, replicas: int) -> None:
    """TELEMETRY shared out by partition for the telemetry reactor (infra/telemetry.py): a work queue
    (a message is gone once its partition's consumer acked it) sourcing TELEMETRY. Made once,
    starting after what the unpartitioned reactor had handled (or after what TELEMETRY held: a
    new deployment's is empty); later only its replica count follows the settings (a source's
    position is never moved)."""
    try:
        info = await js.stream_info(TELEMETRY_PARTS_STREAM)
    except NotFoundError:
        try:
            start = (await js.consumer_info(TELEMETRY_STREAM, UNPARTITIONED_DURABLE)).ack_floor.stream_seq + 1
        except NotFoundError:
            start = (await js.stream_info(TELEMETRY_STREAM)).state.last_seq + 1
        source = StreamSource(name=TELEMETRY_STREAM, opt_start_seq=start,
                              subject_transforms=[SubjectTransform(src=PARTITIONED, dest=PARTITIONED_AS)])
        await js.add_stream(StreamConfig(name=TELEMETRY_PARTS_STREAM, storage=StorageType.FILE, sources=[source],
                                         retention=RetentionPolicy.WORK_QUEUE, num_replicas=replicas))
        with contextlib.suppress(NotFoundError):
            await js.delete_consumer(TELEMETRY_STREAM, UNPARTITIONED_DURABLE)
        return
    if info.config.num_replicas != replicas:  # a deployment grown from one server to a cluster
        await js.update_stream(replace(info.config, num_replicas=replicas))


async def _ensure_bucket(js: JetStreamContext, bucket: str, replicas: int) -> None:
    try:
        info = await js.stream_info(f"OBJ_{bucket}")
    except NotFoundError:
        await js.create_object_store(bucket, ObjectStoreConfig(bucket=bucket, storage=StorageType.FILE,
                                                               replicas=replicas))
        return
    if info.config.num_replicas != replicas:  # a deployment grown from one server to a cluster
        await js.update_stream(replace(info.config, num_replicas=replicas))


def job_bucket(job_id: str) -> str:
    """Each job's files live in a bucket of its own (its training file copy, checkpoints, adapter),
    so a pod's credentials can be limited to its job's objects (infra/natsauth.py)."""
    return f"job-{job_id}"


async def ensure_job_bucket(js: JetStreamContext, job_id: str) -> str:
    """A job's bucket keeps as many copies as the catalog's (`files`, declared from the settings)."""
    bucket = job_bucket(job_id)
    try:
        await js.object_store(bucket)
    except (NotFoundError, BadRequestError):
        replicas = (await js.stream_info("OBJ_files")).config.num_replicas or 1
        await js.create_object_store(bucket, ObjectStoreConfig(bucket=bucket, storage=StorageType.FILE,
                                                               replicas=replicas))
    return bucket


def event_subject(topic: str) -> str:
    """`TrainingJob.Queued` → `events.TrainingJob.Queued` (aggregate type, then event)."""
    return f"events.{topic}"
