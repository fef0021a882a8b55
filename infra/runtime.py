"""Resolves where PostgreSQL and NATS are: the configured URLs, or embedded servers."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import nats.errors
import nats.js.errors

from infra import bus, db, natsauth
from infra.embedded import EmbeddedNats, EmbeddedNatsCluster, EmbeddedPostgres, embedded_nats_url
from infra.nats_certs import pod_listener
from infra.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Services:
    """The two servers a process talks to; embedded ones are stopped by `close()`."""

    database_url: str
    nats_url: str
    nats_auth_dir: Path | None = None  # set when we run nats-server with per-pod users
    owned: list[EmbeddedNats | EmbeddedPostgres] = field(default_factory=list)

    def close(self) -> None:
        for server in reversed(self.owned):
            try:
                server.stop()
            except Exception as exc:  # noqa: BLE001 - the other one is stopped all the same
                log.warning("stopping the embedded %s failed: %s", server.name, exc)
        self.owned.clear()


def start_services(settings: Settings) -> Services:
    """Uses DATABASE_URL / NATS_URL when set; otherwise starts (or joins) the embedded servers
    whose data lives in the state directory, so a restart keeps every job."""
    owned: list[EmbeddedNats | EmbeddedPostgres] = []
    try:
        database_url = settings.runtime.database_url
        if database_url is None:
            pg = EmbeddedPostgres(settings.runtime.state_dir)
            database_url = pg.start()
            owned.append(pg)
        nats_url, auth_dir = settings.runtime.nats_url, settings.runtime.nats_auth_dir
        if nats_url is None:
            server = EmbeddedNats(settings.runtime.state_dir, auth=True, **pod_listener(  # pods elsewhere: TLS
                settings.agent.pod_nats_url, settings.runtime.nats_listen, settings.runtime.state_dir / "nats"))
            nats_url = running_embedded_nats(settings.runtime.state_dir)
            if nats_url is None and settings.runtime.nats_cluster > 1:
                cluster = EmbeddedNatsCluster(settings.runtime.state_dir, settings.runtime.nats_cluster, auth=True)
                nats_url = cluster.start()
                owned.extend(cluster.nodes)  # each supervised (and restarted) on its own
            elif nats_url is None:
                nats_url = server.start()
                owned.append(server)
            auth_dir = server.auth_dir if (server.auth_dir / natsauth.AUTH_FILE).exists() else None
    except BaseException:
        for service in reversed(owned):
            service.stop()
        raise
    return Services(database_url, nats_url, auth_dir, owned)


class AlreadyRunningError(Exception):
    """Another `pipeline up` owns this state directory."""


def lock_state_dir(state_dir: Path) -> int:
    """Held by `pipeline up` for its lifetime, so two stacks never share one state directory."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / "up.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AlreadyRunningError(f"another `pipeline up` is running on {state_dir.resolve()}") from None
    return fd


def running_embedded_nats(state_dir: Path) -> str | None:
    """The URL of an embedded nats-server (or of the nodes of an embedded cluster) another of our
    processes runs on this state dir."""
    store = state_dir / "nats"
    urls = []
    for pid_file in sorted(store.glob("nats*.pid")):
        suffix = pid_file.name.removeprefix("nats").removesuffix(".pid")  # "" or "-node-2"
        try:
            pid = int(pid_file.read_text().strip())
            port = int((store / f"port{suffix}").read_text().strip())
            if b"nats-server" in Path(f"/proc/{pid}/cmdline").read_bytes():
                urls.append(embedded_nats_url(store, port))
        except (OSError, ValueError):
            continue
    return ",".join(urls) or None


def check_and_prepare(services: Services, settings: Settings) -> None:
    """Fails fast with a one-line reason when a server is unreachable; migrates; declares streams."""
    db.migrate(services.database_url, settings.runtime.connect_timeout_s)
    asyncio.run(_declare(services.nats_url, settings.runtime.connect_timeout_s, settings.runtime.nats_replicas))


# A cluster that just started (or lost a node) elects its JetStream leaders first: seconds.
JETSTREAM_READY_S = 30.0


async def _declare(nats_url: str, timeout: float, replicas: int = 1) -> None:
    nc = await bus.connect(nats_url, "pipeline-setup", timeout)
    deadline = asyncio.get_running_loop().time() + JETSTREAM_READY_S
    try:
        while True:
            try:
                await bus.declare(nc.jetstream(timeout=timeout), replicas)
                return
            except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError,
                    nats.js.errors.ServerError) as exc:
                if asyncio.get_running_loop().time() > deadline:
                    raise bus.BusUnavailableError(f"JetStream is not ready at {bus.shown(nats_url)}: {exc}") from None
                await asyncio.sleep(0.5)
    finally:
        await nc.close()
